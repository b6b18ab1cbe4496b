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

// Stream tells stdout from stderr.
type Stream int

const (
	Stdout Stream = 1 // the values cross the C ABI unchanged
	Stderr Stream = 2
)

func (s Stream) String() string {
	if s == Stdout {
		return "stdout"
	}
	return "stderr"
}

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
}

// New returns a client for the agent at addr ("127.0.0.1:port").
func New(addr, token string) *Client {
	tr := &http.Transport{
		Proxy:               nil, // never send the sandbox's traffic through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	c := &Client{base: "http://" + addr, http: &http.Client{Transport: tr}}
	c.SetToken(token)
	return c
}

// SetToken changes the token sent from now on (after /resume).
func (c *Client) SetToken(token string) { c.token.Store(&token) }

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, errors.Wrap(err, "encoding the request")
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, errors.Wrap(err, "making the request")
	}
	req.Header.Set("Authorization", "Bearer "+*c.token.Load())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb protocol.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Detail == "" {
			eb.Detail = string(raw)
		}
		return nil, &StatusError{Status: resp.StatusCode, Detail: eb.Detail}
	}
	return resp, nil
}

// call makes one request and decodes its JSON answer into answer.
func (c *Client) call(ctx context.Context, method, path string, body, answer any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return errors.Wrapf(json.NewDecoder(resp.Body).Decode(answer), "reading the answer to %s", path)
}

// Ping asks the agent whether it is there and accepts the token.
func (c *Client) Ping(ctx context.Context) error {
	var p protocol.PingResult
	if err := c.call(ctx, http.MethodGet, protocol.PathPing, nil, &p); err != nil {
		return err
	}
	if !p.Pong {
		return errors.New("the agent answered the ping without pong")
	}
	return nil
}

// Resume tells the agent its VM was resumed (protocol.ResumeRequest). On
// success the agent accepts only req.Token; call SetToken with it.
func (c *Client) Resume(ctx context.Context, req protocol.ResumeRequest) error {
	var r protocol.ResumeResult
	if err := c.call(ctx, http.MethodPost, protocol.PathResume, req, &r); err != nil {
		return err
	}
	if !r.Resumed {
		return errors.New("the agent did not take the resume")
	}
	return nil
}

// Execute runs a command and waits for all of its output.
func (c *Client) Execute(ctx context.Context, req protocol.ExecRequest) (*Result, error) {
	var r protocol.ExecResult
	if err := c.call(ctx, http.MethodPost, protocol.PathExecute, req, &r); err != nil {
		return nil, err
	}
	out, err := protocol.DecodeChunk(r.Stdout, r.StdoutB64)
	if err != nil {
		return nil, err
	}
	errOut, err := protocol.DecodeChunk(r.Stderr, r.StderrB64)
	if err != nil {
		return nil, err
	}
	return &Result{
		Stdout: out, Stderr: errOut, ExitCode: r.ExitCode, TimedOut: r.TimedOut,
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated,
	}, nil
}

// ExecuteStream runs a command and calls onChunk with each chunk of output
// as it arrives, on the calling goroutine, in the order the agent sent them.
// The whole output is also collected into the result. If onChunk returns an
// error the stream is abandoned (which kills the command in the guest) and
// that error is returned.
func (c *Client) ExecuteStream(ctx context.Context, req protocol.ExecRequest, onChunk func(Stream, []byte) error) (*Result, error) {
	resp, err := c.do(ctx, http.MethodPost, protocol.PathExecuteStream, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	res := &Result{}
	for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: maxEventSize}) {
		if err != nil {
			return nil, errors.Wrap(err, "reading the event stream")
		}
		var e protocol.Event
		if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
			return nil, errors.Wrapf(err, "decoding event %.100q", ev.Data)
		}
		switch e.Kind() {
		case protocol.EventStdout, protocol.EventStderr:
			p, err := protocol.DecodeChunk(e.Data, e.DataB64)
			if err != nil {
				return nil, err
			}
			s := Stdout
			if e.Kind() == protocol.EventStderr {
				s = Stderr
				res.Stderr = append(res.Stderr, p...)
			} else {
				res.Stdout = append(res.Stdout, p...)
			}
			if onChunk != nil {
				if err := onChunk(s, p); err != nil {
					return nil, err
				}
			}
		case protocol.EventExit:
			if e.ExitCode == nil {
				return nil, errors.New("exit event without exit_code")
			}
			res.ExitCode, res.TimedOut = *e.ExitCode, e.TimedOut
			return res, nil
		case protocol.EventError:
			return nil, errors.Errorf("the agent failed during the command: %s", e.Detail)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("the event stream ended without an exit event")
}
