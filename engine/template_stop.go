package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pkg/errors"
)

// Stopping a VM to become a template: nothing half-done may be frozen into
// the state every clone inherits.

// stopForTemplate quiesces the guest's disk, checks that the agent seals
// itself (seal.go), pauses the VM and writes its state to path. The agent's
// connections are closed first, and their end awaited, so that no TCP
// connection is frozen into the state that every clone would inherit
// half-open. The port forward goes first: any local user can connect to
// it, and a connection opened meanwhile would hold the freeze up (clones
// get port forwards of their own).
func (sb *Sandbox) stopForTemplate(ctx context.Context, path string) error {
	if _, err := sb.Execute(ctx, ExecRequest{Command: "sync"}); err != nil {
		return err
	}
	if err := sb.requireSealing(ctx); err != nil {
		return err
	}
	out, err := sb.qmp.HMP(ctx, fmt.Sprintf("hostfwd_remove net0 tcp:127.0.0.1:%d", sb.port))
	if err != nil {
		return err
	}
	if !strings.Contains(out, "removed") {
		return errors.Errorf("removing the agent's port forward: %s", strings.TrimSpace(out))
	}
	// Longer than the agent gives a connection to send its request (10 s):
	// a stranger's connection is closed by then.
	if err := sb.quiesceNetwork(ctx, 15*time.Second); err != nil {
		return err
	}
	if _, err := sb.qmp.Execute(ctx, "stop", nil); err != nil {
		return err
	}
	return sb.writeState(ctx, path)
}

// quiesceNetwork closes the client's idle connections and waits (up to
// limit) until QEMU's user-mode network holds no connection but the port
// forwards themselves.
func (sb *Sandbox) quiesceNetwork(ctx context.Context, limit time.Duration) error {
	sb.client.Close()
	deadline := time.Now().Add(limit)
	for {
		out, err := sb.qmp.HMP(ctx, "info usernet")
		if err != nil {
			return err
		}
		if !hasOpenConnections(out) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Errorf("connections to the guest stayed open:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// guestClosed are the states (slirp's side of a connection with the guest)
// in which the guest has closed its end: nothing of it is left open in the
// guest to freeze. The other end may be a stranger's connection to the port
// forward, which the engine cannot close and need not wait for.
var guestClosed = map[string]bool{
	"TCP[HOST_FORWARD]": true, // a listener, not a connection
	"TCP[TIME_WAIT]":    true,
	"TCP[CLOSE_WAIT]":   true,
	"TCP[LAST_ACK]":     true,
	"TCP[CLOSING]":      true,
}

// hasOpenConnections reads `info usernet`: a TCP connection the guest has
// not closed is open.
func hasOpenConnections(usernet string) bool {
	for _, line := range strings.Split(usernet, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "TCP[") && !guestClosed[f[0]] {
			return true
		}
	}
	return false
}
