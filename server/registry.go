package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// entry is one sandbox the server keeps, with whose it is.
type entry struct {
	id       string
	tenant   string
	sb       *engine.Sandbox
	image    string
	network  engine.NetworkMode
	metadata map[string]string
	created  time.Time
	// lost: the sandbox is gone (it could not be kept across a restart)
	// and only its record is left, with sb nil: this says why.
	lost string
	// base is the save a resumed sandbox's disk builds on, removed when
	// the sandbox stops ("" for a sandbox started afresh).
	base string

	mu       sync.Mutex
	policy   *engine.NetworkPolicy // the network policy in force, nil: none
	timeout  time.Duration         // idle time before it is stopped; 0: never
	lastUsed time.Time
	busy     int // calls in flight: a sandbox is never idle during one
}

// begin marks a call in flight; the function it returns marks its end.
// Both count as use for the idle clock.
func (e *entry) begin() func() {
	e.mu.Lock()
	e.busy++
	e.lastUsed = time.Now()
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		e.busy--
		e.lastUsed = time.Now()
		e.mu.Unlock()
	}
}

// overdue says whether the sandbox has been idle, no call in flight,
// for longer than its timeout.
func (e *entry) overdue(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lost == "" && e.timeout > 0 && e.busy == 0 && now.Sub(e.lastUsed) > e.timeout
}

func (e *entry) setTimeout(d time.Duration) {
	e.mu.Lock()
	e.timeout = d
	e.lastUsed = time.Now()
	e.mu.Unlock()
}

// describe is the entry as the API gives it.
func (e *entry) describe() serverapi.Sandbox {
	e.mu.Lock()
	timeout := e.timeout
	e.mu.Unlock()
	d := serverapi.Sandbox{
		ID: e.id, Metadata: maps.Clone(e.metadata), Timeout: timeout.Seconds(),
		Image: e.image, Created: e.created.UTC().Format(time.RFC3339Nano), Lost: e.lost,
	}
	if e.sb != nil {
		d.Arch, d.Accelerator, d.Running = e.sb.Arch(), string(e.sb.Accelerator()), e.sb.IsRunning()
	}
	return d
}

// registry is the server's sandboxes, by id.
type registry struct {
	mu      sync.Mutex
	entries map[string]*entry
	count   atomic.Int64 // the entries that are not lost
}

func newRegistry() *registry { return &registry{entries: map[string]*entry{}} }

// newID is 128 random bits: an id cannot be guessed (and another tenant's
// is refused anyway).
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "sb-" + hex.EncodeToString(b)
}

func (g *registry) add(e *entry) {
	g.mu.Lock()
	g.entries[e.id] = e
	g.recount()
	g.mu.Unlock()
}

// recount counts the sandboxes that run (not the lost ones); g.mu is held.
func (g *registry) recount() {
	n := 0
	for _, e := range g.entries {
		if e.lost == "" {
			n++
		}
	}
	g.count.Store(int64(n))
}

// get finds the tenant's sandbox id; another tenant's is not found.
func (g *registry) get(tenant, id string) (*entry, error) {
	g.mu.Lock()
	e, ok := g.entries[id]
	g.mu.Unlock()
	if !ok || e.tenant != tenant {
		return nil, errNoSandbox(id)
	}
	return e, nil
}

// take removes the tenant's sandbox id from the registry and returns it.
func (g *registry) take(tenant, id string) (*entry, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.entries[id]
	if !ok || e.tenant != tenant {
		return nil, errNoSandbox(id)
	}
	delete(g.entries, id)
	g.recount()
	return e, nil
}

// list is the tenant's sandboxes whose metadata holds every label of
// filter, oldest first.
func (g *registry) list(tenant string, filter map[string]string) []*entry {
	g.mu.Lock()
	var out []*entry
	for _, e := range g.entries {
		if e.tenant == tenant && hasLabels(e.metadata, filter) {
			out = append(out, e)
		}
	}
	g.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out
}

func hasLabels(m, filter map[string]string) bool {
	for k, v := range filter {
		if got, ok := m[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// all is every entry, of every tenant.
func (g *registry) all() []*entry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Collect(maps.Values(g.entries))
}

// reapIdle stops, every tick, the sandboxes idle past their timeout, and
// those whose VM is gone, until ctx ends.
func (g *registry) reapIdle(ctx context.Context, tick time.Duration, stop func(*entry, string)) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, e := range g.all() {
				if e.overdue(now) {
					if _, err := g.take(e.tenant, e.id); err == nil {
						stop(e, "idle past its timeout")
					}
				}
			}
		}
	}
}
