package engine

import (
	"context"
	"os"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
)

// The agent's mux port (internal/mux, guest-agent/muxport.go) carries the
// engine's HTTP calls over a virtio-serial port: no slirp, no guest
// network stack. Measured under TCG (TestWarmStartLegs): a fresh clone
// answers its first request over it in about half the time it takes over
// the port forward, because the guest runs far less code it has not yet
// translated; once warm the two cost the same. The port forward stays for
// everything else that talks to the agent, and carries the engine's calls
// while the link is not up (a start's first moments, an image whose agent
// does not serve the port, a guest that broke the link).

// muxHelloLimit bounds the wait for the agent to answer the link's hello:
// a cold boot's agent looks for the host every 50 ms at most.
const muxHelloLimit = 10 * time.Second

// TransportEnv chooses the engine's transport to the agent: "forward" for
// the port forward alone; anything else (the default) for the mux port
// where the agent serves it, the port forward where it does not. A link
// whose port takes nothing for a while (a frozen QEMU) is given up
// (internal/mux's stuckLimit), so it holds no call longer than the port
// forward would (TestFileCallsOnAFrozenQEMU).
const TransportEnv = "QUICKSAND_AGENT_TRANSPORT"

func muxWanted() bool { return os.Getenv(TransportEnv) != "forward" }

// linkMux connects to the mux port in the background, whatever the
// transport: a template is then frozen with its agent in a read of the
// port, and a clone's agent never looks for a host that is not there.
// Calls go over the link, once the agent answered, unless TransportEnv
// says "forward".
func (sb *Sandbox) linkMux() {
	if sb.spec.MuxSocket == "" {
		return
	}
	sb.muxLink = agent.DialMux(sb.spec.MuxSocket, muxHelloLimit)
	if muxWanted() {
		sb.client.SetMux(sb.muxLink)
	}
}

// relinkMux starts a new link after a revert: the agent's end went back to
// what it was at the checkpoint, so the old session means nothing to it.
// A new hello resets it.
func (sb *Sandbox) relinkMux() {
	if sb.muxLink == nil {
		return
	}
	sb.client.SetMux(nil)
	sb.muxLink.Close()
	sb.linkMux()
}

// muxUp waits (within ctx) for the link's hello to be answered; false if
// there is no link or it could not be made.
func (sb *Sandbox) muxUp(ctx context.Context) bool {
	if sb.muxLink == nil {
		return false
	}
	err := sb.muxLink.Wait(ctx)
	if err != nil {
		sb.cfg.Logger.Debug("no mux link to the agent: calls go over the port forward", "err", err)
	}
	return err == nil
}

// muxCarries says whether a call made now goes over the mux link.
func (sb *Sandbox) muxCarries() bool {
	return sb.muxLink != nil && muxWanted() && sb.muxLink.Up()
}

func (sb *Sandbox) closeMux() {
	if sb.muxLink != nil {
		sb.muxLink.Close()
	}
}
