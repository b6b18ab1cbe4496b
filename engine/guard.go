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

// startGuard connects to both guard sockets (QEMU waits for that before it
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
	out, err := dial(sb.spec.GuardOut)
	if err != nil {
		return err
	}
	in, err := dial(sb.spec.GuardIn)
	if err != nil {
		out.Close()
		return err
	}
	go func() {
		err := netguard.NewGuard().Run(out, in, nil)
		// The sockets stay open until QEMU is gone: QEMU lets frames pass
		// unfiltered once nobody is connected.
		defer out.Close()
		defer in.Close()
		select {
		case <-sb.exited: // QEMU went first: the guard's end is no news
		case <-time.After(deathSettle):
			sb.markDead(errors.Wrap(err, "the network guard failed; the VM was stopped"))
			sb.kill()
		}
	}()
	return nil
}
