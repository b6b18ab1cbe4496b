package share

import (
	"encoding/binary"
	"io"

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
		return err
	}
	size := int(binary.LittleEndian.Uint32(hdr[:]))
	if size < 7 || size > w.max {
		return errors.Errorf("a 9P message of %d bytes (at most %d)", size, w.max)
	}
	msg := make([]byte, size)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(w.conn, msg[4:]); err != nil {
		return err
	}
	w.in = msg
	return nil
}

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
