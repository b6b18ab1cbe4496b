package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// channel is the guest end of the output channel (internal/protocol/frame.go):
// commands' output goes to the host as frames on a virtio-serial port, and
// the host's grants come back on it.
type channel struct {
	f *os.File

	wmu sync.Mutex // frames are written whole, one at a time
	hdr []byte     // header buffer, under wmu

	mu      sync.Mutex
	windows map[uint64]*window

	// broken is set when a frame could not be written: output may have been
	// lost mid-frame, so later calls answer in-band instead.
	broken atomic.Bool
}

// window is what one call may still send before the host grants more.
type window struct {
	avail int64 // under channel.mu
	more  chan struct{}
}

// stallLimit is how long a frame write may make no progress (the host
// stopped reading) before the channel is given up.
const stallLimit = 30 * time.Second

// openChannel opens the virtio-serial port named protocol.ChannelPortName,
// or returns nil when the VM has none (an older engine, or tests on a host).
func openChannel() *channel {
	f := openPort(protocol.ChannelPortName)
	if f == nil {
		return nil
	}
	ch := &channel{f: f, windows: map[uint64]*window{}}
	go ch.readGrants()
	return ch
}

// openPort opens the virtio-serial port of that name, or returns nil when
// the VM has none. The guest has no udev to make /dev/virtio-ports/<name>,
// so the name is looked up in sysfs.
func openPort(name string) *os.File {
	names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil || strings.TrimSpace(string(raw)) != name {
			continue
		}
		dev := "/dev/" + filepath.Base(filepath.Dir(n))
		// Opened through the runtime's poller, so writes can time out.
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			fmt.Fprintf(os.Stderr, "quicksand-agent: virtio-serial port %s (%s): %v\n", name, dev, err)
			return nil
		}
		return f
	}
	return nil
}

// usable says whether output sent now would reach the host: the port is
// open on the host side and nothing was lost before.
func (ch *channel) usable() bool {
	if ch == nil || ch.broken.Load() {
		return false
	}
	rc, err := ch.f.SyscallConn()
	if err != nil {
		return false
	}
	hup := true
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(fds, 0); err == nil && n >= 0 {
			hup = fds[0].Revents&unix.POLLHUP != 0
		}
	})
	return !hup
}

// readGrants applies the host's grants to the calls' windows. While the host
// side is closed, reads see end of file at once: look again after a pause
// that grows to a second, so that an unconnected port costs the guest
// (and the host's CPU) next to nothing.
func (ch *channel) readGrants() {
	fr := protocol.NewFrameReader(ch.f)
	pause := 20 * time.Millisecond
	for {
		h, _, err := fr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				fmt.Fprintf(os.Stderr, "quicksand-agent: reading the output channel: %v\n", err)
			}
			time.Sleep(pause)
			pause = min(2*pause, time.Second)
			continue
		}
		pause = 20 * time.Millisecond
		if h.Kind != protocol.FrameGrant {
			continue
		}
		ch.mu.Lock()
		if w := ch.windows[h.Call]; w != nil {
			w.avail += int64(h.Size)
			select {
			case w.more <- struct{}{}:
			default:
			}
		}
		ch.mu.Unlock()
	}
}

// channelCall sends one command's output over the channel.
type channelCall struct {
	ch     *channel
	ctx    context.Context
	id     uint64
	w      *window
	counts [2]atomic.Int64

	errMu sync.Mutex
	err   error
}

// begin registers a call with a full window.
func (ch *channel) begin(ctx context.Context, id uint64) *channelCall {
	w := &window{avail: protocol.ChannelWindow, more: make(chan struct{}, 1)}
	ch.mu.Lock()
	ch.windows[id] = w
	ch.mu.Unlock()
	return &channelCall{ch: ch, ctx: ctx, id: id, w: w}
}

// end forgets the call and returns what it sent, or why it failed.
func (c *channelCall) end() (*protocol.ChannelCounts, error) {
	c.ch.mu.Lock()
	delete(c.ch.windows, c.id)
	c.ch.mu.Unlock()
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	return &protocol.ChannelCounts{Stdout: c.counts[stdoutStream.Index()].Load(), Stderr: c.counts[stderrStream.Index()].Load()}, nil
}

// send is an onChunk for command.run. After a failure it drops the rest:
// the call answers with an error.
func (c *channelCall) send(s stream, p []byte) {
	c.errMu.Lock()
	failed := c.err != nil
	c.errMu.Unlock()
	if failed {
		return
	}
	for len(p) > 0 {
		n, err := c.take(len(p))
		if err == nil {
			err = c.ch.writeFrame(protocol.FrameHeader{Kind: protocol.FrameData, Stream: s, Call: c.id, Size: uint32(n)}, p[:n])
		}
		if err != nil {
			c.errMu.Lock()
			c.err = err
			c.errMu.Unlock()
			return
		}
		c.counts[s.Index()].Add(int64(n))
		p = p[n:]
	}
}

// take waits until the call may send and returns how many of want bytes.
func (c *channelCall) take(want int) (int, error) {
	for {
		c.ch.mu.Lock()
		if c.w.avail > 0 {
			n := int(min(int64(want), c.w.avail))
			c.w.avail -= int64(n)
			c.ch.mu.Unlock()
			return n, nil
		}
		c.ch.mu.Unlock()
		select {
		case <-c.w.more:
		case <-c.ctx.Done():
			return 0, fmt.Errorf("waiting for the host to take output: %w", context.Cause(c.ctx))
		}
	}
}

// sync writes a sync frame carrying the host's nonce (internal/protocol/
// frame.go): after a revert, the host throws away what came before it.
// Frames are written whole, so the next one starts right after it.
func (ch *channel) sync(nonce uint64) bool {
	return ch.usable() && ch.writeFrame(protocol.FrameHeader{Kind: protocol.FrameSync, Call: nonce}, nil) == nil
}

// writeFrame writes a header and its payload. A frame is never left half
// written for a cancelled call (the host would lose its place), so the only
// way out mid-frame is the host not reading for stallLimit; the channel is
// then broken for good.
func (ch *channel) writeFrame(h protocol.FrameHeader, p []byte) error {
	ch.wmu.Lock()
	defer ch.wmu.Unlock()
	if ch.broken.Load() {
		return errors.New("the output channel is broken")
	}
	ch.hdr = h.AppendHeader(ch.hdr[:0])
	for _, b := range [][]byte{ch.hdr, p} {
		for len(b) > 0 {
			ch.f.SetWriteDeadline(time.Now().Add(stallLimit))
			n, err := ch.f.Write(b)
			b = b[n:]
			if err != nil && !(errors.Is(err, os.ErrDeadlineExceeded) && n > 0) {
				ch.broken.Store(true)
				return fmt.Errorf("writing to the output channel: %w", err)
			}
		}
	}
	return nil
}
