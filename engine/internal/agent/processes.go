package agent

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// StartProcess starts a background process.
func (c *Client) StartProcess(ctx context.Context, req protocol.ProcessRequest) (protocol.ProcessStarted, error) {
	var answer protocol.ProcessStarted
	err := c.call(ctx, http.MethodPost, protocol.PathProcesses, req, &answer, smallAnswer)
	return answer, err
}

// Processes lists the background processes that run.
func (c *Client) Processes(ctx context.Context) ([]protocol.ProcessInfo, error) {
	var answer protocol.ProcessList
	// A thousand processes with long command lines: bounded all the same.
	err := c.call(ctx, http.MethodGet, protocol.PathProcesses, nil, &answer, 64<<20)
	return answer.Processes, err
}

// ProcessStdin sends body to a process's stdin, closing it after when
// closeAfter.
func (c *Client) ProcessStdin(ctx context.Context, id string, body io.Reader, closeAfter bool) error {
	q := "?id=" + url.QueryEscape(id)
	if closeAfter {
		q += "&close=1"
	}
	resp, err := c.doRaw(ctx, http.MethodPost, protocol.PathProcessStdin+q, body, "application/octet-stream")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// SignalProcess sends a signal to a process's group.
func (c *Client) SignalProcess(ctx context.Context, id string, signal int) error {
	var answer struct{}
	return c.call(ctx, http.MethodPost, protocol.PathProcessSignal, protocol.ProcessSignal{ID: id, Signal: signal}, &answer, smallAnswer)
}

// ResizeProcess changes a process's terminal size.
func (c *Client) ResizeProcess(ctx context.Context, id string, size protocol.TerminalSize) error {
	var answer struct{}
	return c.call(ctx, http.MethodPost, protocol.PathProcessResize, protocol.ProcessResize{ID: id, TerminalSize: size}, &answer, smallAnswer)
}

// AttachProcess follows a process's output from byte from (0: from the
// start, as far as the guest kept it) until it exits, handing each chunk
// to onChunk, and returns its result (the output it saw, at most maxOutput
// bytes of each stream) and how many bytes the guest had dropped.
func (c *Client) AttachProcess(ctx context.Context, id string, from int64, maxOutput int64, onChunk func(Stream, []byte) error) (*Result, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	path := protocol.PathProcessOutput + "?id=" + url.QueryEscape(id) + "&from=" + strconv.FormatInt(from, 10)
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if maxOutput <= 0 {
		maxOutput = protocol.DefaultMaxOutput
	}
	st := &stream{onChunk: onChunk, out: keptOutputs(maxOutput)}
	defer st.release()
	var dropped int64
	var res *Result
	var failed error
	readEvents(resp.Body, func(r eventOrError) bool {
		switch {
		case r.err != nil:
			failed = r.err
		case r.ev.Kind() == protocol.EventDropped:
			dropped = r.ev.Dropped
			return true
		default:
			failed = st.event(&r.ev)
			if failed == nil && r.ev.Kind() == protocol.EventExit {
				res = st.result(&r.ev)
				return false
			}
		}
		return failed == nil
	})
	switch {
	case failed != nil:
		return nil, dropped, failed
	case res == nil && ctx.Err() != nil:
		return nil, dropped, context.Cause(ctx)
	case res == nil:
		return nil, dropped, errors.New("the output stream ended without an exit event")
	}
	return res, dropped, nil
}
