package engine

import (
	"context"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
)

// Sealing (guest-agent/seal.go): a VM frozen into a state that others
// resume, a template or a save, must not wake up trusting the token it
// had, which root in any clone can read from guest RAM. So the agent is
// sealed before the freeze: it forgets its token and answers nothing until
// a /resume that bears the token the resuming QEMU holds in fw_cfg, a file
// the engine wrote owner-only for that QEMU alone. A local user who polls
// a new clone's port forward with an old token is refused from its first
// instruction on.

// seal makes the agent forget its token.
func (sb *Sandbox) seal(ctx context.Context) error {
	if err := sb.client.Seal(ctx); err != nil {
		var se *agent.StatusError
		if errors.As(err, &se) && se.Status == 404 {
			return newError(KindBootFailed, err, "the image's agent is older than sealing, which templates and saves need: rebuild the image (make image, or quicksand image build)")
		}
		return errors.Wrap(err, "sealing the agent")
	}
	return nil
}

// unseal wakes a sealed agent with the token this QEMU holds in fw_cfg and
// hands it the sandbox's token (a pooled sandbox's differs), the clock and
// fresh randomness, as rekey does; channelSync as in rekey.
func (sb *Sandbox) unseal(ctx context.Context, channelSync uint64) (bool, error) {
	sb.client.SetToken(sb.bootToken)
	return sb.rekey(ctx, channelSync)
}
