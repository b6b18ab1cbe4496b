// Package mux carries many byte streams, each a net.Conn, over one
// connection: the engine's HTTP requests to the guest agent over a
// virtio-serial port, beside the port forward (issue 31). HTTP runs on the
// streams unchanged, so every endpoint, its token check and its streaming
// work the same on either transport.
//
// A frame is a 12-byte header, then its payload:
//
//	"QM"  type (1 byte)  0  stream id (4 bytes)  payload length (4 bytes)
//
// (big-endian). The client opens streams (odd ids); each side may have
// at most Window bytes of a stream unread at the other end, and gives
// credit back as its reader takes them (back-pressure per stream: a
// stream whose reader stalls never holds up the others). A session begins
// with the client's hello, carrying a random nonce; the server answers
// with the same hello and drops every stream of the session before. So a
// VM frozen in the middle of a session (a template, a save) and resumed
// under a new engine is reset by that engine's first frame: no stream
// crosses from one QEMU to another. A server that loses its place in the
// byte stream (a frame cut by a freeze) skips to the next hello.
package mux

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

const (
	headerLen = 12
	nonceLen  = 16
	// MaxPayload bounds a data frame: writes are cut to it.
	MaxPayload = 32 << 10
	// Window is what a stream's reader may have unread before its writer
	// waits.
	Window = 256 << 10
	// acceptBacklog bounds the streams opened and not yet accepted: more
	// are refused (reset). The client is the engine, which opens one per
	// call in flight; an agent under TCG can fall far behind a burst.
	acceptBacklog = 4096
	// answerBacklog bounds the resets and hello answers waiting to go out:
	// more are dropped (a peer that sends junk and reads nothing must not
	// grow this end's memory).
	answerBacklog = 256
)

// stuckLimit is how long a client's write of one frame may wait for the
// other end to take it before the session is given up: a peer that takes
// nothing for that long (a QEMU that was frozen) must not hold up the
// calls on the session, nor those made meanwhile, for ever. A frame cut
// by the give-up is harmless: the next client's zeros and hello end it.
// A var so that tests can shorten it.
var stuckLimit = 30 * time.Second

type frameType byte

const (
	typeHello  frameType = 1 // stream 0; payload: the session's nonce
	typeOpen   frameType = 2 // a new stream, client to server
	typeData   frameType = 3
	typeWindow frameType = 4 // payload: 4 bytes of credit given back
	typeClose  frameType = 5 // the sender neither writes nor reads any more
	typeReset  frameType = 6 // the stream is unknown or broken: drop it
)

var magic = [2]byte{'Q', 'M'}

// startedOver is the nonce of a server's own hello: it says that it
// started (again) and has no session, so whatever the client had open on
// it is gone. A server says it as it starts, and in answer to any frame
// before a client's hello.
var startedOver = make([]byte, nonceLen)

// ErrStartedOver ends a client's session whose server started over.
var ErrStartedOver = errors.New("mux: the other end started over, and the calls on it are gone")

// ErrReset is what a stream's calls return once its session was reset
// (a new client said hello) or it was reset by the other end.
var ErrReset = errors.New("mux: stream reset")

// ErrClosed is what calls return once the session or the stream was
// closed on this side.
var ErrClosed = fmt.Errorf("mux: %w", net.ErrClosed)

type header struct {
	typ    frameType
	stream uint32
	length uint32
}

func (h header) encode(payload []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(payload))
	b[0], b[1], b[2] = magic[0], magic[1], byte(h.typ)
	binary.BigEndian.PutUint32(b[4:], h.stream)
	binary.BigEndian.PutUint32(b[8:], h.length)
	return append(b, payload...)
}

// decodeHeader reads a header, or says it is not one.
func decodeHeader(b []byte) (header, bool) {
	h := header{typ: frameType(b[2]), stream: binary.BigEndian.Uint32(b[4:]), length: binary.BigEndian.Uint32(b[8:])}
	if b[0] != magic[0] || b[1] != magic[1] || b[3] != 0 || h.typ < typeHello || h.typ > typeReset {
		return h, false
	}
	switch h.typ {
	case typeHello:
		return h, h.stream == 0 && h.length == nonceLen
	case typeData:
		return h, h.stream != 0 && h.length <= MaxPayload
	case typeWindow:
		return h, h.stream != 0 && h.length == 4
	default:
		return h, h.stream != 0 && h.length == 0
	}
}

// helloHeader is how every hello begins: what a server that lost its
// place looks for.
var helloHeader = header{typ: typeHello, length: nonceLen}.encode(nil)

func helloFrame(nonce []byte) []byte {
	return header{typ: typeHello, length: nonceLen}.encode(nonce)
}

// Session is one end of a multiplexed connection.
type Session struct {
	rw     io.ReadWriter
	client bool

	wmu sync.Mutex // one frame at a time, whole

	mu      sync.Mutex
	streams map[uint32]*Stream
	nextID  uint32
	nonce   []byte // the session's (the server: the last hello's)
	err     error  // why the session ended, once it has
	accept  chan *Stream
	done    chan struct{}
	// Frames that no caller waits for go out from a goroutine of their own
	// (sendControl), so that neither the reader, nor a stream's Read or
	// Close, ever waits on a write: two ends whose writes wait on each
	// other's reads cannot stop each other, and a peer that stops reading
	// holds up no Close (net/http closes connections in its callers'
	// goroutines when their calls are cancelled).
	ctlMu   sync.Mutex
	answers []frame           // resets and hellos, at most answerBacklog
	credit  map[uint32]uint32 // credit to give back, by stream
	closes  []uint32          // streams closed on this side
	kick    chan struct{}
}

type frame struct {
	h       header
	payload []byte
}

func newSession(rw io.ReadWriter, client bool) *Session {
	s := &Session{rw: rw, client: client, streams: map[uint32]*Stream{}, nextID: 1,
		done: make(chan struct{}), credit: map[uint32]uint32{}, kick: make(chan struct{}, 1)}
	if !client {
		s.accept = make(chan *Stream, acceptBacklog)
	}
	go s.sendControl()
	return s
}

func (s *Session) sendControl() {
	for {
		select {
		case <-s.kick:
		case <-s.done:
			return
		}
		s.ctlMu.Lock()
		answers, credit, closes := s.answers, s.credit, s.closes
		s.answers, s.credit, s.closes = nil, map[uint32]uint32{}, nil
		s.ctlMu.Unlock()
		for _, f := range answers {
			s.write(f.h, f.payload)
		}
		for id, n := range credit {
			s.write(header{typ: typeWindow, stream: id}, binary.BigEndian.AppendUint32(nil, n))
		}
		for _, id := range closes {
			s.write(header{typ: typeClose, stream: id}, nil)
		}
	}
}

func (s *Session) queued(f func()) {
	s.ctlMu.Lock()
	f()
	s.ctlMu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// answer queues a reset or a hello; beyond answerBacklog they are dropped
// (a reset only hurries up what the other end finds out anyway).
func (s *Session) answer(h header, payload []byte) {
	s.queued(func() {
		if len(s.answers) < answerBacklog {
			s.answers = append(s.answers, frame{h, payload})
		}
	})
}

// giveCredit queues credit for a stream (added up until it goes).
func (s *Session) giveCredit(id uint32, n int) {
	s.queued(func() { s.credit[id] += uint32(n) })
}

// closed queues the close of a stream.
func (s *Session) closed(id uint32) {
	s.queued(func() { s.closes = append(s.closes, id) })
}

// write sends one frame. A server's write that fails is dropped: the host
// end went away, and its successor says hello before anything else. A
// client's write that fails, or waits stuckLimit, ends the session.
func (s *Session) write(h header, payload []byte) error {
	h.length = uint32(len(payload))
	frame := h.encode(payload)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.ended(); err != nil {
		return err
	}
	dl, canGiveUp := s.rw.(interface{ SetWriteDeadline(time.Time) error })
	if s.client && canGiveUp {
		dl.SetWriteDeadline(time.Now().Add(stuckLimit))
	}
	_, err := s.rw.Write(frame)
	if err != nil && s.client {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("mux: the other end took nothing for %v", stuckLimit)
		}
		s.fail(err)
	}
	return err
}

func (s *Session) ended() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// fail ends the session and every stream with err.
func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	streams := s.streams
	s.streams = map[uint32]*Stream{}
	s.mu.Unlock()
	close(s.done)
	for _, st := range streams {
		st.broken(err)
	}
	if c, ok := s.rw.(io.Closer); ok {
		c.Close()
	}
}

// Close ends the session and its streams.
func (s *Session) Close() error {
	s.fail(ErrClosed)
	return nil
}

// Done is closed once the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err says why the session ended, nil while it has not.
func (s *Session) Err() error { return s.ended() }

// readLoop reads frames until the connection fails (a server: for ever,
// skipping what it cannot read to the next hello). r is buffered: a read
// of the port is a system call, which a guest under emulation pays dearly
// for, and one read takes in many small frames.
func (s *Session) readLoop(r *bufio.Reader) {
	hdr := make([]byte, headerLen)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			s.fail(err)
			return
		}
		h, ok := decodeHeader(hdr)
		if !ok {
			if s.client {
				s.fail(errors.New("mux: the other end sent a malformed frame"))
				return
			}
			if err := skipToHello(r, hdr); err != nil {
				s.fail(err)
				return
			}
			h = header{typ: typeHello, length: nonceLen}
		}
		var payload []byte
		if h.typ == typeData {
			payload = getChunk(int(h.length))
		} else {
			payload = make([]byte, h.length)
		}
		if _, err := io.ReadFull(r, payload); err != nil {
			s.fail(err)
			return
		}
		s.handle(h, payload)
	}
}

// skipToHello reads until the bytes read end with a hello's header; hdr
// holds the bytes already read (not a header). What it skips is typically
// a client's 32 KiB of zeros: it looks for the header's first byte a
// buffer at a time, not byte by byte.
func skipToHello(r *bufio.Reader, hdr []byte) error {
	// A hello that begins inside hdr and ends in what follows it.
	for i := 1; i < len(hdr); i++ {
		if !bytes.HasPrefix(helloHeader, hdr[i:]) {
			continue
		}
		rest, err := r.Peek(headerLen - (len(hdr) - i))
		if err != nil {
			return err
		}
		if bytes.Equal(rest, helloHeader[len(hdr)-i:]) {
			r.Discard(len(rest))
			return nil
		}
	}
	for {
		if _, err := r.ReadSlice(helloHeader[0]); err == bufio.ErrBufferFull {
			continue // a buffer without the byte, all skipped
		} else if err != nil {
			return err
		}
		rest, err := r.Peek(headerLen - 1)
		if err != nil {
			return err
		}
		if bytes.Equal(rest, helloHeader[1:]) {
			r.Discard(len(rest))
			return nil
		}
	}
}

func (s *Session) handle(h header, payload []byte) {
	if h.typ == typeHello {
		switch {
		case !s.client:
			s.hello(payload)
		case bytes.Equal(payload, startedOver):
			s.fail(ErrStartedOver)
		}
		// (A client's own hello, answered again, means nothing more.)
		return
	}
	s.mu.Lock()
	if !s.client && s.nonce == nil {
		// A server that has had no hello since it started: the frame is
		// from a client of the process before it (an agent that was
		// killed and started again). Tell it so: its calls are gone.
		s.mu.Unlock()
		s.answer(header{typ: typeHello}, startedOver)
		return
	}
	st := s.streams[h.stream]
	if st == nil && h.typ == typeOpen && !s.client && h.stream%2 == 1 {
		st = newStream(s, h.stream)
		select {
		case s.accept <- st:
			s.streams[h.stream] = st
		default:
			st = nil // too many waiting: refused below
		}
		s.mu.Unlock()
		if st == nil {
			s.answer(header{typ: typeReset, stream: h.stream}, nil)
		}
		return
	}
	s.mu.Unlock()
	if st == nil {
		// A stream this end does not have (closed, or never opened): say
		// so, unless the frame was a goodbye itself.
		if h.typ != typeReset && h.typ != typeClose {
			s.answer(header{typ: typeReset, stream: h.stream}, nil)
		}
		return
	}
	switch h.typ {
	case typeData:
		if !st.received(payload) {
			s.remove(st)
			st.broken(errors.New("mux: the other end sent more than the window"))
			s.answer(header{typ: typeReset, stream: h.stream}, nil)
		}
	case typeWindow:
		if !st.credited(binary.BigEndian.Uint32(payload)) {
			s.remove(st)
			st.broken(errors.New("mux: the other end gave more credit than a window"))
			s.answer(header{typ: typeReset, stream: h.stream}, nil)
		}
	case typeClose:
		st.peerClosed()
	case typeReset:
		s.remove(st)
		st.broken(ErrReset)
	case typeOpen:
		s.remove(st)
		st.broken(errors.New("mux: the other end opened a stream that is open"))
		s.answer(header{typ: typeReset, stream: h.stream}, nil)
	}
}

// hello starts a new session on the server: the streams of any earlier one
// are reset, since the client that had them is gone.
func (s *Session) hello(nonce []byte) {
	s.mu.Lock()
	var old map[uint32]*Stream
	if !bytes.Equal(nonce, s.nonce) {
		s.nonce = nonce
		old, s.streams = s.streams, map[uint32]*Stream{}
	}
	s.mu.Unlock()
	for _, st := range old {
		st.broken(ErrReset)
	}
	s.answer(header{typ: typeHello}, nonce)
}

func (s *Session) remove(st *Stream) {
	s.mu.Lock()
	if s.streams[st.id] == st {
		delete(s.streams, st.id)
	}
	s.mu.Unlock()
}
