package engine

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/engine/internal/image"
	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Stream tells stdout (1) from stderr (2).
type Stream int

const (
	Stdout Stream = 1
	Stderr Stream = 2
)

func (s Stream) String() string { return agent.Stream(s).String() }

// DefaultTimeout is a command's timeout when the request gives none.
const DefaultTimeout = 30 * time.Second // the agent's own default too (a test checks)

// transportMargin is added to a command's own timeout (which the agent
// enforces) to bound the HTTP call, so that a call to a frozen guest still
// returns.
const transportMargin = 15 * time.Second

// deathSettle is how long a failed call waits to learn whether the VM died.
const deathSettle = 300 * time.Millisecond

// ExecRequest is one command to run in the sandbox.
type ExecRequest struct {
	Command string
	Timeout time.Duration // default DefaultTimeout; the whole process group is killed after it
	Cwd     string
	Shell   string // default /bin/sh
	Env     map[string]string
	Stdin   []byte
	// User runs the command as this guest user (a name or uid) instead of
	// root; a user the guest does not know is an error (KindBadRequest).
	User string
	// MaxOutput caps the bytes of each stream kept for the result (default
	// 256 MiB, and less in a guest too small to hold that); what is cut
	// is reported by StdoutTruncated and StderrTruncated. OnOutput still
	// gets every byte.
	MaxOutput int64
	// OnOutput, when set, is called with each chunk of output as it
	// arrives, on the calling goroutine, in order; the result still holds
	// all of it. It must not keep chunk after it returns. An error it
	// returns abandons the command (it is killed in the guest) and is
	// returned by Execute as is: the bindings carry a callback's exception
	// back so.
	OnOutput func(stream Stream, chunk []byte) error
	// OutputMemory, when set, gives the memory the result's Stdout and
	// Stderr are put in, once their lengths are known (default: Go's
	// heap). The output is held off Go's heap until then, and each part is
	// given back as it is copied: the C ABI puts it straight into the
	// buffer it hands its caller, so a result costs its size once. It is
	// called at most once, for a result that is returned.
	OutputMemory func(stdoutLen, stderrLen int) (stdout, stderr []byte)
}

// ExecResult is how a command ended. A command that fails is a result, not
// an error.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int  // -1 when timed out; 128+n when killed by signal n
	TimedOut       bool // the command's timeout killed it
	Duration       time.Duration
	// Truncated: more output came than MaxOutput kept.
	StdoutTruncated, StderrTruncated bool
}

// Execute runs a command and returns how it ended, with all of its
// output; req.OnOutput, if set, also gets the output as it comes.
func (sb *Sandbox) Execute(ctx context.Context, req ExecRequest) (*ExecResult, error) {
	if sb.remote != nil {
		return sb.remote.execute(ctx, req)
	}
	onChunk := req.OnOutput
	quicksandAgent := sb.img.Manifest.Agent == image.AgentQuicksand
	if quicksandAgent {
		var err error
		if req, err = forQuicksandAgent(req, sb.img.Manifest.Name); err != nil {
			return nil, err
		}
	}
	wire, timeout, err := req.toWire()
	if err != nil {
		return nil, err
	}
	if cause := context.Cause(sb.alive); cause != nil {
		return nil, newError(KindNotRunning, cause, "executing %q", short(req.Command))
	}
	// The call ends when the caller gives up, when the VM goes away, or
	// when the agent has been waited for longer than the command's timeout
	// plus a margin (time in the caller's callbacks does not count: a slow
	// consumer is not a slow agent).
	callCtx, cancelCall := context.WithCancelCause(ctx)
	cancel := func() { cancelCall(context.Canceled) }
	defer cancel()
	budget := startBudget(timeout+transportMargin, func() { cancelCall(errors.New("the agent did not answer in time")) })
	defer budget.stop()
	stop := context.AfterFunc(sb.alive, cancel)
	defer stop()
	sb.watchHostPause(callCtx, cancelCall)
	epoch := sb.currentEpoch()
	stopEpoch := context.AfterFunc(epoch, cancel)
	defer stopEpoch()

	began := time.Now()
	var res *agent.Result
	if onChunk == nil {
		res, err = sb.client.Execute(callCtx, wire, req.OutputMemory)
	} else {
		var cbErr error
		res, err = sb.client.ExecuteStream(callCtx, wire, req.OutputMemory, func(s agent.Stream, p []byte) error {
			budget.pause()
			defer budget.resume()
			cbErr = onChunk(Stream(s), p)
			return cbErr
		})
		if cbErr != nil {
			return nil, cbErr
		}
	}
	if err != nil {
		return nil, sb.callError(ctx, callCtx, epoch, err, "executing "+quote(short(req.Command)))
	}
	if quicksandAgent {
		res.TimedOut = res.TimedOut || quicksandTimedOut(res.ExitCode, res.Stderr)
	}
	return &ExecResult{
		Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode, TimedOut: res.TimedOut,
		Duration:        time.Since(began),
		StdoutTruncated: res.StdoutTruncated, StderrTruncated: res.StderrTruncated,
	}, nil
}

// callError says why a call to the agent (what it was doing) failed, most
// telling reason first.
func (sb *Sandbox) callError(ctx, callCtx, epoch context.Context, err error, what string) error {
	// A dying QEMU drops its connections a moment before it can be waited
	// for: give the supervisor that moment so the error says why.
	select {
	case <-sb.exited:
	case <-time.After(deathSettle):
	}
	if cause := context.Cause(sb.alive); cause != nil {
		return newError(KindNotRunning, cause, "%s", what)
	}
	if ctx.Err() != nil {
		return newError(KindCancelled, context.Cause(ctx), "%s", what)
	}
	if cause := context.Cause(epoch); cause != nil {
		return newError(KindCancelled, cause, "%s", what)
	}
	if callCtx.Err() != nil {
		return sb.transportError(context.Cause(callCtx), what)
	}
	var se *agent.StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case http.StatusUnauthorized:
			return newError(KindAuth, err, "%s", what)
		case http.StatusBadRequest:
			return newError(KindBadRequest, err, "%s", what)
		case http.StatusServiceUnavailable:
			return newError(KindResource, err, "%s", what)
		}
	}
	return sb.transportError(err, what)
}

// toWire checks the request and turns it into the agent's JSON body.
func (r ExecRequest) toWire() (protocol.ExecRequest, time.Duration, error) {
	if strings.TrimSpace(r.Command) == "" {
		return protocol.ExecRequest{}, 0, newError(KindBadRequest, nil, "request field command: must not be empty")
	}
	if r.Timeout < 0 {
		return protocol.ExecRequest{}, 0, newError(KindBadRequest, nil, "request field timeout: must not be negative")
	}
	if r.MaxOutput < 0 {
		return protocol.ExecRequest{}, 0, newError(KindBadRequest, nil, "request field max_output: must not be negative")
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	secs := timeout.Seconds()
	w := protocol.ExecRequest{Command: r.Command, Timeout: &secs, Cwd: r.Cwd, Shell: r.Shell, Env: r.Env, User: r.User, MaxOutput: r.MaxOutput}
	if utf8.Valid(r.Stdin) {
		w.Stdin = string(r.Stdin)
	} else {
		w.StdinB64 = base64.StdEncoding.EncodeToString(r.Stdin)
	}
	return w, timeout, nil
}

func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

func quote(s string) string { return `"` + s + `"` }
