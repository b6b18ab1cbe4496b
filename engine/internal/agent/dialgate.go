package agent

import (
	"context"
	"net"
	"sync"
	"time"
)

// QEMU's user network listens on the agent's forwarded port with a backlog
// of 1 (libslirp calls listen(s, 1); QEMU has no option for it), so its
// accept queue holds two connections. A connection attempt beyond that is
// dropped, and TCP retries it after 1, 3, 7, 15... s: 128 calls at once on
// new connections left some waiting past their whole budget. So a client
// opens one connection at a time, and lets the next attempt go once QEMU
// has evidently taken the last one in (its first answer arrived), or after
// admitWait, by which QEMU's main loop has in practice accepted it.
const admitWait = 20 * time.Millisecond

// dialGate lets one connection attempt to an agent's port go at a time.
type dialGate struct {
	slot   chan struct{}
	dialer net.Dialer
}

func newDialGate(timeout time.Duration) *dialGate {
	return &dialGate{slot: make(chan struct{}, 1), dialer: net.Dialer{Timeout: timeout}}
}

// DialContext is net.Dialer's, one attempt at a time.
func (g *dialGate) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	select {
	case g.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	conn, err := g.dialer.DialContext(ctx, network, addr)
	if err != nil {
		<-g.slot
		return nil, err
	}
	release := sync.OnceFunc(func() { <-g.slot })
	timer := time.AfterFunc(admitWait, release)
	return &admittedConn{Conn: conn, admitted: sync.OnceFunc(func() {
		timer.Stop()
		release()
	})}, nil
}

// admittedConn gives its gate's slot back on its first read that returns
// (an answer came, so QEMU accepted it), on close, or after admitWait.
type admittedConn struct {
	net.Conn
	admitted func()
}

func (c *admittedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.admitted()
	return n, err
}

func (c *admittedConn) Close() error {
	c.admitted()
	return c.Conn.Close()
}
