package engine

import (
	"bytes"
	"context"
	"io"
	"syscall"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Background processes: started by one call, they run on in the guest
// after it (and after the connection that started them), until they exit,
// are killed, or the sandbox stops. The guest keeps the last
// protocol.ProcessOutputKept bytes (4 MiB) of each one's output, both
// streams together, for whoever attaches; an attach from the start that
// missed older output is told how much (AttachResult.Dropped).
//
// A checkpoint captures running processes with everything else: a revert
// brings back the ones that ran at the checkpoint (their ids and handles
// work again), and a handle to a process started after it gets a
// KindNotFound error that says so. A save takes running processes with it:
// the sandbox resumed from it has them, under the same ids.

// ProcessRequest is a background process to start.
type ProcessRequest struct {
	Command string
	Cwd     string
	Shell   string // default /bin/sh
	Env     map[string]string
	User    string // run as this guest user instead of root
	// PTY runs the process on a pseudo-terminal of that size (nil: pipes).
	// Its stdout and stderr are then one stream (Stdout), its stdin the
	// terminal's input: raw bytes, ^C included.
	PTY *TerminalSize
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Rows, Cols int
}

// Process is a handle to a background process; it stays valid across
// calls and may be made again from an ID (Sandbox.Process).
type Process struct {
	sb  *Sandbox
	ID  string // unique within the sandbox
	PID int    // in the guest (0 for a handle made from an ID)
}

// ProcessInfo describes a running background process.
type ProcessInfo struct {
	ID      string
	PID     int
	Command string
	PTY     bool
}

// AttachResult is how an attached process ended.
type AttachResult struct {
	ExecResult
	// Dropped is how many bytes of output from before the attach point
	// the guest no longer kept.
	Dropped int64
}

// StartProcess starts a background process and returns once it runs.
func (sb *Sandbox) StartProcess(ctx context.Context, req ProcessRequest) (*Process, error) {
	if sb.remote != nil {
		return sb.remote.startProcess(ctx, sb, req)
	}
	wire := protocol.ProcessRequest{Command: req.Command, Cwd: req.Cwd, Shell: req.Shell, Env: req.Env, User: req.User}
	if req.PTY != nil {
		wire.PTY = &protocol.TerminalSize{Rows: req.PTY.Rows, Cols: req.PTY.Cols}
	}
	var started protocol.ProcessStarted
	err := sb.fileCall(ctx, "starting "+quote(short(req.Command)), func(ctx context.Context) (err error) {
		started, err = sb.client.StartProcess(ctx, wire)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Process{sb: sb, ID: started.ID, PID: started.PID}, nil
}

// Process is a handle to the background process id (started by another
// call, or before a revert); it is not checked until used.
func (sb *Sandbox) Process(id string) *Process { return &Process{sb: sb, ID: id} }

// Processes lists the background processes that still run.
func (sb *Sandbox) Processes(ctx context.Context) ([]ProcessInfo, error) {
	if sb.remote != nil {
		return sb.remote.processes(ctx)
	}
	var list []protocol.ProcessInfo
	err := sb.fileCall(ctx, "listing processes", func(ctx context.Context) (err error) {
		list, err = sb.client.Processes(ctx)
		return err
	})
	out := make([]ProcessInfo, len(list))
	for i, p := range list {
		out[i] = ProcessInfo{ID: p.ID, PID: p.PID, Command: p.Command, PTY: p.PTY}
	}
	return out, err
}

func (p *Process) what(doing string) string { return doing + " process " + p.ID }

// Write sends data to the process's stdin (a terminal's input, with a
// PTY), returning once the process took it.
func (p *Process) Write(ctx context.Context, data []byte) error {
	return p.WriteFrom(ctx, bytes.NewReader(data))
}

// WriteFrom streams r to the process's stdin.
func (p *Process) WriteFrom(ctx context.Context, r io.Reader) error {
	if p.sb.remote != nil {
		return p.sb.remote.writeStdin(ctx, p.ID, r)
	}
	return p.sb.fileCall(ctx, p.what("writing to"), func(ctx context.Context) error {
		return p.sb.client.ProcessStdin(ctx, p.ID, r, false)
	})
}

// CloseStdin closes the process's stdin (on a terminal: sends ^D, which
// ends the input of a program reading a line).
func (p *Process) CloseStdin(ctx context.Context) error {
	if p.sb.remote != nil {
		return p.sb.remote.closeStdin(ctx, p.ID)
	}
	return p.sb.fileCall(ctx, p.what("closing the stdin of"), func(ctx context.Context) error {
		return p.sb.client.ProcessStdin(ctx, p.ID, nil, true)
	})
}

// Signal sends sig to the process's whole process group.
func (p *Process) Signal(ctx context.Context, sig syscall.Signal) error {
	if p.sb.remote != nil {
		return p.sb.remote.signal(ctx, p.ID, sig)
	}
	return p.sb.fileCall(ctx, p.what("signalling"), func(ctx context.Context) error {
		return p.sb.client.SignalProcess(ctx, p.ID, int(sig))
	})
}

// Kill sends SIGKILL.
func (p *Process) Kill(ctx context.Context) error { return p.Signal(ctx, syscall.SIGKILL) }

// Resize changes the size of the process's terminal (a KindBadRequest
// error for a process without one).
func (p *Process) Resize(ctx context.Context, rows, cols int) error {
	if p.sb.remote != nil {
		return p.sb.remote.resize(ctx, p.ID, rows, cols)
	}
	return p.sb.fileCall(ctx, p.what("resizing the terminal of"), func(ctx context.Context) error {
		return p.sb.client.ResizeProcess(ctx, p.ID, protocol.TerminalSize{Rows: rows, Cols: cols})
	})
}

// Attach follows the process's output from its start (as far as the guest
// kept it) until it exits, calling onChunk (if not nil) with each chunk on
// the calling goroutine, and returns how it ended with the output it saw
// (at most maxOutput bytes of each stream; 0: the default 256 MiB). Any
// number of attaches may follow one process at once.
func (p *Process) Attach(ctx context.Context, maxOutput int64, onChunk func(Stream, []byte) error) (*AttachResult, error) {
	if p.sb.remote != nil {
		return p.sb.remote.attach(ctx, p.ID, maxOutput, onChunk)
	}
	began := time.Now()
	var res *agent.Result
	var dropped int64
	// A process may be silent for as long as it likes: no stall bound.
	err := p.sb.fileCall(context.WithValue(ctx, waitingOnTheGuest{}, true), p.what("attaching to"), func(ctx context.Context) (err error) {
		var cb func(agent.Stream, []byte) error
		if onChunk != nil {
			cb = func(s agent.Stream, b []byte) error { return onChunk(Stream(s), b) }
		}
		res, dropped, err = p.sb.client.AttachProcess(ctx, p.ID, 0, maxOutput, cb)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &AttachResult{Dropped: dropped, ExecResult: ExecResult{
		Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode, Duration: time.Since(began),
		StdoutTruncated: res.StdoutTruncated, StderrTruncated: res.StderrTruncated,
	}}, nil
}

// Wait waits for the process to exit and returns how it ended, with its
// output from the start (as far as the guest kept it).
func (p *Process) Wait(ctx context.Context) (*AttachResult, error) { return p.Attach(ctx, 0, nil) }
