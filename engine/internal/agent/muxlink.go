package agent

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quicksand-go/quicksand/internal/mux"
)

// MuxLink is the engine's end of the agent's mux port (guest-agent/
// muxport.go): HTTP on streams of one virtio-serial connection, which pass
// no slirp and no guest network stack. A client given one sends its calls
// there while the link is up, and over the port forward otherwise: before
// the agent answered the hello, for ever if it does not (an image whose
// agent does not serve the port), and while a link that broke is made
// again (an agent that was killed and started over, which its new process
// says at once; a guest that sent what the link refuses).
type MuxLink struct {
	path   string
	limit  time.Duration
	ctx    context.Context // the link's life
	cancel context.CancelFunc
	ready  chan struct{} // closed once the first hello was answered or given up on
	done   chan struct{} // closed once the link is given up for good
	mu     sync.Mutex
	sess   *mux.Session // the current session; nil before the first
	err    error        // why the last attempt failed
	opened atomic.Int64 // streams opened: calls that took the link
	made   atomic.Int64 // sessions made
}

// DialMux connects to QEMU's socket for the port at path and says hello,
// in the background, each attempt given up after limit. A session that
// ends is made again; a first hello that is not answered ends the link
// (the image's agent does not serve the port), a later one is said again
// after a pause.
func DialMux(path string, limit time.Duration) *MuxLink {
	ctx, cancel := context.WithCancel(context.Background())
	l := &MuxLink{path: path, limit: limit, ctx: ctx, cancel: cancel, ready: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *MuxLink) run() {
	defer close(l.done)
	readyOnce := sync.OnceFunc(func() { close(l.ready) })
	defer readyOnce()
	pause := relinkPause
	for {
		sess, err := l.hello()
		l.mu.Lock()
		if err == nil {
			l.sess = sess
			l.made.Add(1)
		}
		l.err = err
		l.mu.Unlock()
		readyOnce()
		switch {
		case err == nil:
			pause = relinkPause
			select {
			case <-sess.Done():
			case <-l.ctx.Done():
				sess.Close()
				return
			}
		case l.made.Load() == 0:
			return // no agent serves the port: never ask again
		default:
			// It answered before (a QEMU frozen for a while, then let
			// go): ask again, less and less often.
			pause = min(2*pause, maxRelinkPause)
		}
		// Made again after a pause: a guest that breaks it on purpose
		// costs a dial now and then.
		select {
		case <-time.After(pause):
		case <-l.ctx.Done():
			return
		}
	}
}

// relinkPause and maxRelinkPause bound how often a link is made again.
const (
	relinkPause    = 20 * time.Millisecond
	maxRelinkPause = 5 * time.Second
)

func (l *MuxLink) hello() (*mux.Session, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.limit)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", l.path)
	if err != nil {
		return nil, err
	}
	return mux.Client(ctx, conn)
}

// Wait waits until the first hello was answered (nil) or given up on, or
// ctx ends.
func (l *MuxLink) Wait(ctx context.Context) error {
	select {
	case <-l.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	return l.sess.Err()
}

// open opens a stream if the link is up now.
func (l *MuxLink) open() net.Conn {
	l.mu.Lock()
	sess := l.sess
	l.mu.Unlock()
	if sess == nil {
		return nil
	}
	st, err := sess.Open()
	if err != nil {
		return nil
	}
	l.opened.Add(1)
	return st
}

// Up says whether the link is up now: a call made now goes over it.
func (l *MuxLink) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess != nil && l.sess.Err() == nil
}

// Made says how many sessions the link has had: more than one once it was
// made again (the agent started over, or broke it).
func (l *MuxLink) Made() int64 { return l.made.Load() }

// Opened says how many connections the link has carried.
func (l *MuxLink) Opened() int64 { return l.opened.Load() }

// Close ends the link.
func (l *MuxLink) Close() {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess != nil {
		l.sess.Close()
	}
}
