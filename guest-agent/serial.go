package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Quicksand's engine talks to its agent over a virtio-serial port rather
// than HTTP when the VM has one: length-prefixed JSON frames (4 bytes of
// big-endian length, then {"id", "method", "params"}), answered by frames
// {"id", "result"} or {"id", "error": {"message"}}, and for execute_stream
// by one frame per event, each the event plus the id. Our agent serves it
// beside HTTP, in Quicksand's dialect, by handing each request to the HTTP
// handlers: one implementation of every endpoint, two transports.

// maxFrame bounds a frame, as Quicksand's agent does.
const maxFrame = 64 << 20

// serveSerialPort serves the VM's protocol.AgentPortName port, if it has
// one. While nobody is connected on the host side, reads end at once:
// look again after a pause that grows to a quarter of a second, so that an
// idle port costs next to nothing and a client is still answered at once.
func (s *server) serveSerialPort() {
	f := openPort(protocol.AgentPortName)
	if f == nil {
		return
	}
	pause := 10 * time.Millisecond
	for {
		if s.serveFrames(f) {
			pause = 10 * time.Millisecond
		}
		time.Sleep(pause)
		pause = min(2*pause, 250*time.Millisecond)
	}
}

// serveFramesOn serves each connection to ln (tests on the host).
func (s *server) serveFramesOn(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = s.serveFrames(c)
		}()
	}
}

// frameConn is one connection of the framed transport.
type frameConn struct {
	srv *server
	wmu sync.Mutex
	w   io.Writer
	// authenticated: the connection gave the right token, so its requests
	// carry the current one.
	authenticated atomic.Bool
}

// frameMethods maps the transport's methods to the HTTP endpoints.
var frameMethods = map[string]struct{ httpMethod, path string }{
	"ping":           {http.MethodGet, protocol.PathPing},
	"execute":        {http.MethodPost, protocol.PathExecute},
	"execute_stream": {http.MethodPost, protocol.PathExecuteStream},
	"stdin":          {http.MethodPost, protocol.PathStdin},
	"cancel":         {http.MethodPost, protocol.PathCancel},
	"create_user":    {http.MethodPost, protocol.PathCreateUser},
	"delete_user":    {http.MethodPost, protocol.PathDeleteUser},
}

// serveFrames reads requests from rw until it ends or sends garbage, each
// handled concurrently (a long command must not hold up the next request);
// their commands are killed when it ends. It says whether any came.
func (s *server) serveFrames(rw io.ReadWriter) (served bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fc := &frameConn{srv: s, w: rw}
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	for {
		var req struct {
			ID     uint64          `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		payload, err := readFrame(rw)
		if err != nil {
			return served
		}
		served = true
		if json.Unmarshal(payload, &req) != nil {
			fc.send(map[string]any{"id": 0, "error": map[string]string{"message": "malformed frame"}})
			continue
		}
		if req.Method == "authenticate" {
			fc.authenticate(req.ID, req.Params)
			continue
		}
		if !fc.authenticated.Load() {
			fc.sendError(req.ID, "Not authenticated")
			continue
		}
		m, ok := frameMethods[req.Method]
		if !ok {
			fc.sendError(req.ID, "Unknown method: "+req.Method)
			continue
		}
		inFlight.Add(1)
		go func() {
			defer inFlight.Done()
			fc.call(ctx, req.ID, m.httpMethod, m.path, req.Params)
		}()
	}
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("a frame of %d bytes", n)
	}
	payload := make([]byte, n)
	_, err := io.ReadFull(r, payload)
	return payload, err
}

func (fc *frameConn) authenticate(id uint64, params json.RawMessage) {
	var req protocol.AuthRequest
	_ = json.Unmarshal(params, &req)
	ok := fc.srv.tokenMatches(req.Token)
	fc.authenticated.Store(ok)
	result := authenticated
	if !ok {
		result = protocol.AuthResult{}
	}
	fc.send(map[string]any{"id": id, "result": result})
}

// call runs one request through the HTTP handlers.
func (fc *frameConn) call(ctx context.Context, id uint64, method, path string, params json.RawMessage) {
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage("{}")
	}
	r, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(params))
	if err != nil {
		fc.sendError(id, err.Error())
		return
	}
	r.Header.Set("Authorization", "Bearer "+*fc.srv.token.Load())
	resp := &frameResponse{conn: fc, id: id, header: http.Header{}, status: http.StatusOK}
	fc.srv.ServeHTTP(resp, r)
	if resp.streamed {
		return // every event went out as a frame of its own
	}
	if resp.status != http.StatusOK {
		var body protocol.ErrorBody
		if json.Unmarshal(resp.body.Bytes(), &body) != nil || body.Detail == "" {
			body.Detail = fmt.Sprintf("HTTP %d", resp.status)
		}
		fc.sendError(id, body.Detail)
		return
	}
	fc.send(map[string]any{"id": id, "result": json.RawMessage(bytes.TrimSpace(resp.body.Bytes()))})
}

func (fc *frameConn) sendError(id uint64, msg string) {
	fc.send(map[string]any{"id": id, "error": map[string]string{"message": msg}})
}

func (fc *frameConn) send(v any) {
	raw, _ := json.Marshal(v) // maps of strings, numbers and raw JSON
	_ = fc.writeFrame(raw)
}

// writeFrame writes one frame whole: frames of different requests never
// interleave.
func (fc *frameConn) writeFrame(payload []byte) error {
	buf := make([]byte, 4, 4+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	buf = append(buf, payload...)
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	_, err := fc.w.Write(buf)
	return err
}

// frameResponse collects an HTTP handler's answer for the framed
// transport, and sends a stream's events as frames as they come.
type frameResponse struct {
	conn     *frameConn
	id       uint64
	header   http.Header
	status   int
	body     bytes.Buffer
	streamed bool
}

func (fr *frameResponse) Header() http.Header         { return fr.header }
func (fr *frameResponse) WriteHeader(status int)      { fr.status = status }
func (fr *frameResponse) Write(p []byte) (int, error) { return fr.body.Write(p) }

// sendEvent sends one event, a JSON object, with the request's id added.
func (fr *frameResponse) sendEvent(raw []byte) error {
	fr.streamed = true
	withID := append([]byte(fmt.Sprintf(`{"id":%d,`, fr.id)), raw[1:]...)
	return fr.conn.writeFrame(withID)
}
