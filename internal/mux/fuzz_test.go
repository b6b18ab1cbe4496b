package mux

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

// discardEnd is a connection's write side that takes everything: what an
// end answers is not what this fuzzes.
type discardEnd struct{}

func (discardEnd) Read([]byte) (int, error)    { return 0, io.EOF }
func (discardEnd) Write(p []byte) (int, error) { return len(p), nil }

// FuzzFrames feeds arbitrary bytes to either end's frame reader: the
// engine's end reads what the guest sends, the agent's end what a host
// process sends it. Neither may panic, hold more than a window of a
// stream, or take a stream from a client as a server would.
func FuzzFrames(f *testing.F) {
	frame := func(typ frameType, stream uint32, payload []byte) []byte {
		return header{typ: typ, stream: stream, length: uint32(len(payload))}.encode(payload)
	}
	nonce := bytes.Repeat([]byte{1}, nonceLen)
	credit := binary.BigEndian.AppendUint32(nil, 1<<20)
	f.Add(false, bytes.Join([][]byte{helloFrame(nonce), frame(typeOpen, 1, nil), frame(typeData, 1, []byte("GET / HTTP/1.1\r\n")), frame(typeClose, 1, nil)}, nil))
	f.Add(false, append(make([]byte, headerLen+40), helloFrame(nonce)...))
	f.Add(false, bytes.Join([][]byte{frame(typeOpen, 3, nil), helloFrame(nonce), frame(typeOpen, 3, nil), frame(typeOpen, 3, nil)}, nil))
	f.Add(true, bytes.Join([][]byte{frame(typeData, 1, bytes.Repeat([]byte("x"), MaxPayload)), frame(typeWindow, 1, credit), frame(typeReset, 3, nil)}, nil))
	f.Add(true, bytes.Repeat(frame(typeData, 1, make([]byte, MaxPayload)), Window/MaxPayload+1)) // a window and more
	f.Add(true, helloFrame(startedOver))
	f.Add(true, []byte("QM\x03\x00\x00\x00\x00\x01\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, client bool, data []byte) {
		s := newSession(discardEnd{}, client)
		var opened []*Stream
		if client {
			for range 2 { // streams 1 and 3, for the guest's frames to land on
				st, err := s.Open()
				if err != nil {
					t.Fatal(err)
				}
				opened = append(opened, st)
			}
		}
		s.readLoop(bufio.NewReaderSize(bytes.NewReader(data), readBuffer))
		if s.Err() == nil {
			t.Fatal("the reader ended and the session did not")
		}
		if !client {
			for {
				select {
				case st := <-s.accept:
					if st.id%2 == 0 {
						t.Fatalf("a server took stream %d, which only it may open", st.id)
					}
					opened = append(opened, st)
					continue
				default:
				}
				break
			}
		}
		for _, st := range opened {
			st.mu.Lock()
			buffered := st.buffered
			st.mu.Unlock()
			if buffered > Window {
				t.Fatalf("stream %d holds %d bytes unread, more than a window", st.id, buffered)
			}
			st.SetReadDeadline(time.Now())
			buf := make([]byte, 64<<10)
			for {
				if _, err := st.Read(buf); err != nil {
					if errors.Is(err, ErrClosed) {
						t.Fatal("a stream read as closed that this end never closed")
					}
					break
				}
			}
			st.Close()
		}
	})
}
