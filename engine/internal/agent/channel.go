package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// grantBatch is how many consumed bytes the host collects before granting
// them back; a quarter of the window keeps the guest from ever waiting on a
// consumer that keeps up.
const grantBatch = protocol.ChannelWindow / 4

// stragglerWait bounds how long the host waits, after the answer, for output
// the agent says it sent and that has not arrived, making no progress.
const stragglerWait = 20 * time.Second

// Channel is the host end of the output channel (internal/protocol/frame.go):
// one connection to the VM's virtio-serial port, shared by all calls, each
// call's frames told apart by its id.
type Channel struct {
	conn net.Conn
	wmu  sync.Mutex // grants are written whole
	hdr  []byte     // under wmu

	received atomic.Int64 // payload bytes, for tests

	mu    sync.Mutex
	calls map[uint64]*ChannelCall
	err   error         // why reading stopped, under mu
	done  chan struct{} // closed when reading stopped
	// sync is the sync frame the reader is throwing bytes away until,
	// nil when it reads frames; under mu.
	sync *pendingSync
}

// pendingSync is a sync frame waited for (ExpectSync).
type pendingSync struct {
	marker []byte
	found  chan struct{}
}

// DialChannel connects to the unix socket QEMU serves the port on.
func DialChannel(path string) (*Channel, error) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, errors.Wrap(err, "connecting to the output channel")
	}
	return newChannel(conn), nil
}

func newChannel(conn net.Conn) *Channel {
	ch := &Channel{conn: conn, calls: map[uint64]*ChannelCall{}, done: make(chan struct{})}
	go ch.read()
	return ch
}

// Received is how many bytes of output arrived so far.
func (ch *Channel) Received() int64 { return ch.received.Load() }

// Close ends the connection; calls waiting on it fail.
func (ch *Channel) Close() error { return ch.conn.Close() }

// ExpectSync makes the reader throw away everything up to a sync frame
// with this nonce, which the agent writes when /resume asks it to: after a
// revert the bytes in flight belong partly to the state thrown away and can
// end inside a frame, whose announced size would swallow frames sent after
// the revert. found is closed once the reader is past it.
func (ch *Channel) ExpectSync(nonce uint64) (found <-chan struct{}) {
	ps := &pendingSync{
		marker: protocol.FrameHeader{Kind: protocol.FrameSync, Call: nonce}.AppendHeader(nil),
		found:  make(chan struct{}),
	}
	ch.mu.Lock()
	ch.sync = ps
	ch.mu.Unlock()
	// Wakes the reader from the frame it may be halfway through.
	ch.conn.SetReadDeadline(time.Now())
	return ps.found
}

// pendingSync returns the sync frame waited for, if any.
func (ch *Channel) pendingSync() *pendingSync {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.sync
}

// skipToSync throws bytes away until ps's sync frame. A read deadline ends
// it early only to let the loop pick up a newer sync.
func (ch *Channel) skipToSync(fr *protocol.FrameReader, ps *pendingSync) error {
	ch.conn.SetReadDeadline(time.Time{})
	if err := fr.SkipPast(ps.marker); err != nil {
		return err
	}
	ch.mu.Lock()
	if ch.sync == ps {
		ch.sync = nil
	}
	ch.mu.Unlock()
	close(ps.found)
	return nil
}

func (ch *Channel) read() {
	fr := protocol.NewFrameReader(ch.conn)
	for {
		var h protocol.FrameHeader
		var p []byte
		var err error
		if ps := ch.pendingSync(); ps != nil {
			err = ch.skipToSync(fr, ps)
		} else {
			h, p, err = fr.Next()
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && ch.pendingSync() != nil {
			continue // ExpectSync woke it; what it was reading is dropped
		}
		if err != nil {
			ch.mu.Lock()
			ch.err = errors.Wrap(err, "the output channel closed")
			ch.mu.Unlock()
			close(ch.done)
			return
		}
		if h.Kind != protocol.FrameData {
			continue
		}
		ch.received.Add(int64(len(p)))
		ch.mu.Lock()
		c := ch.calls[h.Call]
		ch.mu.Unlock()
		if c != nil { // else a call that was abandoned: drop its output
			c.receive(Stream(h.Stream), p)
		}
	}
}

// grant lets call id send n more bytes.
func (ch *Channel) grant(id uint64, n int64) {
	ch.wmu.Lock()
	defer ch.wmu.Unlock()
	ch.hdr = protocol.FrameHeader{Kind: protocol.FrameGrant, Call: id, Size: uint32(n)}.AppendHeader(ch.hdr[:0])
	// A failed write shows as the reader's error soon after.
	_, _ = ch.conn.Write(ch.hdr)
}

// ChannelCall is one command's output arriving over the channel.
type ChannelCall struct {
	ch        *Channel
	id        uint64
	streaming bool // hand chunks out through take; else grant on arrival

	mu        sync.Mutex
	got       [3]int64      // bytes received, by Stream
	out       [3]keptOutput // what the result keeps, by Stream
	queue     []Chunk       // streaming: received, not yet taken
	ungranted int64
	granted   int64 // bytes granted back so far (streaming)
	// overrun is set when a streaming call's guest sent more than its
	// window allowed: the guest is untrusted, and a streaming call's
	// output waits on the host until the caller takes it, so the window
	// is what bounds it.
	overrun error
	ready   chan struct{} // signalled when bytes arrive
}

// Chunk is a piece of one stream's output.
type Chunk struct {
	Stream Stream
	Data   []byte
}

// Open registers a new call. streaming: the caller takes chunks as they come
// and the guest is held back until it has (flow control); otherwise output
// is only collected. Either way at most limit bytes of each stream are kept
// for the result (0: all of it).
func (ch *Channel) Open(streaming bool, limit int64) (*ChannelCall, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, errors.Wrap(err, "making a call id")
	}
	c := &ChannelCall{ch: ch, id: binary.LittleEndian.Uint64(b[:]) | 1, streaming: streaming, out: keptOutputs(limit), ready: make(chan struct{}, 1)}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.err != nil {
		return nil, ch.err
	}
	ch.calls[c.id] = c
	return c, nil
}

// ID is the id to put in ExecRequest.OutputChannel.
func (c *ChannelCall) ID() uint64 { return c.id }

// Close forgets the call; its late frames are dropped, and what it kept
// and nobody took (Output) is given back.
func (c *ChannelCall) Close() {
	c.ch.mu.Lock()
	delete(c.ch.calls, c.id)
	c.ch.mu.Unlock()
	c.mu.Lock()
	c.out[Stdout].release()
	c.out[Stderr].release()
	c.queue = nil
	c.mu.Unlock()
}

func (c *ChannelCall) receive(s Stream, p []byte) {
	n := int64(len(p))
	c.mu.Lock()
	c.got[s] += n
	if c.streaming && c.overrun == nil && c.got[Stdout]+c.got[Stderr] > c.granted+protocol.ChannelWindow {
		c.overrun = errors.Errorf("the guest sent more output than the channel's window allowed (%d bytes granted)", c.granted+protocol.ChannelWindow)
	}
	if c.overrun == nil {
		c.out[s].add(p)
		if c.streaming {
			// The caller sees every byte, also past the limit; the queue
			// holds at most the window (the guest waits for grants). A
			// copy: p is the frame reader's, and what the result keeps is
			// off Go's heap (offheap.go), where no chunk a caller might
			// hold on to may point.
			c.queue = append(c.queue, Chunk{s, append([]byte(nil), p...)})
		}
	}
	c.mu.Unlock()
	if !c.streaming {
		c.Consumed(n) // dropped bytes too: the guest must go on
	}
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// Consumed tells the guest that n more bytes may come, granting them back
// once enough were used up: on arrival for collected calls, after Take and
// use for streaming ones.
func (c *ChannelCall) Consumed(n int64) {
	c.mu.Lock()
	c.ungranted += n
	g := int64(0)
	if c.ungranted >= grantBatch {
		g, c.ungranted = c.ungranted, 0
		c.granted += g
	}
	c.mu.Unlock()
	if g > 0 {
		c.ch.grant(c.id, g)
	}
}

// Ready is signalled when output arrived.
func (c *ChannelCall) Ready() <-chan struct{} { return c.ready }

// Dead is closed when the channel stopped working.
func (c *ChannelCall) Dead() <-chan struct{} { return c.ch.done }

// Take returns the chunks received since the last Take (streaming calls).
// Call Consumed with their size once they are used up. It fails once the
// guest broke the flow control.
func (c *ChannelCall) Take() ([]Chunk, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q, c.overrun
}

// Complete says whether everything counts announces has arrived.
func (c *ChannelCall) Complete(counts protocol.ChannelCounts) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[Stdout] >= counts.Stdout && c.got[Stderr] >= counts.Stderr
}

// Output moves each stream's output to where alloc says (nil: Go's heap),
// and says whether the limit cut it. Once only: the call keeps nothing
// after.
func (c *ChannelCall) Output(alloc Alloc) (stdout, stderr []byte, stdoutCut, stderrCut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stdout, stderr = moveOutputs(&c.out, alloc)
	return stdout, stderr, c.out[Stdout].cut, c.out[Stderr].cut
}

// Wait waits until everything counts announces has arrived (for a call that
// is not streaming), or fails when the channel breaks, ctx ends or output
// stops arriving for stragglerWait.
func (c *ChannelCall) Wait(ctx context.Context, counts protocol.ChannelCounts) error {
	idle := time.NewTimer(stragglerWait)
	defer idle.Stop()
	for !c.Complete(counts) {
		select {
		case <-c.ready:
			idle.Reset(stragglerWait)
		case <-c.ch.done:
			if c.Complete(counts) {
				return nil
			}
			c.ch.mu.Lock()
			defer c.ch.mu.Unlock()
			return errors.Wrap(c.ch.err, "output lost")
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-idle.C:
			return c.missing(counts)
		}
	}
	return nil
}

func (c *ChannelCall) missing(counts protocol.ChannelCounts) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Errorf("output lost: the agent sent %d+%d bytes over the output channel, %d+%d arrived",
		counts.Stdout, counts.Stderr, c.got[Stdout], c.got[Stderr])
}
