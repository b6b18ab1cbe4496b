package agent

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// guestEnd writes frames as the agent would and reads the host's grants.
func guestEnd(t *testing.T) (*Channel, net.Conn) {
	host, guest := net.Pipe()
	ch := newChannel(host)
	t.Cleanup(func() { ch.Close(); guest.Close() })
	return ch, guest
}

func writeData(t *testing.T, c net.Conn, call uint64, s Stream, p string) {
	t.Helper()
	b := protocol.FrameHeader{Kind: protocol.FrameData, Stream: s, Call: call, Size: uint32(len(p))}.AppendHeader(nil)
	if _, err := c.Write(append(b, p...)); err != nil {
		t.Fatal(err)
	}
}

// A collected call keeps at most its limit per stream, never half a
// character, says so, and still counts (and grants) every byte.
func TestChannelCallLimitAndGrants(t *testing.T) {
	ch, guest := guestEnd(t)
	cc, err := ch.Open(false, 10)
	if err != nil {
		t.Fatal(err)
	}
	grants := make(chan protocol.FrameHeader, 4)
	go func() {
		fr := protocol.NewFrameReader(guest)
		for {
			h, _, err := fr.Next()
			if err != nil {
				return
			}
			grants <- h
		}
	}()
	writeData(t, guest, 99, Stdout, "not this call's")
	writeData(t, guest, cc.ID(), Stdout, "123456789é") // é would end past 10 bytes
	writeData(t, guest, cc.ID(), Stderr, "err")
	big := strings.Repeat("x", grantBatch)
	writeData(t, guest, cc.ID(), Stdout, big)
	counts := protocol.ChannelCounts{Stdout: int64(11 + len(big)), Stderr: 3}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cc.Wait(ctx, counts); err != nil {
		t.Fatal(err)
	}
	out, errOut, outCut, errCut := cc.Output(nil)
	if string(out) != "123456789" || string(errOut) != "err" || !outCut || errCut {
		t.Fatalf("kept %q %q (cut %v %v)", out, errOut, outCut, errCut)
	}
	select {
	case g := <-grants:
		if g.Kind != protocol.FrameGrant || g.Call != cc.ID() || int64(g.Size) < grantBatch {
			t.Fatalf("grant %+v", g)
		}
	case <-ctx.Done():
		t.Fatal("no grant after a window's quarter was consumed")
	}
}

// After a revert the guest goes on with other bytes where a frame was cut
// short, and the frame's announced size would swallow what comes next.
// ExpectSync throws away everything up to the agent's sync frame instead,
// and a call opened afterwards gets its output exact.
func TestExpectSyncRecoversFromACutFrame(t *testing.T) {
	ch, guest := guestEnd(t)
	cut := protocol.FrameHeader{Kind: protocol.FrameData, Stream: 1, Call: 7, Size: 1000}.AppendHeader(nil)
	if _, err := guest.Write(append(cut, strings.Repeat("x", 100)...)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the reader waits for the rest of it
	found := ch.ExpectSync(0xabc)
	cc, err := ch.Open(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := guest.Write([]byte(strings.Repeat("z", 500))); err != nil {
		t.Fatal(err)
	}
	writeData(t, guest, cc.ID(), Stdout, "lost before the mark")
	if _, err := guest.Write(protocol.FrameHeader{Kind: protocol.FrameSync, Call: 0xabc}.AppendHeader(nil)); err != nil {
		t.Fatal(err)
	}
	writeData(t, guest, cc.ID(), Stdout, "after")
	select {
	case <-found:
	case <-time.After(10 * time.Second):
		t.Fatal("the sync frame was not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cc.Wait(ctx, protocol.ChannelCounts{Stdout: 5}); err != nil {
		t.Fatal(err)
	}
	if out, _, _, _ := cc.Output(nil); string(out) != "after" {
		t.Fatalf("got %q, want \"after\"", out)
	}
}

// Output that never arrives is an error, not a hang.
func TestChannelCallMissingOutput(t *testing.T) {
	ch, guest := guestEnd(t)
	cc, _ := ch.Open(false, 0)
	writeData(t, guest, cc.ID(), Stdout, "abc")
	guest.Close()
	err := cc.Wait(context.Background(), protocol.ChannelCounts{Stdout: 5})
	if err == nil || !strings.Contains(err.Error(), "output lost") {
		t.Fatalf("got %v, want output lost", err)
	}
}

// A guest that sends a streaming call more than its window (ignoring the
// flow control) fails that call instead of filling the host's memory.
func TestStreamingCallOverrunFails(t *testing.T) {
	ch, guest := guestEnd(t)
	cc, err := ch.Open(true, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() { // swallow grants, of which there are none
		fr := protocol.NewFrameReader(guest)
		for {
			if _, _, err := fr.Next(); err != nil {
				return
			}
		}
	}()
	chunk := strings.Repeat("x", protocol.MaxFramePayload)
	for i := 0; i < protocol.ChannelWindow/protocol.MaxFramePayload; i++ {
		writeData(t, guest, cc.ID(), Stdout, chunk)
	}
	if _, err := cc.Take(); err != nil {
		t.Fatalf("within the window: %v", err)
	}
	writeData(t, guest, cc.ID(), Stdout, "one byte too many")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := cc.Take()
		if err != nil {
			if !strings.Contains(err.Error(), "window") {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an overrun was accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, _, _, _ := cc.Output(nil); len(out) != protocol.ChannelWindow {
		t.Fatalf("kept %d bytes, want the window's %d", len(out), protocol.ChannelWindow)
	}
}

// Chunks of one stream that queued up are handed out joined, in order, and
// never by writing into the memory they came in.
func TestCoalesce(t *testing.T) {
	kept := []byte("abcdef")
	in := []Chunk{{Stdout, kept[0:2:2]}, {Stdout, kept[2:4:4]}, {Stderr, []byte("x")}, {Stdout, kept[4:6:6]}}
	out := coalesce(in)
	if len(out) != 3 || string(out[0].Data) != "abcd" || out[1].Stream != Stderr || string(out[2].Data) != "ef" {
		t.Fatalf("coalesce: %q", out)
	}
	if string(kept) != "abcdef" {
		t.Fatalf("the kept output was written into: %q", kept)
	}
	big := make([]byte, coalesceMax)
	if out := coalesce([]Chunk{{Stdout, big}, {Stdout, []byte("y")}}); len(out) != 2 {
		t.Fatalf("a join past coalesceMax: %d chunks", len(out))
	}
}

// What a call kept is given back whichever way it ends: moved into its
// result, or abandoned (closed without one, as a failed call is), and
// frames that come after are not kept.
func TestChannelCallGivesItsOutputBack(t *testing.T) {
	ch, guest := guestEnd(t)
	go func() { // the grants
		fr := protocol.NewFrameReader(guest)
		for {
			if _, _, err := fr.Next(); err != nil {
				return
			}
		}
	}()
	big := strings.Repeat("x", 1<<20)
	for _, result := range []bool{true, false} {
		cc, err := ch.Open(false, 0)
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			writeData(t, guest, cc.ID(), Stdout, big)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = cc.Wait(ctx, protocol.ChannelCounts{Stdout: 4 << 20})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if n := mapped.Load(); n < 2<<20 {
			t.Fatalf("4 MiB kept, %d bytes of it off Go's heap", n)
		}
		if result {
			if out, _, _, _ := cc.Output(nil); len(out) != 4<<20 {
				t.Fatalf("the result holds %d bytes", len(out))
			}
			writeData(t, guest, cc.ID(), Stdout, big) // after the result: dropped
		}
		cc.Close()
		if n := mapped.Load(); n != 0 {
			t.Fatalf("result %v: %d bytes still mapped after the call", result, n)
		}
	}
}
