package mux

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Stream is one stream of a session: a net.Conn.
type Stream struct {
	s  *Session
	id uint32

	mu        sync.Mutex
	unread    [][]byte // received, not yet read
	buffered  int      // bytes in unread
	taken     int      // bytes read and not yet given back as credit
	credit    int      // bytes this end may still send
	peerDone  bool     // the other end closed: reads end once unread is
	closed    bool     // closed on this side
	err       error    // reset or session ended
	rDeadline time.Time
	wDeadline time.Time
	// readable and writable wake a waiting reader or writer to look again.
	readable, writable chan struct{}
}

func newStream(s *Session, id uint32) *Stream {
	return &Stream{s: s, id: id, credit: Window, readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// received takes a data frame; false if it overflows the window.
func (st *Stream) received(p []byte) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed || st.err != nil || st.peerDone {
		return true // dropped: nobody reads it
	}
	if st.buffered+len(p) > Window {
		return false
	}
	if len(p) > 0 {
		st.unread = append(st.unread, p)
		st.buffered += len(p)
	}
	wake(st.readable)
	return true
}

// credited takes credit given back; false if it makes more than a window.
func (st *Stream) credited(n uint32) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.credit+int(n) > Window {
		return false
	}
	st.credit += int(n)
	wake(st.writable)
	return true
}

func (st *Stream) peerClosed() {
	st.mu.Lock()
	st.peerDone = true
	st.mu.Unlock()
	wake(st.readable)
	wake(st.writable)
}

func (st *Stream) broken(err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = err
	}
	st.mu.Unlock()
	wake(st.readable)
	wake(st.writable)
}

// wait waits for c, the deadline or the session's end; false once the
// deadline passed.
func (st *Stream) wait(c chan struct{}, deadline time.Time) bool {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return false
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-c:
	case <-st.s.done:
	case <-timeout:
		return false
	}
	return true
}

// Read reads what the other end wrote; io.EOF once it closed and all of it
// was read.
func (st *Stream) Read(p []byte) (int, error) {
	for {
		st.mu.Lock()
		switch {
		case st.closed:
			st.mu.Unlock()
			return 0, ErrClosed
		case st.buffered > 0:
			n := 0
			for n < len(p) && len(st.unread) > 0 {
				c := copy(p[n:], st.unread[0])
				n += c
				if c == len(st.unread[0]) {
					putChunk(st.unread[0])
					st.unread = st.unread[1:]
				} else {
					st.unread[0] = st.unread[0][c:]
				}
			}
			st.buffered -= n
			st.taken += n
			give := 0
			// Credit goes back in quarters of a window: few frames, and
			// the writer never waits on a reader that keeps up.
			if st.taken >= Window/4 {
				give, st.taken = st.taken, 0
			}
			st.mu.Unlock()
			if give > 0 {
				st.s.giveCredit(st.id, give)
			}
			return n, nil
		case st.err != nil:
			err := st.err
			st.mu.Unlock()
			return 0, err
		case st.peerDone:
			st.mu.Unlock()
			return 0, io.EOF
		}
		if err := st.s.ended(); err != nil {
			st.mu.Unlock()
			return 0, err
		}
		deadline := st.rDeadline
		st.mu.Unlock()
		if !st.wait(st.readable, deadline) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Write sends p, in frames of at most MaxPayload, as the other end's
// window allows.
func (st *Stream) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		st.mu.Lock()
		switch {
		case st.closed:
			st.mu.Unlock()
			return written, ErrClosed
		case st.err != nil:
			err := st.err
			st.mu.Unlock()
			return written, err
		case st.peerDone:
			st.mu.Unlock()
			return written, io.ErrClosedPipe
		}
		if err := st.s.ended(); err != nil {
			st.mu.Unlock()
			return written, err
		}
		if st.credit == 0 {
			deadline := st.wDeadline
			st.mu.Unlock()
			if !st.wait(st.writable, deadline) {
				return written, os.ErrDeadlineExceeded
			}
			continue
		}
		n := min(len(p)-written, st.credit, MaxPayload)
		st.credit -= n
		st.mu.Unlock()
		if err := st.s.write(header{typ: typeData, stream: st.id}, p[written:written+n]); err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

// Close closes the stream: the other end reads what was sent, then io.EOF.
func (st *Stream) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	st.unread, st.buffered = nil, 0
	alive := st.err == nil
	st.mu.Unlock()
	wake(st.readable)
	wake(st.writable)
	st.s.remove(st)
	if alive {
		st.s.closed(st.id)
	}
	return nil
}

func (st *Stream) LocalAddr() net.Addr  { return addr{} }
func (st *Stream) RemoteAddr() net.Addr { return addr{} }

func (st *Stream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

// SetReadDeadline also wakes a reader waiting now, so that a deadline in
// the past ends its wait (net/http does this to abort a read).
func (st *Stream) SetReadDeadline(t time.Time) error {
	st.mu.Lock()
	st.rDeadline = t
	st.mu.Unlock()
	wake(st.readable)
	return nil
}

func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.mu.Lock()
	st.wDeadline = t
	st.mu.Unlock()
	wake(st.writable)
	return nil
}
