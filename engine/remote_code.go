package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/internal/protocol"
	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// The code interpreter on a server's sandbox. The server sends a run's
// events in the agent's own shape (serverapi.CodeEvent), so a remote run
// is decoded by the code that decodes a local one (agent.ReadCodeEvents,
// Execution.add): the same results, callbacks, order and 256 MiB cap.
// The calls are bounded as the local ones are: a run, a create and a
// restart wait on the guest for as long as the caller likes (a kernel
// takes most of a minute to start under emulation, a cell as long as it
// runs), the list and the remove by the stall limit.

// MIMEBundle is the result as Jupyter gives it: each format by its MIME
// type (the inverse of how a run's result is read). The server sends
// results so.
func (r CodeResult) MIMEBundle() map[string]any {
	out := map[string]any{}
	for mime, v := range r.Extra {
		out[mime] = v
	}
	for mime, s := range map[string]string{
		"text/plain": r.Text, "text/html": r.HTML, "text/markdown": r.Markdown, "image/svg+xml": r.SVG,
		"image/png": r.PNG, "image/jpeg": r.JPEG, "application/pdf": r.PDF, "text/latex": r.LaTeX,
		"application/javascript": r.JavaScript,
	} {
		if s != "" {
			out[mime] = s
		}
	}
	if r.JSON != nil {
		out["application/json"] = r.JSON
	}
	return out
}

// codeRoute fills a code route's {id} and {context}.
func codeRoute(pattern, id, contextID string) string {
	return strings.Replace(route(pattern, id), "{context}", url.PathEscape(contextID), 1)
}

// waitOnTheGuest marks ctx as the local calls mark theirs: no stall bound.
func waitOnTheGuest(ctx context.Context) context.Context {
	return context.WithValue(ctx, waitingOnTheGuest{}, true)
}

func (r *remoteSandbox) runCode(ctx context.Context, req CodeRequest) (*Execution, error) {
	raw, err := json.Marshal(serverapi.CodeRunRequest{Code: req.Code, Language: req.Language, Context: req.Context,
		Env: req.Env, Timeout: req.Timeout.Seconds()})
	if err != nil {
		return nil, newError(KindBadRequest, err, "running code: encoding the request")
	}
	exec := &Execution{}
	var cbErr error
	err = r.c.run(waitOnTheGuest(ctx), r.alive, "running code", stallBound, func(ctx context.Context) error {
		resp, err := r.c.do(ctx, http.MethodPost, route(serverapi.PathCodeRun, r.id), nil, bytes.NewReader(raw), "application/json")
		if err != nil {
			return err
		}
		// Closing it early (a callback's error, a cancel) drops the
		// connection: the server then interrupts the cell.
		defer resp.Body.Close()
		exec.ExecutionCount, err = agent.ReadCodeEvents(ctx, resp.Body, protocol.DefaultMaxOutput, func(ev protocol.CodeEvent) error {
			cbErr = exec.add(ev, &req)
			return cbErr
		}, func(name, data string) error {
			if name == serverapi.EventError {
				return r.c.errorEvent(data)
			}
			return nil // other events are for later versions of the server
		})
		return err
	})
	if cbErr != nil {
		return nil, cbErr // the caller's own, as it is
	}
	if err != nil {
		return nil, err
	}
	return exec, nil
}

func (r *remoteSandbox) createCodeContext(ctx context.Context, opts CodeContextOptions) (CodeContext, error) {
	var c serverapi.CodeContext
	err := r.c.run(waitOnTheGuest(ctx), r.alive, "creating a code context", stallBound, func(ctx context.Context) error {
		body := serverapi.CodeContextOptions{Language: opts.Language, Cwd: opts.Cwd}
		return r.c.call(ctx, http.MethodPost, route(serverapi.PathCodeContexts, r.id), nil, body, &c, remoteSmallAnswer)
	})
	if err != nil {
		return CodeContext{}, err
	}
	if c.ID == "" {
		return CodeContext{}, newError(KindTransport, nil, "creating a code context: the server gave the context no id")
	}
	return contextOf(c), nil
}

func (r *remoteSandbox) codeContexts(ctx context.Context) ([]CodeContext, error) {
	var list serverapi.CodeContextList
	err := r.c.run(ctx, r.alive, "listing code contexts", stallBound, func(ctx context.Context) error {
		return r.c.call(ctx, http.MethodGet, route(serverapi.PathCodeContexts, r.id), nil, nil, &list, remoteListAnswer)
	})
	if err != nil {
		return nil, err
	}
	out := make([]CodeContext, len(list.Contexts))
	for i, c := range list.Contexts {
		out[i] = contextOf(c)
	}
	return out, nil
}

func (r *remoteSandbox) restartCodeContext(ctx context.Context, id string) error {
	if err := checkContextID(id); err != nil {
		return newError(KindBadRequest, err, "restarting code context %q", id)
	}
	return r.c.run(waitOnTheGuest(ctx), r.alive, "restarting code context "+id, stallBound, func(ctx context.Context) error {
		return r.c.call(ctx, http.MethodPost, codeRoute(serverapi.PathCodeRestart, r.id, id), nil, nil, nil, 0)
	})
}

func (r *remoteSandbox) removeCodeContext(ctx context.Context, id string) error {
	if err := checkContextID(id); err != nil {
		return newError(KindBadRequest, err, "removing code context %q", id)
	}
	return r.c.run(ctx, r.alive, "removing code context "+id, stallBound, func(ctx context.Context) error {
		return r.c.call(ctx, http.MethodDelete, codeRoute(serverapi.PathCodeContext, r.id, id), nil, nil, nil, 0)
	})
}

// checkContextID refuses an id that cannot name a context in a path: an
// empty one would name the list of contexts instead.
func checkContextID(id string) error {
	if id == "" {
		return errors.New("the context id is empty")
	}
	return nil
}
