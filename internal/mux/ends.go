package mux

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"time"
)

// helloEvery is how often a client says hello again while unanswered: a
// server that lost its place in the bytes (a frame cut by a freeze) may
// take an earlier hello as part of that frame.
const helloEvery = 100 * time.Millisecond

// readBuffer is each end's read buffer: two whole data frames.
const readBuffer = 2 * (headerLen + MaxPayload)

// maxHelloScan bounds what a client reads while it looks for the answer
// to its hello: the other end may be hostile.
const maxHelloScan = 1 << 20

// Client starts a session on rw: it says hello and waits (until ctx ends)
// for the server to answer it, skipping whatever came before the answer.
// Closing the session closes rw.
func Client(ctx context.Context, rw io.ReadWriteCloser) (*Session, error) {
	nonce := make([]byte, nonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	hello := helloFrame(nonce)
	br := bufio.NewReaderSize(rw, readBuffer)
	found := make(chan error, 1)
	go func() { found <- scanFor(br, hello) }()
	tick := time.NewTicker(helloEvery)
	defer tick.Stop()
	for try := 0; ; try++ {
		say := hello
		if try == 1 {
			// Unanswered: the server may be inside a frame cut short,
			// reading the hello as its payload. Zeros enough to finish the
			// longest frame, then a hello: what follows the cut frame is
			// not a header, so the server skips to the hello.
			say = append(make([]byte, headerLen+MaxPayload), hello...)
		}
		if _, err := rw.Write(say); err != nil {
			rw.Close()
			<-found
			return nil, err
		}
		select {
		case err := <-found:
			if err != nil {
				rw.Close()
				return nil, err
			}
			s := newSession(rw, true)
			go s.readLoop(br)
			return s, nil
		case <-ctx.Done():
			rw.Close()
			<-found
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// scanFor reads until the bytes read end with want.
func scanFor(r io.ByteReader, want []byte) error {
	seen := make([]byte, 0, len(want))
	for n := 0; n < maxHelloScan; n++ {
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		if len(seen) == len(want) {
			seen = append(seen[:0], seen[1:]...)
		}
		seen = append(seen, b)
		if len(seen) == len(want) && string(seen) == string(want) {
			return nil
		}
	}
	return errors.New("mux: no answer to the hello in the first MiB")
}

// Server serves sessions on rw, one after another: each client's hello
// resets the streams of the one before. rw's reads should wait while no
// client is there rather than end: a read error ends the server.
func Server(rw io.ReadWriter) *Session {
	s := newSession(rw, false)
	// A client still there from before this server started (its process
	// was killed) learns at once that its calls are gone; a client yet to
	// come takes this for what came before the answer to its hello.
	s.answer(header{typ: typeHello}, startedOver)
	go s.readLoop(bufio.NewReaderSize(rw, readBuffer))
	return s
}

// Open opens a stream (a client's call).
func (s *Session) Open() (*Stream, error) {
	if !s.client {
		return nil, errors.New("mux: only the client opens streams")
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, s.err
	}
	id := s.nextID
	s.nextID += 2
	st := newStream(s, id)
	s.streams[id] = st
	s.mu.Unlock()
	if err := s.write(header{typ: typeOpen, stream: id}, nil); err != nil {
		s.remove(st)
		return nil, err
	}
	return st, nil
}

// Accept waits for the next stream a client opens (a server's call); with
// Close and Addr, a server's Session is a net.Listener.
func (s *Session) Accept() (net.Conn, error) {
	select {
	case st := <-s.accept:
		return st, nil
	case <-s.done:
		return nil, s.ended()
	}
}

// Addr names the session (net.Listener).
func (s *Session) Addr() net.Addr { return addr{} }

type addr struct{}

func (addr) Network() string { return "mux" }
func (addr) String() string  { return "mux" }
