package engine

// Checkpoint and revert: snapshots of a running sandbox, RAM and disk, kept
// inside its qcow2 overlay (QEMU's savevm/loadvm), for as long as the
// sandbox lives.

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pkg/errors"
)

// tagPattern keeps tags to what QEMU's monitor takes as one word.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkTag(tag string) error {
	if !tagPattern.MatchString(tag) {
		return newError(KindBadRequest, nil, "checkpoint tag %q must be 1 to 64 letters, digits, '.', '_' or '-'", tag)
	}
	return nil
}

// Checkpoint captures the sandbox's RAM and disk under tag, replacing an
// earlier checkpoint of that tag. The VM pauses while its state is written.
func (sb *Sandbox) Checkpoint(ctx context.Context, tag string) error {
	if err := checkTag(tag); err != nil {
		return err
	}
	if sb.remote != nil {
		return sb.remote.checkpoint(ctx, tag)
	}
	sb.snapshots.Lock()
	defer sb.snapshots.Unlock()
	if err := sb.beginSnapshotOp("checkpointing"); err != nil {
		return err
	}
	opCtx, cancel := sb.boundSnapshot(ctx)
	defer cancel()
	if err := sb.hmp(opCtx, "savevm "+tag); err != nil {
		return sb.opError(ctx, err, "checkpoint %q", tag)
	}
	sb.tags[tag] = true
	sb.rememberMounts(tag)
	return nil
}

// Revert returns the sandbox to the state of checkpoint tag: disk, RAM and
// running processes. Calls in flight fail with a cancelled error that says
// so. The guest's clock is set to the host's again and its RNG reseeded.
func (sb *Sandbox) Revert(ctx context.Context, tag string) error {
	if err := checkTag(tag); err != nil {
		return err
	}
	if sb.remote != nil {
		return sb.remote.revert(ctx, tag)
	}
	sb.snapshots.Lock()
	defer sb.snapshots.Unlock()
	if err := sb.beginSnapshotOp("reverting"); err != nil {
		return err
	}
	revertable, known := sb.tags[tag]
	switch {
	case !known:
		return newError(KindBadRequest, nil, "no checkpoint named %q", tag)
	case !revertable:
		return newError(KindBadRequest, nil, "checkpoint %q was taken before a save, which moved the disk on to a new overlay without it: take it again to revert to it", tag)
	}
	opCtx, cancel := sb.boundSnapshot(ctx)
	defer cancel()
	err := sb.hmp(opCtx, "loadvm "+tag)
	if err != nil && !ended(opCtx) {
		// A device restored while its queue was busy can refuse what it
		// was given (seen once in many runs: virtio-serial's "Virtqueue
		// size exceeded" while output streamed). Loading again starts
		// from a reset machine.
		sb.cfg.Logger.Warn("loading the checkpoint failed: trying once more", "tag", tag, "err", err)
		err = sb.hmp(opCtx, "loadvm "+tag)
	}
	if err != nil {
		// QEMU leaves the VM paused when loadvm fails; it checks every
		// disk for the tag before it loads anything, so the VM can go on
		// as it was.
		if cerr := sb.resumeVM(opCtx); cerr != nil {
			err = errors.Wrapf(err, "and letting the VM run again failed too (%v)", cerr)
		}
		return sb.opError(ctx, err, "revert to %q", tag)
	}
	// The calls in flight and the client's connections belong to the
	// state just thrown away.
	sb.endEpoch(errors.Errorf("the sandbox was reverted to checkpoint %q", tag))
	sb.epoch, sb.endEpoch = context.WithCancelCause(context.Background())
	sb.client.Close()
	sb.relinkMux()
	nonce, found := sb.expectChannelSync()
	synced, err := sb.rekey(opCtx, nonce)
	if err != nil {
		sb.awaitChannelSync(opCtx, false, found) // the reader looks for a mark that will not come
		return sb.opError(ctx, err, "revert to %q: waking the agent", tag)
	}
	sb.awaitChannelSync(opCtx, synced, found)
	return sb.restoreMounts(opCtx, tag)
}

// contLimit bounds the wait for the "cont" that lets a VM run again after a
// snapshot operation, whatever the caller's context.
const contLimit = 10 * time.Second

// resumeVM lets the VM run again after a snapshot operation that paused it.
// If QEMU does not answer in time (frozen), the "cont" goes on being sent in
// the background until QEMU takes it or dies: QEMU carries out the commands
// it was sent when it goes on, the pause that was given up on included, and
// the VM must not stay paused behind it. A caller whose context already
// ended (opCtx) is kept waiting only briefly. Called with sb.snapshots held.
func (sb *Sandbox) resumeVM(opCtx context.Context) error {
	wait := contLimit
	if ended(opCtx) {
		wait = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := sb.qmp.Execute(ctx, "cont", nil)
	if err == nil || context.Cause(sb.alive) != nil || ctx.Err() == nil {
		return err
	}
	sb.cfg.Logger.Warn("QEMU did not let the VM run again in time: retrying in the background", "err", err)
	retry, stop := context.WithCancel(sb.alive)
	sb.stopContRetry = stop
	go func() {
		defer stop()
		for retry.Err() == nil {
			ctx, cancel := context.WithTimeout(retry, contLimit)
			_, err := sb.qmp.Execute(ctx, "cont", nil)
			cancel()
			if err == nil {
				return
			}
			select {
			case <-retry.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return err
}

// boundSnapshot gives a checkpoint, revert or save whose caller set no
// deadline one of its own: QEMU reads or writes the guest's RAM at tens of
// MB/s at least, even under TCG, so a QEMU that takes longer than this is
// frozen or lost, and the caller must hear so rather than wait for ever.
func (sb *Sandbox) boundSnapshot(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	limit := 2*time.Minute + time.Duration(sb.spec.MemoryMiB)*time.Second/64
	return context.WithTimeoutCause(ctx, limit, fmt.Errorf("QEMU did not finish within %v: frozen or lost", limit))
}

// hmp runs a monitor command that prints nothing when it succeeds.
func (sb *Sandbox) hmp(ctx context.Context, command string) error {
	out, err := sb.qmp.HMP(ctx, command)
	if err != nil {
		return err
	}
	if out = strings.TrimSpace(out); out != "" {
		return errors.New(out)
	}
	return nil
}

// beginSnapshotOp is called first by every snapshot operation, with
// sb.snapshots held. It calls off an earlier operation's "cont" retries (the
// operation starting now ends by letting the VM run again itself, and a
// late "cont" must not undo its pause), and returns the error for a stopped
// sandbox, or nil.
func (sb *Sandbox) beginSnapshotOp(what string) error {
	if sb.stopContRetry != nil {
		sb.stopContRetry()
		sb.stopContRetry = nil
	}
	if cause := context.Cause(sb.alive); cause != nil {
		return newError(KindNotRunning, cause, "%s", what)
	}
	return nil
}

// ended tells whether ctx has ended or reached its deadline. The monitor's
// read deadline is ctx's, and it can fire a moment before ctx itself
// reports that it ended.
func ended(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(dl)
}

// opError words the failure of a snapshot operation.
func (sb *Sandbox) opError(ctx context.Context, err error, format string, args ...any) error {
	if cause := context.Cause(sb.alive); cause != nil {
		return newError(KindNotRunning, cause, format, args...)
	}
	if ended(ctx) {
		return newError(KindCancelled, err, format, args...)
	}
	return newError(KindSnapshotFailed, err, format, args...)
}
