package share

import (
	"encoding/binary"
	"io"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// MaxMessage is the largest 9P message a mount takes (the guest mounts with
// this msize): a larger one ends the connection.
const MaxMessage = protocol.MountMessageSize

// maxInFlight bounds the requests one mount has in flight. The 9P server
// gives each request its own goroutine and buffer, so a guest that sent
// requests without waiting for answers would otherwise cost the host
// memory without bound; at this bound a mount holds at most
// maxInFlight*MaxMessage of requests (8 MiB).
const maxInFlight = 16

// window passes whole 9P messages between the connection and the server,
// at most maxInFlight requests unanswered: a request is read only once an
// earlier one was answered. Every 9P request gets exactly one answer.
type window struct {
	conn io.ReadWriteCloser
	max  int
	// slots holds a token per request read and not yet answered.
	slots chan struct{}

	in []byte // what remains of the request being handed to the server

	out     []byte // the answer being written, gathered until whole
	outSize int    // its size from its header, 0 until known
}

func newWindow(conn io.ReadWriteCloser, maxMessage, inFlight int) *window {
	return &window{conn: conn, max: maxMessage, slots: make(chan struct{}, inFlight)}
}

// Read hands the server the next request, reading a whole one first.
func (w *window) Read(p []byte) (int, error) {
	if len(w.in) == 0 {
		if err := w.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, w.in)
	w.in = w.in[n:]
	return n, nil
}

func (w *window) next() error {
	w.slots <- struct{}{} // wait for a free slot before reading on
	var hdr [4]byte
	if _, err := io.ReadFull(w.conn, hdr[:]); err != nil {
		w.settle()
		return err
	}
	size := int(binary.LittleEndian.Uint32(hdr[:]))
	if size < 7 || size > w.max {
		w.settle()
		return errors.Errorf("a 9P message of %d bytes (at most %d)", size, w.max)
	}
	msg := make([]byte, size)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(w.conn, msg[4:]); err != nil {
		w.settle()
		return err
	}
	w.in = msg
	return nil
}

// settle waits, when the connection ended, until the requests read were
// answered and a moment more before the server hears of the end. The 9P
// server starts a goroutine to receive the next request while it handles
// one, and that goroutine counts itself in (WaitGroup.Add) only once it
// runs; the server's shutdown waits on that count. Told of the end at once,
// the shutdown can begin before the new goroutine counted itself: harmless
// (it finds the connection shut and returns), but a data race to the race
// detector (github.com/hugelgupf/p9 v0.3.0, server.go). By the time the
// answers are out and a few milliseconds passed, it has run.
func (w *window) settle() {
	deadline := time.Now().Add(2 * time.Second)
	for len(w.slots) > 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(settleDelay)
}

// settleDelay is settle's moment (0 in the fuzz target, which runs without
// the race detector and ends a connection per input).
var settleDelay = 10 * time.Millisecond

// Write gathers an answer (the server writes it in pieces) and sends it in
// one write once whole, giving back the request's slot.
func (w *window) Write(p []byte) (int, error) {
	w.out = append(w.out, p...)
	for {
		if w.outSize == 0 && len(w.out) >= 4 {
			w.outSize = int(binary.LittleEndian.Uint32(w.out))
			if w.outSize < 4 {
				return 0, errors.Errorf("an answer of %d bytes", w.outSize)
			}
		}
		if w.outSize == 0 || len(w.out) < w.outSize {
			return len(p), nil
		}
		if _, err := w.conn.Write(w.out[:w.outSize]); err != nil {
			return 0, err
		}
		rest := copy(w.out, w.out[w.outSize:])
		w.out, w.outSize = w.out[:rest], 0
		select {
		case <-w.slots:
		default:
		}
	}
}

func (w *window) Close() error { return w.conn.Close() }
