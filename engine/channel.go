package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/engine/internal/qemu"
)

// connectChannel connects the output channel, through which commands'
// output then travels instead of in the HTTP answers (much cheaper for the
// guest). Without it everything still works, only slower, so a failure is
// recorded rather than fatal.
func (sb *Sandbox) connectChannel() {
	ch, err := agent.DialChannel(sb.spec.ChannelSocket)
	if err != nil {
		sb.channelErr = err
	} else {
		sb.channel = ch
		sb.client.SetChannel(ch)
		sb.channelErr = sb.guestOpenedChannel()
	}
	if sb.channelErr != nil {
		sb.cfg.Logger.Warn("no output channel: output comes in the agent's answers (slower under TCG)", "err", sb.channelErr)
	}
}

// OutputChannel says whether commands' output travels over the output
// channel (docs/protocol.md) and, when it does not, why: output then comes
// in the agent's answers, which works the same but is several times slower
// under TCG. The answer was found at start and asks nothing of QEMU (which
// can be busy with a checkpoint). Not available on a server's sandbox
// (false and a KindBadRequest error).
func (sb *Sandbox) OutputChannel() (bool, error) {
	if sb.remote != nil {
		return false, errNotRemote("OutputChannel")
	}
	if sb.channel == nil || sb.channelErr != nil {
		return false, sb.channelErr
	}
	if lost := sb.channelLost.Load(); lost != nil {
		return false, *lost
	}
	if cause := context.Cause(sb.alive); cause != nil {
		return false, cause
	}
	return true, nil
}

// guestOpenedChannel asks QEMU whether the guest has its end of the channel
// open: a save made before the channel existed resumes without it.
func (sb *Sandbox) guestOpenedChannel() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	raw, err := sb.qmp.Execute(ctx, "query-chardev", nil)
	if err != nil {
		return errors.Wrap(err, "asking QEMU about the output channel")
	}
	var chardevs []struct {
		Label string `json:"label"`
		Open  bool   `json:"frontend-open"`
	}
	if err := json.Unmarshal(raw, &chardevs); err != nil {
		return errors.Wrap(err, "reading QEMU's list of character devices")
	}
	for _, c := range chardevs {
		if c.Label == qemu.ChannelChardev {
			if !c.Open {
				return errors.New("the guest has not opened its end of the output channel (an image or save made without it)")
			}
			return nil
		}
	}
	return errors.New("QEMU has no output channel device")
}

// syncLimit bounds the wait for the sync frame after the agent said it
// wrote it: it is already on its way.
const syncLimit = 10 * time.Second

// expectChannelSync, before a revert wakes the agent, puts the channel's
// reader into looking for a sync frame with a new nonce (agent.Channel.
// ExpectSync). nonce is 0 when there is no channel in use.
func (sb *Sandbox) expectChannelSync() (nonce uint64, found <-chan struct{}) {
	if ok, _ := sb.OutputChannel(); !ok {
		return 0, nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		sb.giveUpChannel(errors.Wrap(err, "making a nonce"))
		return 0, nil
	}
	nonce = binary.LittleEndian.Uint64(b[:]) | 1
	return nonce, sb.channel.ExpectSync(nonce)
}

// awaitChannelSync waits until the reader is past the sync frame the agent
// wrote. An agent that did not write one (an image from before sync
// frames, a channel it gave up) or a frame that does not come leaves the
// channel's byte stream unusable: output goes in the agent's answers from
// then on.
func (sb *Sandbox) awaitChannelSync(ctx context.Context, synced bool, found <-chan struct{}) {
	if found == nil {
		return
	}
	if !synced {
		sb.giveUpChannel(errors.New("after the revert, the agent did not mark its place in the output channel"))
		return
	}
	timer := time.NewTimer(syncLimit)
	defer timer.Stop()
	select {
	case <-found:
	case <-timer.C:
		sb.giveUpChannel(errors.Errorf("after the revert, the agent's mark in the output channel did not arrive within %v", syncLimit))
	case <-ctx.Done():
		sb.giveUpChannel(errors.Wrap(context.Cause(ctx), "after the revert, waiting for the agent's mark in the output channel"))
	}
}

// giveUpChannel stops sending output over the channel: commands answer
// in-band, as without one.
func (sb *Sandbox) giveUpChannel(why error) {
	sb.client.SetChannel(nil)
	sb.channelLost.Store(&why)
	sb.cfg.Logger.Warn("output channel given up: output comes in the agent's answers (slower under TCG)", "err", why)
}
