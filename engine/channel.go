package engine

import (
	"context"
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
// can be busy with a checkpoint).
func (sb *Sandbox) OutputChannel() (bool, error) {
	if sb.channel == nil || sb.channelErr != nil {
		return false, sb.channelErr
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
