package server

import (
	"encoding/json"
	"net/http"

	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/internal/protocol"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// The code interpreter (issue 29): runs in the sandbox's code contexts,
// streamed as the agent streams them (serverapi/code.go says why in its
// shape), and the contexts themselves.

// runCode streams a run's events. A failure before the first event (an
// unknown context or language, an image without a kernel) is a status;
// after it, an error event. The run is the request's: a client that goes
// away cancels it, and the engine interrupts the cell.
func (s *Server) runCode(c *call) error {
	var body api.CodeRunRequest
	if err := readJSON(c.w, c.r, &body); err != nil {
		return err
	}
	if body.Timeout < 0 {
		return apiError(engine.KindBadRequest, "timeout %v is negative (0 is none)", body.Timeout)
	}
	// Code events are JSON whatever the client accepts: records would
	// save it nothing (serverapi.StreamType is for raw output).
	c.r.Header.Del("Accept")
	var st *eventStream
	send := func(ev api.CodeEvent) error {
		if st == nil {
			var err error
			if st, err = openStream(c); err != nil {
				return err
			}
		}
		return st.codeEvent(ev)
	}
	req := engine.CodeRequest{Code: body.Code, Language: body.Language, Context: body.Context, Env: body.Env,
		Timeout:  seconds(body.Timeout),
		OnStdout: func(text string) error { return send(api.CodeEvent{Type: protocol.CodeEventStdout, Text: text}) },
		OnStderr: func(text string) error { return send(api.CodeEvent{Type: protocol.CodeEventStderr, Text: text}) },
		OnResult: func(r engine.CodeResult) error {
			return send(api.CodeEvent{Type: protocol.CodeEventResult,
				Result: &api.CodeResult{Data: r.MIMEBundle(), IsMainResult: r.IsMainResult}})
		},
		OnError: func(e engine.CodeError) error {
			return send(api.CodeEvent{Type: protocol.CodeEventError,
				Error: &api.CodeError{Name: e.Name, Value: e.Value, Traceback: e.Traceback}})
		},
	}
	ex, err := c.entry.sb.RunCode(c.ctx(), req)
	if st == nil && err != nil {
		return err
	}
	if err != nil {
		return st.end(nil, err)
	}
	return send(api.CodeEvent{Type: protocol.CodeEventEnd, ExecutionCount: ex.ExecutionCount})
}

// codeEvent writes one code event: its JSON as the data of an event with
// no SSE name, as the agent writes it.
func (st *eventStream) codeEvent(ev api.CodeEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	st.buf = append(append(append(st.buf[:0], "data: "...), b...), "\n\n"...)
	return st.write()
}

func contextBody(c engine.CodeContext) api.CodeContext {
	return api.CodeContext{ID: c.ID, Language: c.Language, Cwd: c.Cwd, Default: c.Default}
}

func (s *Server) createCodeContext(c *call) error {
	var body api.CodeContextOptions
	if err := readJSON(c.w, c.r, &body); err != nil {
		return err
	}
	cc, err := c.entry.sb.CreateCodeContext(c.ctx(), engine.CodeContextOptions{Language: body.Language, Cwd: body.Cwd})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, contextBody(cc))
}

func (s *Server) listCodeContexts(c *call) error {
	list, err := c.entry.sb.CodeContexts(c.ctx())
	if err != nil {
		return err
	}
	out := api.CodeContextList{Contexts: []api.CodeContext{}}
	for _, cc := range list {
		out.Contexts = append(out.Contexts, contextBody(cc))
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) restartCodeContext(c *call) error {
	if err := c.entry.sb.RestartCodeContext(c.ctx(), c.r.PathValue("context")); err != nil {
		return err
	}
	return c.noContent()
}

func (s *Server) removeCodeContext(c *call) error {
	if err := c.entry.sb.RemoveCodeContext(c.ctx(), c.r.PathValue("context")); err != nil {
		return err
	}
	return c.noContent()
}
