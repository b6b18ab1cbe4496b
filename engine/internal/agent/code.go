package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/pkg/errors"
	sse "github.com/tmaxmax/go-sse"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// maxCodeEventSize bounds one event of a code run: a result carries a
// chart as base64 or a table as HTML, far larger than an output chunk.
const maxCodeEventSize = 64 << 20

// RunCode runs code in a code context and hands each event but the last
// to onEvent; it returns the end event's execution count. The guest is
// untrusted: the events of a run may come to limit bytes in all.
func (c *Client) RunCode(ctx context.Context, req protocol.CodeRunRequest, limit int64, onEvent func(protocol.CodeEvent) error) (int, error) {
	resp, err := c.do(ctx, http.MethodPost, protocol.PathCodeRun, req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return ReadCodeEvents(ctx, resp.Body, limit, onEvent, nil)
}

// ReadCodeEvents reads a code run's Server-Sent Events, each one's data a
// CodeEvent's JSON, hands each but the end to onEvent, and returns the
// end's execution count. The sender is untrusted: the events may come to
// limit bytes in all. The agent's events have no SSE name; a server's
// (quicksand serve) failure is a named event, which goes to onNamed when
// it is set (its error ends the reading) and is decoded as the others
// when it is not. The engine's client of a server reads with this too, so
// that a remote run is decoded as a local one.
func ReadCodeEvents(ctx context.Context, body io.Reader, limit int64, onEvent func(protocol.CodeEvent) error, onNamed func(name, data string) error) (int, error) {
	var total int64
	for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: maxCodeEventSize}) {
		if err != nil {
			return 0, errors.Wrap(err, "reading the code run's events")
		}
		if total += int64(len(ev.Data)); total > limit {
			return 0, errors.Errorf("the code run's output and results passed %d MiB", limit>>20)
		}
		if ev.Type != "" && onNamed != nil {
			if err := onNamed(ev.Type, ev.Data); err != nil {
				return 0, err
			}
			continue
		}
		var e protocol.CodeEvent
		if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
			return 0, errors.Wrapf(err, "decoding event %.100q", ev.Data)
		}
		if e.Type == protocol.CodeEventEnd {
			return e.ExecutionCount, nil
		}
		if err := onEvent(e); err != nil {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("the code run's events ended without its end")
}

// CreateCodeContext makes a code context (and starts its kernel).
func (c *Client) CreateCodeContext(ctx context.Context, req protocol.CodeContextRequest) (protocol.CodeContext, error) {
	var answer protocol.CodeContext
	err := c.call(ctx, http.MethodPost, protocol.PathCodeContexts, req, &answer, smallAnswer)
	return answer, err
}

// CodeContexts lists the code contexts.
func (c *Client) CodeContexts(ctx context.Context) ([]protocol.CodeContext, error) {
	var answer protocol.CodeContextList
	err := c.call(ctx, http.MethodGet, protocol.PathCodeContexts, nil, &answer, 16<<20)
	return answer.Contexts, err
}

// RestartCodeContext gives a code context fresh state.
func (c *Client) RestartCodeContext(ctx context.Context, id string) (protocol.CodeContext, error) {
	var answer protocol.CodeContext
	err := c.call(ctx, http.MethodPost, protocol.PathCodeContextRestart, protocol.CodeContextID{ID: id}, &answer, smallAnswer)
	return answer, err
}

// RemoveCodeContext stops a code context.
func (c *Client) RemoveCodeContext(ctx context.Context, id string) error {
	var answer struct{}
	return c.call(ctx, http.MethodPost, protocol.PathCodeContextRemove, protocol.CodeContextID{ID: id}, &answer, smallAnswer)
}
