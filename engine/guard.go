package engine

import (
	"context"
	"net"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/netguard"
)

// guardSocket is where QEMU serves one side of the network guard, or ""
// when the sandbox needs none: in full network mode the guest's frames pass
// the engine, which keeps them from the host's loopback services (see
// netguard); restricted mode reaches nothing anyway.
func guardSocket(cfg Config, workdir *lockedDir, side string) string {
	if cfg.Network != NetworkFull || cfg.AllowHostLoopback {
		return ""
	}
	return workdir.file("guard-" + side + ".sock")
}

// startGuard connects to the three guard sockets (QEMU waits for that before it
// runs the VM) and filters the guest's frames until QEMU exits. Should the
// guard fail while the VM runs, the VM is killed: a guest must never be
// left on the network unguarded.
func (sb *Sandbox) startGuard(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	dial := func(path string) (net.Conn, error) {
		for {
			c, err := net.Dial("unix", path)
			if err == nil {
				return c, nil
			}
			select {
			case <-sb.exited:
				return nil, sb.bootError(KindBootFailed, err, "QEMU exited before the network guard connected")
			case <-ctx.Done():
				return nil, sb.bootError(KindBootTimeout, err, "connecting the network guard")
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	var conns []net.Conn
	for _, path := range []string{sb.spec.GuardOut, sb.spec.GuardIn, sb.spec.GuardReply} {
		c, err := dial(path)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return err
		}
		conns = append(conns, c)
	}
	out, in, reply := conns[0], conns[1], conns[2]
	g := netguard.NewGuard()
	g.Log = sb.cfg.Logger
	policy, err := sb.cfg.NetworkPolicy.compile() // checked by Validate
	if err != nil {
		return newError(KindInvalidConfig, err, "network policy")
	}
	g.SetPolicy(policy)
	sb.guard = g
	go func() {
		if err := g.ServeReplies(reply, sb.exited); err != nil {
			sb.cfg.Logger.Debug("network: the guard's answers to the guest stopped", "error", err)
		}
	}()
	go func() {
		err := g.Run(out, in, nil)
		// The sockets stay open until QEMU is gone: QEMU lets frames pass
		// unfiltered once nobody is connected.
		defer out.Close()
		defer in.Close()
		defer reply.Close()
		select {
		case <-sb.exited: // QEMU went first: the guard's end is no news
		case <-time.After(deathSettle):
			sb.markDead(errors.Wrap(err, "the network guard failed; the VM was stopped"))
			sb.kill()
		}
	}()
	return nil
}
