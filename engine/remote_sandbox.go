package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// remoteSandbox is a Sandbox kept by a server: every method of Sandbox
// begins by handing its call here when sb.remote is set.
type remoteSandbox struct {
	c  *remoteClient
	id string

	mu   sync.Mutex
	desc serverapi.Sandbox // as last described by the server

	// alive ends (with the reason) once Stop was called or the server said
	// the sandbox no longer runs: calls in flight end, later ones fail at
	// once with KindNotRunning, as a local sandbox's do.
	alive    context.Context
	markDead context.CancelCauseFunc
	stopOnce sync.Once
}

// remotePoll is how often a remote sandbox's Wait asks the server
// whether it still runs.
const remotePoll = time.Second

// remoteDescribeLimit bounds a describe that its caller did not bound
// (IsRunning, Wait's polls).
const remoteDescribeLimit = 10 * time.Second

func newRemoteSandbox(c *remoteClient, desc serverapi.Sandbox) *Sandbox {
	alive, markDead := context.WithCancelCause(context.Background())
	return &Sandbox{remote: &remoteSandbox{c: c, id: desc.ID, desc: desc, alive: alive, markDead: markDead}}
}

// startRemote is Start for a config that names a server.
func startRemote(ctx context.Context, cfg Config) (*Sandbox, error) {
	c, err := newRemoteClient(cfg.remoteOptions())
	if err != nil {
		return nil, err
	}
	if err := cfg.validateRemote(); err != nil {
		return nil, err
	}
	bootTimeout := cfg.BootTimeout
	if bootTimeout == 0 {
		bootTimeout = DefaultBootTimeout
	}
	var desc serverapi.Sandbox
	// A first start of an image on the server may build its template: a
	// boot and a save.
	err = c.run(ctx, nil, "starting a sandbox on "+c.server, fixedBound(3*bootTimeout+time.Minute), func(ctx context.Context) error {
		return c.call(ctx, http.MethodPost, serverapi.PathSandboxes, nil, cfg.createBody(), &desc, remoteSmallAnswer)
	})
	if err != nil {
		return nil, err
	}
	if err := checkDescription(desc, ""); err != nil {
		return nil, newError(KindTransport, err, "starting a sandbox on %s", c.server)
	}
	return newRemoteSandbox(c, desc), nil
}

// createBody is the server's create request for cfg (validateRemote
// passed).
func (cfg Config) createBody() serverapi.CreateSandbox {
	body := serverapi.CreateSandbox{
		Image: cfg.Image, CPUs: cfg.CPUs, Network: string(cfg.Network), ColdBoot: cfg.ColdBoot,
		BootTimeout: cfg.BootTimeout.Seconds(), Metadata: cfg.Metadata, NetworkPolicy: policyBody(cfg.NetworkPolicy),
	}
	if cfg.MemoryMiB != 0 {
		body.Memory = cfg.MemoryMiB
	}
	for _, m := range cfg.Mounts {
		body.Mounts = append(body.Mounts, serverapi.Mount{Host: m.HostPath, Guest: m.GuestPath, ReadOnly: m.ReadOnly})
	}
	switch {
	case cfg.IdleTimeout > 0:
		secs := cfg.IdleTimeout.Seconds()
		body.Timeout = &secs
	case cfg.IdleTimeout < 0:
		never := 0.0
		body.Timeout = &never
	}
	return body
}

// checkDescription refuses a description no sandbox has (the server is
// not trusted more than a guest): wantID, when given, is the id asked for.
func checkDescription(d serverapi.Sandbox, wantID string) error {
	switch {
	case d.ID == "" || strings.ContainsAny(d.ID, "/\x00"):
		return errors.Errorf("the server described a sandbox with the id %q", d.ID)
	case wantID != "" && d.ID != wantID:
		return errors.Errorf("the server described sandbox %q when asked for %q", d.ID, wantID)
	case d.Timeout < 0:
		return errors.Errorf("the server described sandbox %q with the idle timeout %v", d.ID, d.Timeout)
	}
	if d.Created != "" {
		if _, err := time.Parse(time.RFC3339Nano, d.Created); err != nil {
			return errors.Errorf("the server described sandbox %q as created at %q", d.ID, d.Created)
		}
	}
	return nil
}

// Connect returns the sandbox id kept by a server (one this key made),
// whose methods then go to the server as those of a sandbox made by Start
// with Config.Server. A sandbox that no longer runs is returned too:
// IsRunning says so, and Stop makes the server forget it.
func Connect(ctx context.Context, id string, opts RemoteOptions) (*Sandbox, error) {
	c, err := newRemoteClient(opts.resolved())
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, newError(KindBadRequest, nil, "connecting to a sandbox: no id given")
	}
	desc, err := c.describe(ctx, nil, id)
	if err != nil {
		return nil, err
	}
	return newRemoteSandbox(c, desc), nil
}

// describe asks the server for sandbox id.
func (c *remoteClient) describe(ctx, alive context.Context, id string) (serverapi.Sandbox, error) {
	var desc serverapi.Sandbox
	what := "describing sandbox " + id
	err := c.run(ctx, alive, what, fixedBound(remoteDescribeLimit), func(ctx context.Context) error {
		if err := c.call(ctx, http.MethodGet, route(serverapi.PathSandbox, id), nil, nil, &desc, remoteSmallAnswer); err != nil {
			return err
		}
		return checkDescription(desc, id)
	})
	return desc, err
}

// SandboxSummary describes a sandbox a server keeps.
type SandboxSummary struct {
	ID       string
	Metadata map[string]string
	Image    string
	Running  bool
	Created  time.Time
	// IdleTimeout is how long the server lets it sit idle before it stops
	// it; 0: never.
	IdleTimeout time.Duration
}

// ListSandboxes lists the sandboxes a server keeps for this key whose
// metadata has every label of metadata (nil: all of them).
func ListSandboxes(ctx context.Context, opts RemoteOptions, metadata map[string]string) ([]SandboxSummary, error) {
	c, err := newRemoteClient(opts.resolved())
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, k := range slices.Sorted(maps.Keys(metadata)) {
		if k == "" || strings.ContainsRune(k, '=') {
			return nil, newError(KindBadRequest, nil, "listing sandboxes: the metadata key %q cannot be a filter (it must be non-empty, without '=')", k)
		}
		q.Add("metadata", k+"="+metadata[k])
	}
	var list serverapi.SandboxList
	err = c.run(ctx, nil, "listing the sandboxes of "+c.server, fixedBound(time.Minute), func(ctx context.Context) error {
		if err := c.call(ctx, http.MethodGet, serverapi.PathSandboxes, q, nil, &list, remoteListAnswer); err != nil {
			return err
		}
		for _, d := range list.Sandboxes {
			if err := checkDescription(d, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]SandboxSummary, len(list.Sandboxes))
	for i, d := range list.Sandboxes {
		out[i] = summaryOf(d)
	}
	return out, nil
}

func summaryOf(d serverapi.Sandbox) SandboxSummary {
	created, _ := time.Parse(time.RFC3339Nano, d.Created) // checked
	return SandboxSummary{ID: d.ID, Metadata: maps.Clone(d.Metadata), Image: d.Image, Running: d.Running,
		Created: created, IdleTimeout: secondsDuration(d.Timeout)}
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// localIdentity is a local sandbox's id, made when first asked for.
type localIdentity struct {
	once sync.Once
	id   string
}

// Remote says whether a server keeps the sandbox (Config.Server, Connect)
// rather than this process.
func (sb *Sandbox) Remote() bool { return sb.remote != nil }

// ID is the sandbox's id: the server's for a sandbox a server keeps (what
// Connect takes), a random one for a local sandbox.
func (sb *Sandbox) ID() string {
	if sb.remote != nil {
		return sb.remote.id
	}
	sb.ident.once.Do(func() {
		b := make([]byte, 16)
		rand.Read(b)
		sb.ident.id = hex.EncodeToString(b)
	})
	return sb.ident.id
}

// Metadata is a copy of the sandbox's labels: the server's for a sandbox
// a server keeps, Config.Metadata for a local one.
func (sb *Sandbox) Metadata() map[string]string {
	if sb.remote != nil {
		sb.remote.mu.Lock()
		defer sb.remote.mu.Unlock()
		return maps.Clone(sb.remote.desc.Metadata)
	}
	return maps.Clone(sb.cfg.Metadata)
}

// SetIdleTimeout sets how long the server lets the sandbox sit idle before
// it stops it (negative: never; 0 is refused, having no meaning here), and
// starts that idle time again: a keep-alive. Only a server's sandboxes
// have one: a local sandbox's call is a KindBadRequest error.
func (sb *Sandbox) SetIdleTimeout(ctx context.Context, d time.Duration) error {
	if sb.remote == nil {
		return newError(KindBadRequest, nil, "setting the idle timeout: only a server's sandboxes have an idle timeout")
	}
	return sb.remote.setIdleTimeout(ctx, d)
}

func (r *remoteSandbox) setIdleTimeout(ctx context.Context, d time.Duration) error {
	if d == 0 {
		return newError(KindBadRequest, nil, "setting the idle timeout: 0 is no timeout; give a duration, or a negative one for never")
	}
	secs := max(d.Seconds(), 0)
	var desc serverapi.Sandbox
	err := r.c.run(ctx, r.alive, "setting the idle timeout of sandbox "+r.id, fixedBound(time.Minute), func(ctx context.Context) error {
		if err := r.c.call(ctx, http.MethodPost, route(serverapi.PathTimeout, r.id), nil, serverapi.SetTimeout{Timeout: secs}, &desc, remoteSmallAnswer); err != nil {
			return err
		}
		return checkDescription(desc, r.id)
	})
	if err == nil {
		r.remember(desc)
	}
	return err
}

func (r *remoteSandbox) remember(desc serverapi.Sandbox) {
	r.mu.Lock()
	r.desc = desc
	r.mu.Unlock()
}

func (r *remoteSandbox) described() serverapi.Sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.desc
}

// stop has the server stop and forget the sandbox. A sandbox the server no
// longer has is stopped already; a second Stop returns nil, as locally.
func (r *remoteSandbox) stop(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		// Calls in flight end now, as a local sandbox's do.
		r.markDead(errors.New(stoppedReason))
		err = r.c.run(ctx, nil, "stopping sandbox "+r.id, fixedBound(time.Minute), func(ctx context.Context) error {
			return r.c.call(ctx, http.MethodDelete, route(serverapi.PathSandbox, r.id), nil, nil, nil, 0)
		})
		if KindOf(err) == KindNotFound {
			err = nil
		}
	})
	return err
}

// isRunning asks the server; any failure is a no.
func (r *remoteSandbox) isRunning() bool {
	desc, err := r.c.describe(context.Background(), r.alive, r.id)
	if err != nil {
		return false
	}
	r.remember(desc)
	return desc.Running
}

// wait blocks until Stop was called or the server says the sandbox no
// longer runs (or has it no more), asking every remotePoll. A server that
// cannot be reached is asked again: the sandbox runs on without its
// clients.
func (r *remoteSandbox) wait() {
	t := time.NewTicker(remotePoll)
	defer t.Stop()
	for {
		select {
		case <-r.alive.Done():
			return
		case <-t.C:
		}
		desc, err := r.c.describe(context.Background(), r.alive, r.id)
		switch KindOf(err) {
		case 0:
			r.remember(desc)
			if !desc.Running {
				r.markDead(errors.New("the server says the sandbox no longer runs"))
				return
			}
		case KindNotFound, KindNotRunning, KindAuth:
			r.markDead(errors.Wrap(err, "the server has the sandbox no more"))
			return
		}
	}
}

// errNotRemote is the error of a method a server's sandbox does not have.
func errNotRemote(method string) error {
	return newError(KindBadRequest, nil, "%s: not available on a server's sandbox", method)
}
