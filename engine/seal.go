package engine

import (
	"context"
	"slices"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Sealing (guest-agent/seal.go): a VM frozen into a state that others
// resume, a template or a save, must not wake up trusting the token it had,
// which root in any clone can read from guest RAM. The agent ties its token
// to the QEMU that handed it over (that QEMU's fw_cfg file, owner-only on
// the host): resumed in another QEMU, it takes only a /resume bearing the
// token the engine wrote for the new one. A local user who polls a new
// clone's port forward with an old token is refused from its first
// instruction on. Nothing is sent before the freeze, so nothing can be
// lost or arrive late.

// requireSealing refuses to freeze an agent that does not seal itself (an
// image built before it could): its clones would take the old token.
func (sb *Sandbox) requireSealing(ctx context.Context) error {
	caps, err := sb.client.Capabilities(ctx)
	if err != nil {
		return errors.Wrap(err, "asking the agent what it can do")
	}
	if !slices.Contains(caps, protocol.CapabilitySealed) {
		return newError(KindBootFailed, nil, "the image's agent is older than sealing, which templates and saves need (its clones would take the old token from whoever read it in guest RAM): rebuild the image (make image, or quicksand image build)")
	}
	return nil
}
