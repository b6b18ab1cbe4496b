package agent

import (
	"context"
	"encoding/json"
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
	var total int64
	for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: maxCodeEventSize}) {
		if err != nil {
			return 0, errors.Wrap(err, "reading the code run's events")
		}
		if total += int64(len(ev.Data)); total > limit {
			return 0, errors.Errorf("the code run's output and results passed %d MiB", limit>>20)
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
