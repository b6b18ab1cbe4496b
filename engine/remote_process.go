package engine

import (
	"context"
	"io"
	"net/http"
	"syscall"

	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// Background processes and snapshots of a server's sandbox.

func (r *remoteSandbox) startProcess(ctx context.Context, sb *Sandbox, req ProcessRequest) (*Process, error) {
	body := serverapi.ProcessRequest{Command: req.Command, Cwd: req.Cwd, Shell: req.Shell, Env: req.Env, User: req.User}
	if req.PTY != nil {
		body.PTY = &serverapi.TerminalSize{Rows: req.PTY.Rows, Cols: req.PTY.Cols}
	}
	var info serverapi.ProcessInfo
	err := r.c.run(ctx, r.alive, "starting "+quote(short(req.Command)), stallBound, func(ctx context.Context) error {
		return r.c.call(ctx, http.MethodPost, route(serverapi.PathProcesses, r.id), nil, body, &info, remoteSmallAnswer)
	})
	if err != nil {
		return nil, err
	}
	if info.ID == "" {
		return nil, newError(KindTransport, nil, "starting %s: the server gave the process no id", quote(short(req.Command)))
	}
	return &Process{sb: sb, ID: info.ID, PID: info.PID}, nil
}

func (r *remoteSandbox) processes(ctx context.Context) ([]ProcessInfo, error) {
	var list serverapi.ProcessList
	err := r.c.run(ctx, r.alive, "listing processes", stallBound, func(ctx context.Context) error {
		return r.c.call(ctx, http.MethodGet, route(serverapi.PathProcesses, r.id), nil, nil, &list, remoteListAnswer)
	})
	out := make([]ProcessInfo, len(list.Processes))
	for i, p := range list.Processes {
		out[i] = ProcessInfo{ID: p.ID, PID: p.PID, Command: p.Command, PTY: p.PTY}
	}
	return out, err
}

// processCall sends one request about process id; body is JSON (any) or a
// stream (io.Reader).
func (r *remoteSandbox) processCall(ctx context.Context, what, method, pattern, id string, body any) error {
	return r.c.run(ctx, r.alive, what+" process "+id, stallBound, func(ctx context.Context) error {
		path := route(pattern, r.id, id)
		if stream, ok := body.(io.Reader); ok {
			resp, err := r.c.do(ctx, method, path, nil, noteProgress(ctx, stream), "application/octet-stream")
			if err != nil {
				return err
			}
			return resp.Body.Close()
		}
		return r.c.call(ctx, method, path, nil, body, nil, 0)
	})
}

func (r *remoteSandbox) writeStdin(ctx context.Context, id string, data io.Reader) error {
	return r.processCall(ctx, "writing to", http.MethodPost, serverapi.PathStdin, id, data)
}

func (r *remoteSandbox) closeStdin(ctx context.Context, id string) error {
	return r.processCall(ctx, "closing the stdin of", http.MethodDelete, serverapi.PathStdin, id, nil)
}

func (r *remoteSandbox) signal(ctx context.Context, id string, sig syscall.Signal) error {
	return r.processCall(ctx, "signalling", http.MethodPost, serverapi.PathSignal, id, serverapi.Signal{Signal: int(sig)})
}

func (r *remoteSandbox) resize(ctx context.Context, id string, rows, cols int) error {
	return r.processCall(ctx, "resizing the terminal of", http.MethodPost, serverapi.PathResize, id, serverapi.TerminalSize{Rows: rows, Cols: cols})
}

// snapshotCall is a checkpoint, revert or save (answer: nil for none).
func (r *remoteSandbox) snapshotCall(ctx context.Context, what, pattern string, body, answer any) error {
	return r.c.run(ctx, r.alive, what, fixedBound(remoteSnapshotLimit), func(ctx context.Context) error {
		return r.c.call(ctx, http.MethodPost, route(pattern, r.id), nil, body, answer, remoteSmallAnswer)
	})
}

func (r *remoteSandbox) checkpoint(ctx context.Context, tag string) error {
	return r.snapshotCall(ctx, "checkpoint "+quote(tag), serverapi.PathCheckpoint, serverapi.Tag{Tag: tag}, nil)
}

func (r *remoteSandbox) revert(ctx context.Context, tag string) error {
	return r.snapshotCall(ctx, "revert to "+quote(tag), serverapi.PathRevert, serverapi.Tag{Tag: tag}, nil)
}

// save saves on the server's disk and returns the name the server gives
// the save (what a later create takes as its image).
func (r *remoteSandbox) save(ctx context.Context, name string) (string, error) {
	var answer serverapi.Name
	what := "save " + quote(name)
	if err := r.snapshotCall(ctx, what, serverapi.PathSave, serverapi.Name{Name: name}, &answer); err != nil {
		return "", err
	}
	if answer.Name == "" {
		return "", newError(KindTransport, nil, "%s: the server did not say the save's name", what)
	}
	return answer.Name, nil
}
