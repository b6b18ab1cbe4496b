package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pkg/errors"
	sse "github.com/tmaxmax/go-sse"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/internal/protocol"
	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// Commands' output from a server: a whole result as JSON, or Server-Sent
// Events (stdout and stderr chunks, then exactly one exit or error).

// maxRemoteEvent bounds one event from the server: a chunk the server's
// engine coalesced (up to 1 MiB), escaped as JSON text (up to 6 bytes a
// byte) and, when not UTF-8, in base64 as well.
const maxRemoteEvent = 8<<20 + 64<<10

// remoteAnswerLimit bounds a whole result's answer for a call capped at
// maxOutput bytes a stream: two streams, each byte up to 6 as JSON text
// ("\u0000"), and more again as base64 when a stream is not UTF-8.
func remoteAnswerLimit(maxOutput int64) int64 {
	if maxOutput <= 0 {
		maxOutput = protocol.DefaultMaxOutput
	}
	return 2*8*maxOutput + remoteSmallAnswer
}

// wire is req as the server takes it (checked as locally by toWire).
func (req ExecRequest) remoteWire() (serverapi.ExecRequest, time.Duration, error) {
	w, timeout, err := req.toWire()
	if err != nil {
		return serverapi.ExecRequest{}, 0, err
	}
	return serverapi.ExecRequest{
		Command: w.Command, Timeout: timeout.Seconds(), Cwd: w.Cwd, Shell: w.Shell, Env: w.Env,
		Stdin: w.Stdin, StdinB64: w.StdinB64, User: w.User, MaxOutput: w.MaxOutput,
	}, timeout, nil
}

// execute is Execute on the server: bounded as locally by the command's
// timeout and a margin, time in OnOutput not counted.
func (r *remoteSandbox) execute(ctx context.Context, req ExecRequest) (*ExecResult, error) {
	body, timeout, err := req.remoteWire()
	if err != nil {
		return nil, err
	}
	what := "executing " + quote(short(req.Command))
	var b *budget
	bound := func(ctx context.Context, expire func(error)) (context.Context, func()) {
		limit := timeout + remoteExecMargin
		b = startBudget(limit, func() {
			expire(errors.Errorf("the server did not answer within the command's timeout and %v", remoteExecMargin))
		})
		return ctx, b.stop
	}
	began := time.Now()
	var res *ExecResult
	var cbErr error
	err = r.c.run(ctx, r.alive, what, bound, func(ctx context.Context) (err error) {
		if req.OnOutput == nil {
			res, err = r.executeWhole(ctx, body, req.OutputMemory)
			return err
		}
		res, err = r.executeStream(ctx, body, req.OutputMemory, func(s Stream, p []byte) error {
			b.pause()
			defer b.resume()
			cbErr = req.OnOutput(s, p)
			return cbErr
		})
		return err
	})
	if cbErr != nil {
		return nil, cbErr // the caller's own, as it is
	}
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(began)
	return res, nil
}

// executeWhole posts to the execute route and reads the whole result.
func (r *remoteSandbox) executeWhole(ctx context.Context, body serverapi.ExecRequest, alloc agent.Alloc) (*ExecResult, error) {
	var w serverapi.ExecResult
	if err := r.c.call(ctx, http.MethodPost, route(serverapi.PathExecute, r.id), nil, body, &w, remoteAnswerLimit(body.MaxOutput)); err != nil {
		return nil, err
	}
	stdout, err := protocol.DecodeChunk(w.Stdout, w.StdoutB64)
	if err != nil {
		return nil, err
	}
	stderr, err := protocol.DecodeChunk(w.Stderr, w.StderrB64)
	if err != nil {
		return nil, err
	}
	limit := body.MaxOutput
	if limit <= 0 {
		limit = protocol.DefaultMaxOutput
	}
	res := resultOf(w)
	stdout, res.StdoutTruncated = agent.Capped(stdout, limit, res.StdoutTruncated)
	stderr, res.StderrTruncated = agent.Capped(stderr, limit, res.StderrTruncated)
	res.Stdout, res.Stderr = agent.PlaceOutputs(stdout, stderr, alloc)
	return res, nil
}

// executeStream posts to the stream route and follows its events.
func (r *remoteSandbox) executeStream(ctx context.Context, body serverapi.ExecRequest, alloc agent.Alloc, onChunk func(Stream, []byte) error) (*ExecResult, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, errors.Wrap(err, "encoding the request")
	}
	resp, err := r.c.do(ctx, http.MethodPost, route(serverapi.PathStream, r.id), nil, bytes.NewReader(raw), "application/json")
	if err != nil {
		return nil, err
	}
	// Closing it early (a callback's error, a cancel) drops the
	// connection: the server then ends the command.
	defer resp.Body.Close()
	w, kept, err := r.c.readStream(resp, body.MaxOutput, onChunk)
	if err != nil {
		return nil, err
	}
	res := resultOf(*w)
	defer kept.Release()
	var cutOut, cutErr bool
	res.Stdout, res.Stderr, cutOut, cutErr = kept.Move(alloc)
	res.StdoutTruncated = res.StdoutTruncated || cutOut
	res.StderrTruncated = res.StderrTruncated || cutErr
	return res, nil
}

// resultOf is a result without its output.
func resultOf(w serverapi.ExecResult) *ExecResult {
	return &ExecResult{ExitCode: w.ExitCode, TimedOut: w.TimedOut, StdoutTruncated: w.StdoutTruncated, StderrTruncated: w.StderrTruncated}
}

// readStream reads a server's event stream to its end event, keeping at
// most maxOutput bytes of each stream and handing every chunk to onChunk
// (nil: none) on the calling goroutine, in order. It returns the exit
// event's result and what was kept (the caller moves or releases it), the
// error event's error (an *Error), onChunk's error as it is, or why the
// stream is no answer (a plain error).
func (c *remoteClient) readStream(resp *http.Response, maxOutput int64, onChunk func(Stream, []byte) error) (*serverapi.ExecResult, *agent.Output, error) {
	kept := agent.NewOutput(maxOutput)
	fail := func(err error) (*serverapi.ExecResult, *agent.Output, error) {
		kept.Release()
		return nil, nil, err
	}
	for ev, err := range streamEvents(resp) {
		if err != nil {
			return fail(err)
		}
		switch ev.kind {
		case serverapi.EventStdout, serverapi.EventStderr:
			s := Stdout
			if ev.kind == serverapi.EventStderr {
				s = Stderr
			}
			kept.Add(agent.Stream(s), ev.data)
			if onChunk != nil && len(ev.data) > 0 {
				if err := onChunk(s, ev.data); err != nil {
					return fail(err)
				}
			}
		case serverapi.EventExit:
			var w serverapi.ExecResult
			if err := json.Unmarshal(ev.data, &w); err != nil {
				return fail(errors.Errorf("the server sent an exit event that is not a result: %.100q", ev.data))
			}
			if w.Dropped < 0 {
				return fail(errors.Errorf("the server said %d bytes were dropped", w.Dropped))
			}
			return &w, kept, nil
		case serverapi.EventError:
			return fail(c.errorEvent(string(ev.data)))
		}
		// Other events (none yet) are for later versions of the server.
	}
	return fail(errors.New("the server's event stream ended without an exit or error event"))
}

// streamEvent is one event of a stream, output decoded: kind is a
// serverapi.Event*, data valid until the next event.
type streamEvent struct {
	kind string
	data []byte
}

// streamEvents reads the events of an answer in either of its forms: the
// records asked for (serverapi.StreamType), or Server-Sent Events from a
// server that gives only those.
func streamEvents(resp *http.Response) iter.Seq2[streamEvent, error] {
	return func(yield func(streamEvent, error) bool) {
		if resp.Header.Get("Content-Type") != serverapi.StreamType {
			for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: maxRemoteEvent}) {
				if err != nil {
					yield(streamEvent{}, errors.Wrap(err, "reading the server's event stream"))
					return
				}
				p, stderr, chunk, err := serverapi.ChunkOf(ev.Type, ev.Data)
				e := streamEvent{kind: ev.Type, data: []byte(ev.Data)}
				if chunk {
					e = streamEvent{kind: serverapi.EventStdout, data: p}
					if stderr {
						e.kind = serverapi.EventStderr
					}
				}
				if !yield(e, err) || err != nil {
					return
				}
			}
			return
		}
		kinds := map[byte]string{serverapi.RecordStdout: serverapi.EventStdout, serverapi.RecordStderr: serverapi.EventStderr,
			serverapi.RecordExit: serverapi.EventExit, serverapi.RecordError: serverapi.EventError}
		r := bufio.NewReaderSize(resp.Body, 256<<10)
		var buf []byte
		for {
			kind, p, err := serverapi.ReadRecord(r, buf, maxRemoteEvent)
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(streamEvent{}, errors.Wrap(err, "reading the server's stream"))
				return
			}
			buf = p[:0]
			if !yield(streamEvent{kind: kinds[kind], data: p}, nil) {
				return
			}
		}
	}
}

// attach is Process.Attach on the server: a process may be silent for as
// long as it likes, so only ctx and Stop end it.
func (r *remoteSandbox) attach(ctx context.Context, id string, maxOutput int64, onChunk func(Stream, []byte) error) (*AttachResult, error) {
	if maxOutput < 0 {
		return nil, newError(KindBadRequest, nil, "attaching to process %s: max_output must not be negative", id)
	}
	began := time.Now()
	q := url.Values{}
	if maxOutput > 0 {
		q.Set("max_output", strconv.FormatInt(maxOutput, 10))
	}
	var res *AttachResult
	var cbErr error
	err := r.c.run(ctx, r.alive, "attaching to process "+id, unbounded, func(ctx context.Context) error {
		resp, err := r.c.do(ctx, http.MethodGet, route(serverapi.PathOutput, r.id, id), q, nil, "")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var cb func(Stream, []byte) error
		if onChunk != nil {
			cb = func(s Stream, p []byte) error { cbErr = onChunk(s, p); return cbErr }
		}
		w, kept, err := r.c.readStream(resp, maxOutput, cb)
		if err != nil {
			return err
		}
		defer kept.Release()
		res = &AttachResult{ExecResult: *resultOf(*w), Dropped: w.Dropped}
		var cutOut, cutErr bool
		res.Stdout, res.Stderr, cutOut, cutErr = kept.Move(nil)
		res.StdoutTruncated = res.StdoutTruncated || cutOut
		res.StderrTruncated = res.StderrTruncated || cutErr
		return nil
	})
	if cbErr != nil {
		return nil, cbErr
	}
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(began)
	return res, nil
}
