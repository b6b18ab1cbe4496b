package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func dataFrame(call uint64, stream Stream, p []byte) []byte {
	b := FrameHeader{Kind: FrameData, Stream: stream, Call: call, Size: uint32(len(p))}.AppendHeader(nil)
	return append(b, p...)
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(dataFrame(7, 1, []byte("hello\n")))
	buf.Write(FrameHeader{Kind: FrameGrant, Call: 7, Size: 1 << 20}.AppendHeader(nil))
	buf.Write(dataFrame(1<<63, 2, []byte{0, 0xff, 0xfe}))
	buf.Write(dataFrame(9, 1, nil))
	fr := NewFrameReader(&buf)
	want := []struct {
		h FrameHeader
		p string
	}{
		{FrameHeader{FrameData, 1, 7, 6}, "hello\n"},
		{FrameHeader{FrameGrant, 0, 7, 1 << 20}, ""},
		{FrameHeader{FrameData, 2, 1 << 63, 3}, "\x00\xff\xfe"},
		{FrameHeader{FrameData, 1, 9, 0}, ""},
	}
	for i, w := range want {
		h, p, err := fr.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if h != w.h || string(p) != w.p {
			t.Fatalf("frame %d: got %+v %q, want %+v %q", i, h, p, w.h, w.p)
		}
	}
	if _, _, err := fr.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
	if fr.Skipped != 0 {
		t.Fatalf("skipped %d bytes of a clean stream", fr.Skipped)
	}
}

// A reader that starts inside a frame (a VM reverted mid-write) finds the
// next whole frame.
func TestFrameResync(t *testing.T) {
	first := dataFrame(1, 1, bytes.Repeat([]byte("x"), 100))
	var buf bytes.Buffer
	buf.Write(first[10:]) // the tail of a frame whose head went elsewhere
	buf.Write(dataFrame(2, 2, []byte("after")))
	fr := NewFrameReader(&buf)
	h, p, err := fr.Next()
	if err != nil || h.Call != 2 || string(p) != "after" {
		t.Fatalf("got %+v %q %v, want call 2 \"after\"", h, p, err)
	}
	if fr.Skipped != int64(len(first)-10) {
		t.Fatalf("skipped %d, want %d", fr.Skipped, len(first)-10)
	}
}

// SkipPast throws away everything up to the marker, whole frames and
// parts of the marker included, across reads larger than the reader's
// buffer, and the frame after the marker comes whole.
func TestFrameSkipPast(t *testing.T) {
	marker := FrameHeader{Kind: FrameSync, Call: 0xfeedface}.AppendHeader(nil)
	var buf bytes.Buffer
	buf.Write(dataFrame(1, 1, []byte("before")))
	buf.Write(marker[:10])                        // a false start
	buf.Write(bytes.Repeat([]byte("y"), 600<<10)) // more than the reader buffers
	buf.Write(FrameHeader{Kind: FrameSync, Call: 0xbad}.AppendHeader(nil))
	skipped := buf.Len()
	buf.Write(marker)
	buf.Write(dataFrame(2, 2, []byte("after")))
	fr := NewFrameReader(&buf)
	if err := fr.SkipPast(marker); err != nil {
		t.Fatal(err)
	}
	h, p, err := fr.Next()
	if err != nil || h.Call != 2 || string(p) != "after" {
		t.Fatalf("got %+v %q %v, want call 2 \"after\"", h, p, err)
	}
	if fr.Skipped != int64(skipped) {
		t.Fatalf("skipped %d, want %d", fr.Skipped, skipped)
	}
	if err := fr.SkipPast(marker); err != io.EOF {
		t.Fatalf("no marker left: %v, want EOF", err)
	}
}

// A sync frame is a header alone; one announcing a payload is garbage.
func TestSyncFrame(t *testing.T) {
	fr := NewFrameReader(bytes.NewReader(append(
		FrameHeader{Kind: FrameSync, Call: 5, Size: 3}.AppendHeader(nil),
		FrameHeader{Kind: FrameSync, Call: 6}.AppendHeader(nil)...)))
	h, p, err := fr.Next()
	if err != nil || h != (FrameHeader{Kind: FrameSync, Call: 6}) || len(p) != 0 || fr.Skipped != FrameHeaderSize {
		t.Fatalf("got %+v %q %v, skipped %d", h, p, err, fr.Skipped)
	}
}

func TestFrameRejectsBadHeaders(t *testing.T) {
	good := dataFrame(3, 1, []byte("ok"))
	corrupt := dataFrame(4, 1, []byte("no"))
	corrupt[9] ^= 1 // the call id, so the checksum fails
	huge := FrameHeader{Kind: FrameData, Stream: 1, Call: 5, Size: MaxFramePayload + 1}.AppendHeader(nil)
	badStream := FrameHeader{Kind: FrameData, Stream: 3, Call: 6, Size: 0}.AppendHeader(nil)
	in := append(append(append(append([]byte{}, corrupt...), huge...), badStream...), good...)
	fr := NewFrameReader(bytes.NewReader(in))
	h, p, err := fr.Next()
	if err != nil || h.Call != 3 || string(p) != "ok" {
		t.Fatalf("got %+v %q %v, want only the good frame", h, p, err)
	}
}

func TestFrameTruncated(t *testing.T) {
	f := dataFrame(1, 1, []byte("abcdef"))
	_, _, err := NewFrameReader(bytes.NewReader(f[:len(f)-2])).Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated payload: %v, want unexpected EOF", err)
	}
}

// FuzzFrameReader feeds arbitrary bytes as the output channel, as a hostile
// guest could write it: the reader never panics, and every frame it
// returns is one a valid header announced, with its whole payload.
func FuzzFrameReader(f *testing.F) {
	valid := FrameHeader{Kind: FrameData, Stream: 1, Call: 7, Size: 3}.AppendHeader(nil)
	f.Add(append(append([]byte{}, valid...), "abc"...))
	f.Add(append([]byte("junk"), valid...))
	f.Add(FrameHeader{Kind: FrameGrant, Call: 9, Size: 1 << 30}.AppendHeader(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewFrameReader(bytes.NewReader(in))
		for {
			h, p, err := fr.Next()
			if err != nil {
				return
			}
			switch h.Kind {
			case FrameData:
				if h.Stream != 1 && h.Stream != 2 || h.Size > MaxFramePayload || len(p) != int(h.Size) {
					t.Fatalf("frame %+v with %d bytes", h, len(p))
				}
			case FrameGrant:
				if p != nil {
					t.Fatalf("a grant with a payload")
				}
			default:
				t.Fatalf("frame of kind %d", h.Kind)
			}
		}
	})
}
