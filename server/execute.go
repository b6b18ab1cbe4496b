package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/internal/protocol"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// execRequest decodes an execute's body into the engine's request.
func execRequest(c *call) (engine.ExecRequest, error) {
	var req api.ExecRequest
	if err := readJSON(c.w, c.r, &req); err != nil {
		return engine.ExecRequest{}, err
	}
	if req.Timeout < 0 {
		return engine.ExecRequest{}, apiError(engine.KindBadRequest, "timeout %v is negative", req.Timeout)
	}
	out := engine.ExecRequest{Command: req.Command, Timeout: seconds(req.Timeout), Cwd: req.Cwd, Shell: req.Shell,
		Env: req.Env, User: req.User, MaxOutput: req.MaxOutput}
	if req.Stdin != "" {
		out.Stdin = []byte(req.Stdin)
	}
	if req.StdinB64 != "" {
		if req.Stdin != "" {
			return out, apiError(engine.KindBadRequest, "give stdin or stdin_b64, not both")
		}
		b, err := base64.StdEncoding.DecodeString(req.StdinB64)
		if err != nil {
			return out, apiError(engine.KindBadRequest, "stdin_b64 is not base64: %v", err)
		}
		out.Stdin = b
	}
	return out, nil
}

// resultOf is a result as the wire carries it; output says whether with
// its output (a stream's exit event has none).
func resultOf(r *engine.ExecResult, output bool) api.ExecResult {
	out := api.ExecResult{ExitCode: r.ExitCode, TimedOut: r.TimedOut, Duration: r.Duration.Seconds(),
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated}
	if output {
		out.Stdout, out.StdoutB64 = protocol.EncodeChunk(r.Stdout)
		out.Stderr, out.StderrB64 = protocol.EncodeChunk(r.Stderr)
	}
	return out
}

func (s *Server) execute(c *call) error {
	req, err := execRequest(c)
	if err != nil {
		return err
	}
	res, err := c.entry.sb.Execute(c.ctx(), req)
	if err != nil {
		return err
	}
	s.metrics.executed()
	return c.json(http.StatusOK, resultOf(res, true))
}

func (s *Server) executeStream(c *call) error {
	req, err := execRequest(c)
	if err != nil {
		return err
	}
	st, err := openStream(c)
	if err != nil {
		return err
	}
	req.OnOutput = st.chunk
	res, err := c.entry.sb.Execute(c.ctx(), req)
	s.metrics.executed()
	return st.end(resultOf(orEmpty(res), false), err)
}

func orEmpty(r *engine.ExecResult) *engine.ExecResult {
	if r == nil {
		return &engine.ExecResult{}
	}
	return r
}

// eventStream is an answer of Server-Sent Events: output chunks, then one
// exit or error event.
type eventStream struct {
	c      *call
	rc     *http.ResponseController
	binary bool   // records (serverapi.StreamType), not SSE
	buf    []byte // the event being written, reused
}

// openStream starts the answer as an event stream: from here on, an
// error is an event, not a status. The events are written here, not by an
// SSE library: output goes as text lines (serverapi.AppendChunkEvent),
// which no library's message type writes byte for byte.
func openStream(c *call) (*eventStream, error) {
	binary := strings.Contains(c.r.Header.Get("Accept"), api.StreamType)
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	if binary {
		h.Set("Content-Type", api.StreamType)
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold output back
	c.w.WriteHeader(http.StatusOK)
	c.answered = true
	st := &eventStream{c: c, rc: http.NewResponseController(c.w), binary: binary}
	return st, st.rc.Flush()
}

// write sends the event in st.buf. A client gone makes the call fail,
// which abandons the command.
func (st *eventStream) write() error {
	if _, err := st.c.w.Write(st.buf); err != nil {
		return err
	}
	return st.rc.Flush()
}

// send writes one event of JSON data (one line: JSON holds no raw newline).
func (st *eventStream) send(kind string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if st.binary {
		record := byte(api.RecordExit)
		if kind == api.EventError {
			record = api.RecordError
		}
		st.buf = api.AppendRecord(st.buf[:0], record, b)
		return st.write()
	}
	st.buf = append(append(append(append(append(st.buf[:0], "event: "...), kind...), "\ndata: "...), b...), "\n\n"...)
	return st.write()
}

// chunk is an engine OnOutput: each chunk an event.
func (st *eventStream) chunk(s engine.Stream, p []byte) error {
	switch {
	case !st.binary:
		st.buf = api.AppendChunkEvent(st.buf[:0], s == engine.Stderr, p)
	case s == engine.Stderr:
		st.buf = api.AppendRecord(st.buf[:0], api.RecordStderr, p)
	default:
		st.buf = api.AppendRecord(st.buf[:0], api.RecordStdout, p)
	}
	return st.write()
}

// end sends the exit event, or the error event of err, and returns err
// for the request log.
func (st *eventStream) end(res any, err error) error {
	if err != nil {
		err = st.c.srv.restarting(err)
		body, _ := errorBody(err)
		st.send(api.EventError, body)
		return err
	}
	return st.send(api.EventExit, res)
}
