// Package agent is the host side of the guest agent protocol: an HTTP client
// for /ping and /execute and a Server-Sent Events reader for /execute_stream.
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	sse "github.com/tmaxmax/go-sse"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Stream tells stdout from stderr, numbered as everywhere.
type Stream = protocol.Stream

const (
	Stdout = protocol.Stdout
	Stderr = protocol.Stderr
)

// maxEventSize bounds one SSE event: a 64 KiB chunk, escaped as JSON text
// (up to 6 bytes a byte) plus its base64 copy.
const maxEventSize = 1 << 20

// Result is a finished command.
type Result struct {
	Stdout, Stderr                   []byte
	ExitCode                         int
	TimedOut                         bool
	StdoutTruncated, StderrTruncated bool
}

// StatusError is an answer other than 200 from the agent.
type StatusError struct {
	Status int
	Detail string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("agent answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
}

// Client talks to one agent.
type Client struct {
	base  string
	token atomic.Pointer[string]
	http  *http.Client
	// forwardOnly is the port forward alone, for what needs a socket in
	// the guest (ConnectMount).
	forwardOnly *http.Client
	channel     atomic.Pointer[Channel]
	mux         atomic.Pointer[MuxLink]
}

// New returns a client for the agent at addr ("127.0.0.1:port").
func New(addr, token string) *Client {
	c := &Client{base: "http://" + addr}
	forward := newDialGate(5 * time.Second)
	transport := func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
		return &http.Client{Transport: &http.Transport{
			Proxy:               nil, // never send the sandbox's traffic through a proxy
			DialContext:         dial,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}}
	}
	c.http = transport(func(ctx context.Context, network, addr string) (net.Conn, error) {
		if l := c.mux.Load(); l != nil {
			if st := l.open(); st != nil {
				return st, nil
			}
		}
		return forward.DialContext(ctx, network, addr)
	})
	c.forwardOnly = transport(forward.DialContext)
	c.SetToken(token)
	return c
}

// SetToken changes the token sent from now on (after /resume).
func (c *Client) SetToken(token string) { c.token.Store(&token) }

// SetMux makes later calls go over l while it is up (nil: the port
// forward only). Connections already open stay where they are.
func (c *Client) SetMux(l *MuxLink) {
	c.mux.Store(l)
	if l == nil {
		return
	}
	go func() {
		// Idle connections are taken before new ones are made: those of
		// the port forward must go for calls to take the link.
		if l.Wait(context.Background()) == nil && c.mux.Load() == l {
			c.http.CloseIdleConnections()
		}
	}()
}

// SetChannel makes later executes ask for their output over ch (nil: in the
// answers).
func (c *Client) SetChannel(ch *Channel) { c.channel.Store(ch) }

// Close drops idle connections (not the output channel, which its owner
// closes).
func (c *Client) Close() {
	c.http.CloseIdleConnections()
	c.forwardOnly.CloseIdleConnections()
}

// outputLimit is how many bytes of each stream a call keeps for its
// result: the request's max_output, or the default. A streaming call's
// callback still gets every byte.
func outputLimit(req *protocol.ExecRequest) int64 {
	if req.MaxOutput > 0 {
		return req.MaxOutput
	}
	return protocol.DefaultMaxOutput
}

// errUnaskedChannel is an answer that says its output went over an output
// channel the request did not ask for.
var errUnaskedChannel = errors.New("the agent answered over an output channel it was not asked to use")

// openCall asks for the output channel in req when there is one. The agent
// may still answer in-band (it has no channel, or it is not connected).
func (c *Client) openCall(req *protocol.ExecRequest, streaming bool) *ChannelCall {
	ch := c.channel.Load()
	if ch == nil {
		return nil
	}
	cc, err := ch.Open(streaming, outputLimit(req))
	if err != nil {
		return nil // the channel broke: in-band it is
	}
	req.OutputChannel = cc.ID()
	return cc
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	if body == nil {
		return c.doRaw(ctx, method, path, nil, "")
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, errors.Wrap(err, "encoding the request")
	}
	return c.doRaw(ctx, method, path, bytes.NewReader(raw), "application/json")
}

// doRaw makes a request with body as it is (streamed, when it is not a
// bytes.Reader) and returns the answer, or a *StatusError for one that is
// not 200.
func (c *Client) doRaw(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, errors.Wrap(err, "making the request")
	}
	req.Header.Set("Authorization", "Bearer "+*c.token.Load())
	req.Header.Set(protocol.ExtensionsHeader, "1")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, &StatusError{Status: resp.StatusCode, Detail: detailOf(raw)}
	}
	return resp, nil
}

// detailOf is what an error answer says: its JSON "detail", or its text.
func detailOf(raw []byte) string {
	var eb protocol.ErrorBody
	if json.Unmarshal(raw, &eb) != nil || eb.Detail == "" {
		return string(raw)
	}
	return eb.Detail
}

// smallAnswer bounds the answers that carry no output (ping, resume).
const smallAnswer = 64 << 10

// executeAnswerLimit bounds an /execute answer that carries the output of
// a call capped at maxOutput bytes per stream: each byte can take up to six
// as JSON text ("\u0000") and more again as base64 when the stream is not
// UTF-8. The guest is untrusted: it could otherwise send without end.
func executeAnswerLimit(maxOutput int64) int64 {
	if maxOutput <= 0 {
		maxOutput = protocol.DefaultMaxOutput
	}
	return 2*8*maxOutput + smallAnswer
}

// call makes one request and decodes its JSON answer, at most limit bytes,
// into answer.
func (c *Client) call(ctx context.Context, method, path string, body, answer any, limit int64) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	lr := &io.LimitedReader{R: resp.Body, N: limit + 1}
	err = json.NewDecoder(lr).Decode(answer)
	if lr.N <= 0 {
		return errors.Errorf("the answer to %s is larger than %d bytes", path, limit)
	}
	return errors.Wrapf(err, "reading the answer to %s", path)
}

// Ping asks the agent whether it is there and accepts the token.
func (c *Client) Ping(ctx context.Context) error {
	var p protocol.PingResult
	if err := c.call(ctx, http.MethodGet, protocol.PathPing, nil, &p, smallAnswer); err != nil {
		return err
	}
	if !p.Pong {
		return errors.New("the agent answered the ping without pong")
	}
	return nil
}

// Capabilities asks the agent, with the client's token, what it can do
// beyond the base protocol (protocol.AuthResult).
func (c *Client) Capabilities(ctx context.Context) ([]string, error) {
	var r protocol.AuthResult
	if err := c.call(ctx, http.MethodPost, protocol.PathAuthenticate, protocol.AuthRequest{Token: *c.token.Load()}, &r, smallAnswer); err != nil {
		return nil, err
	}
	if !r.Authenticated {
		return nil, errors.New("the agent did not take its token")
	}
	return r.Capabilities, nil
}

// Resume tells the agent its VM was resumed (protocol.ResumeRequest). On
// success the agent accepts only req.Token; call SetToken with it.
func (c *Client) Resume(ctx context.Context, req protocol.ResumeRequest) (protocol.ResumeResult, error) {
	var r protocol.ResumeResult
	if err := c.call(ctx, http.MethodPost, protocol.PathResume, req, &r, smallAnswer); err != nil {
		return r, err
	}
	if !r.Resumed {
		return r, errors.New("the agent did not take the resume")
	}
	return r, nil
}

// Execute runs a command and waits for all of its output, which it puts
// where alloc says (nil: Go's heap).
func (c *Client) Execute(ctx context.Context, req protocol.ExecRequest, alloc Alloc) (*Result, error) {
	cc := c.openCall(&req, false)
	if cc != nil {
		defer cc.Close()
	}
	var r protocol.ExecResult
	if err := c.call(ctx, http.MethodPost, protocol.PathExecute, req, &r, executeAnswerLimit(req.MaxOutput)); err != nil {
		return nil, err
	}
	res := &Result{
		ExitCode: r.ExitCode, TimedOut: r.TimedOut,
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated,
	}
	if r.ChannelBytes != nil {
		if cc == nil {
			return nil, errUnaskedChannel
		}
		if err := cc.Wait(ctx, *r.ChannelBytes); err != nil {
			return nil, err
		}
		res.Stdout, res.Stderr, res.StdoutTruncated, res.StderrTruncated = cc.Output(alloc)
		return res, nil
	}
	var err error
	if res.Stdout, err = protocol.DecodeChunk(r.Stdout, r.StdoutB64); err != nil {
		return nil, err
	}
	if res.Stderr, err = protocol.DecodeChunk(r.Stderr, r.StderrB64); err != nil {
		return nil, err
	}
	limit := outputLimit(&req)
	res.Stdout, res.StdoutTruncated = capped(res.Stdout, limit, res.StdoutTruncated)
	res.Stderr, res.StderrTruncated = capped(res.Stderr, limit, res.StderrTruncated)
	res.Stdout, res.Stderr = placeOutputs(res.Stdout, res.Stderr, alloc)
	return res, nil
}

// capped holds a stream of an in-band answer to the call's cap, as the
// agent holds it: a lying one may send up to executeAnswerLimit, many
// times the cap. What is kept is a copy, so the answer's memory goes.
func capped(p []byte, limit int64, cut bool) ([]byte, bool) {
	if int64(len(p)) <= limit {
		return p, cut
	}
	k := keptOutput{limit: limit}
	k.add(p)
	return k.bytes(), true
}

// ExecuteStream runs a command and calls onChunk with each chunk of output
// as it arrives, on the calling goroutine, in the order the agent sent them.
// The whole output is also collected into the result. If onChunk returns an
// error the stream is abandoned (which kills the command in the guest) and
// that error is returned.
//
// Output comes over the output channel when there is one, else in the
// events themselves; either way the event stream ends with the exit event.
//
// The result's output goes where alloc says (nil: Go's heap).
func (c *Client) ExecuteStream(ctx context.Context, req protocol.ExecRequest, alloc Alloc, onChunk func(Stream, []byte) error) (*Result, error) {
	cc := c.openCall(&req, true)
	if cc != nil {
		defer cc.Close()
	}
	// The request runs on its own goroutine: channel output can arrive
	// before the answer's headers, and must be taken (granting more) for
	// the command to go on.
	events, stop := c.streamEvents(ctx, req)
	defer stop()

	st := &stream{cc: cc, onChunk: onChunk, out: keptOutputs(outputLimit(&req)), alloc: alloc}
	defer st.release()
	var ready, dead <-chan struct{}
	if cc != nil {
		ready, dead = cc.Ready(), cc.Dead()
	}
	var exit *protocol.Event
	var stragglers <-chan time.Time // after the exit event, while output is missing
	for {
		if exit != nil {
			if exit.ChannelBytes == nil {
				return st.result(exit), nil
			}
			if cc == nil {
				return nil, errUnaskedChannel
			}
			if cc.Complete(*exit.ChannelBytes) {
				if err := st.deliver(true); err != nil {
					return nil, err
				}
				return st.result(exit), nil
			}
			if dead == nil { // the channel is gone and output with it
				return nil, cc.missing(*exit.ChannelBytes)
			}
		}
		select {
		case <-ready:
			if err := st.deliver(false); err != nil {
				return nil, err
			}
			if exit != nil {
				stragglers = time.After(stragglerWait)
			}
		case r, ok := <-events:
			if !ok {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				return nil, errors.New("the event stream ended without an exit event")
			}
			if r.err != nil {
				return nil, r.err
			}
			if err := st.event(&r.ev); err != nil {
				return nil, err
			}
			if r.ev.Kind() == protocol.EventExit {
				exit = &r.ev
				stragglers = time.After(stragglerWait)
				drainEvents(events)
				events = nil
			}
		case <-dead:
			dead = nil
		case <-stragglers:
			return nil, cc.missing(*exit.ChannelBytes)
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// drainEvents reads the stream to its end after the exit event, so that the
// connection is kept for the next call rather than cut; an agent that keeps
// the stream open gets a second, then the request is abandoned.
func drainEvents(events <-chan eventOrError) {
	limit := time.NewTimer(time.Second)
	defer limit.Stop()
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-limit.C:
			return
		}
	}
}

// stream is the state of one ExecuteStream call.
type stream struct {
	cc      *ChannelCall
	onChunk func(Stream, []byte) error
	// in-band output, at most limit bytes of each stream for the result
	out [3]keptOutput
	// channel output held back because it ends inside a UTF-8 character
	pending [3][]byte
	alloc   Alloc // where the result's output goes
}

// event handles one event from the agent.
func (st *stream) event(e *protocol.Event) error {
	switch e.Kind() {
	case protocol.EventStdout, protocol.EventStderr:
		p, err := protocol.DecodeChunk(e.Data, e.DataB64)
		if err != nil {
			return err
		}
		s := Stdout
		if e.Kind() == protocol.EventStderr {
			s = Stderr
		}
		st.out[s].add(p)
		if st.onChunk != nil {
			return st.onChunk(s, p)
		}
	case protocol.EventExit:
		if e.ExitCode == nil {
			return errors.New("exit event without exit_code")
		}
	case protocol.EventError:
		return errors.Errorf("the agent failed during the command: %s", e.Detail)
	}
	return nil
}

// deliver hands the channel's new chunks to onChunk, never ending a chunk
// inside a UTF-8 character (as in-band chunks never do) unless last, and
// then lets the guest send as much again.
func (st *stream) deliver(last bool) error {
	var used int64
	defer func() { st.cc.Consumed(used) }()
	chunks, err := st.cc.Take()
	if err != nil {
		return err
	}
	for _, ch := range coalesce(chunks) {
		used += int64(len(ch.Data))
		p := ch.Data
		if held := st.pending[ch.Stream]; len(held) > 0 {
			p = append(held, p...)
		}
		head, tail := protocol.SplitUTF8(p)
		st.pending[ch.Stream] = append([]byte(nil), tail...)
		if err := st.send(ch.Stream, head); err != nil {
			return err
		}
	}
	if last {
		for _, s := range []Stream{Stdout, Stderr} {
			p := st.pending[s]
			st.pending[s] = nil
			if err := st.send(s, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (st *stream) send(s Stream, p []byte) error {
	if len(p) == 0 || st.onChunk == nil {
		return nil
	}
	return st.onChunk(s, p)
}

// result is the call's result, its output moved where st.alloc says.
func (st *stream) result(exit *protocol.Event) *Result {
	res := &Result{ExitCode: *exit.ExitCode, TimedOut: exit.TimedOut}
	if exit.ChannelBytes != nil {
		res.Stdout, res.Stderr, res.StdoutTruncated, res.StderrTruncated = st.cc.Output(st.alloc)
		return res
	}
	res.Stdout, res.Stderr = moveOutputs(&st.out, st.alloc)
	res.StdoutTruncated, res.StderrTruncated = st.out[Stdout].cut, st.out[Stderr].cut
	return res
}

// release gives back what the call kept in-band and no result took.
func (st *stream) release() {
	st.out[Stdout].release()
	st.out[Stderr].release()
}

// eventOrError is one event read from the stream, or why reading failed.
type eventOrError struct {
	ev  protocol.Event
	err error
}

// streamEvents posts req to /execute_stream and reads the event stream on
// its own goroutine, so that the caller can wait for events and channel
// output at once. The channel closes after the last event; stop abandons
// the request.
func (c *Client) streamEvents(ctx context.Context, req protocol.ExecRequest) (events <-chan eventOrError, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan eventOrError)
	go func() {
		defer close(out)
		emit := func(r eventOrError) bool {
			select {
			case out <- r:
				return r.err == nil
			case <-ctx.Done():
				return false
			}
		}
		resp, err := c.do(ctx, http.MethodPost, protocol.PathExecuteStream, req)
		if err != nil {
			emit(eventOrError{err: err})
			return
		}
		defer resp.Body.Close()
		readEvents(resp.Body, emit)
	}()
	return out, cancel
}

// readEvents parses an event stream from the guest (untrusted: each event
// is bounded by maxEventSize) and hands each event, or the first error, to
// emit until emit returns false.
func readEvents(body io.Reader, emit func(eventOrError) bool) {
	for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: maxEventSize}) {
		var r eventOrError
		if err != nil {
			r.err = errors.Wrap(err, "reading the event stream")
		} else if err := json.Unmarshal([]byte(ev.Data), &r.ev); err != nil {
			r.err = errors.Wrapf(err, "decoding event %.100q", ev.Data)
		}
		if !emit(r) {
			return
		}
	}
}

// coalesceMax bounds a chunk made of several.
const coalesceMax = 1 << 20

// coalesce joins runs of chunks of the same stream that arrived while the
// caller was busy with the previous ones, up to coalesceMax each: every
// chunk handed to a caller costs a call into its code (into Python or
// JavaScript through the C ABI, tens of microseconds each), so a slow
// consumer gets fewer, bigger chunks instead of falling further behind.
// Output that the caller keeps up with arrives as it came. Every chunk is
// the call's own copy (receive), so appending to one touches nothing else.
func coalesce(chunks []Chunk) []Chunk {
	if len(chunks) < 2 {
		return chunks
	}
	out := make([]Chunk, 0, len(chunks))
	for _, c := range chunks {
		if n := len(out); n > 0 && out[n-1].Stream == c.Stream && len(out[n-1].Data)+len(c.Data) <= coalesceMax {
			out[n-1].Data = append(out[n-1].Data, c.Data...)
			continue
		}
		out = append(out, c)
	}
	return out
}
