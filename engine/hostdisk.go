package engine

// A host disk that fills up under a sandbox looked like a guest that
// stopped answering: QEMU pauses the VM when a write to its disk overlay
// fails (its default for a full disk, werror=enospc), so every call waited
// for its timeout and said "the agent did not answer in time"; and a
// template's RAM file that cannot grow kills QEMU with SIGBUS, which said
// "QEMU exited before the agent was ready". The errors now say why, and
// name the folder whose disk is full.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// hostFolder is a folder on the host that QEMU writes to, and what it is
// to the caller (who chose it).
type hostFolder struct{ what, path string }

// fullDiskRoom: a disk with less room than this left for QEMU is full for
// its purposes (a guest's disk write, a page of RAM, a cluster of an
// overlay); one with more is not blamed.
const fullDiskRoom = 1 << 20

// fullDisk names the first of folders whose disk is full, "" if none is.
func fullDisk(folders []hostFolder) string {
	for _, f := range folders {
		var st syscall.Statfs_t
		if syscall.Statfs(f.path, &st) != nil {
			continue
		}
		free := st.Bavail
		if os.Geteuid() == 0 {
			free = st.Bfree // root may use the blocks kept for it
		}
		switch room := free * uint64(st.Bsize); {
		case room < fullDiskRoom:
			return fmt.Sprintf("the host's disk holding %s (%s) is full: %d KiB left", f.what, f.path, room>>10)
		case st.Files > 0 && st.Ffree == 0:
			return fmt.Sprintf("the host's disk holding %s (%s) is full: no inode left", f.what, f.path)
		}
	}
	return ""
}

// blameFullDisk makes a failure of kind a resource error, its message
// naming the folder, when one of folders is on a full disk (the likely
// cause of a failed boot or write).
func blameFullDisk(folders []hostFolder, kind Kind, msg string) (Kind, string) {
	if full := fullDisk(folders); full != "" {
		return KindResource, msg + ": " + full
	}
	return kind, msg
}

// hostPauseQuery bounds the question to QEMU: a frozen QEMU must not hold
// up the error of a call that already waited its timeout.
const hostPauseQuery = time.Second

// hostPause says why QEMU paused the VM when it did so because a disk
// write failed on the host, nil if it did not (or does not say within
// hostPauseQuery). It is asked when a call went unanswered: a paused VM
// answers nothing.
func (sb *Sandbox) hostPause() error {
	if sb.qmp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(sb.alive, hostPauseQuery)
	defer cancel()
	if status, err := sb.qmp.Status(ctx); err != nil || status != "io-error" {
		return nil
	}
	msg, noSpace := "QEMU paused the VM: a read or write of its disk failed on the host", false
	if e := sb.qmp.LastBlockIOError(); e != nil {
		msg, noSpace = fmt.Sprintf("QEMU paused the VM: a %s of its disk failed on the host: %s", e.Operation, e.Reason), e.NoSpace
	}
	kind := KindTransport
	if noSpace {
		kind = KindResource
	}
	kind, msg = blameFullDisk(sb.hostFolders, kind, msg)
	if t := sb.qemuStderr.String(); t != "" {
		msg += "\n--- QEMU stderr ---\n" + t
	}
	return &Error{Kind: kind, Msg: msg}
}

// pauseProbeEvery is how long a call waits unanswered before it asks QEMU
// whether it paused the VM for a failed disk write (hostPause), and how
// often it asks again while it waits: a paused VM answers nothing, and its
// calls end with the reason within about this long, not at their timeout.
const pauseProbeEvery = 2 * time.Second

// errStoppedAnswering ends a call whose VM QEMU paused (watchHostPause);
// transportError then says why.
var errStoppedAnswering = errors.New("the agent stopped answering")

// watchHostPause ends the call of ctx (cancel) once QEMU says it paused
// the VM for a failed disk write; the watch ends with ctx.
func (sb *Sandbox) watchHostPause(ctx context.Context, cancel context.CancelCauseFunc) {
	if sb.qmp == nil {
		return
	}
	go func() {
		t := time.NewTicker(pauseProbeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if sb.hostPause() != nil {
					cancel(errStoppedAnswering)
					return
				}
			}
		}
	}()
}

// transportError is the error of a call to the agent that failed in
// transport (it went unanswered, or its connection failed): the host's
// reason when QEMU paused the VM for one (hostPause), else a transport
// error.
func (sb *Sandbox) transportError(cause error, what string) error {
	if paused := sb.hostPause(); paused != nil {
		return newError(KindOf(paused), paused, "%s: %v", what, cause)
	}
	return newError(KindTransport, cause, "%s", what)
}
