package engine

// Shared folders: a host folder mounted into the guest. The engine serves
// the folder over 9P (internal/share) on a connection it makes to the
// agent with the sandbox's token, and the guest's kernel mounts that
// connection (docs/protocol.md, "Shared folders"). Nothing listens on the
// host for it, no QEMU device is added (so warm starts, checkpoints and
// hot mounts need nothing from QEMU), and the host side decides what the
// guest may reach: the folder and nothing outside it, read-only enforced
// here.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/share"
	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Mount shares the host folder HostPath at GuestPath in the guest.
type Mount struct {
	HostPath  string
	GuestPath string
	// ReadOnly: the guest may read the folder and change nothing in it
	// (enforced by the host, whatever the guest's mount flags say).
	ReadOnly bool
}

// MountHandle is a mount made by Start or Sandbox.Mount.
type MountHandle struct {
	ID string // unique within the sandbox
	Mount
}

// mounts are a sandbox's active mounts, by guest path.
type mounts struct {
	// ops lets one mount, unmount or restore run at a time. A revert
	// takes it while holding sb.snapshots; whoever holds it never waits
	// for sb.snapshots.
	ops    sync.Mutex
	mu     sync.Mutex
	active map[string]*activeMount
	// atCheckpoint are the mounts that were active when each checkpoint
	// was taken: a revert brings those back.
	atCheckpoint map[string][]MountHandle
}

type activeMount struct {
	handle MountHandle
	folder *share.Folder
	conn   io.Closer // the session serving it
}

// close stops serving the folder: the guest's mount fails from now on.
func (m *activeMount) close() {
	m.conn.Close()
	m.folder.Close()
}

// unmountWait bounds the agent's unmount, after which the host stops
// serving the folder anyway.
const unmountWait = 10 * time.Second

// checkMount checks a mount and makes its host path absolute, with
// symlinks resolved (the folder is what the path names now).
func checkMount(m Mount) (Mount, error) {
	bad := func(format string, args ...any) (Mount, error) {
		return m, newError(KindInvalidConfig, nil, "mount %s at %s: %s", m.HostPath, m.GuestPath, fmt.Sprintf(format, args...))
	}
	g := m.GuestPath
	switch {
	case m.HostPath == "":
		return bad("the host folder is required")
	case g == "" || !path.IsAbs(g):
		return bad("the guest path must be absolute")
	case strings.IndexByte(g, 0) >= 0 || strings.IndexByte(m.HostPath, 0) >= 0:
		return bad("a path contains a NUL byte")
	case path.Clean(g) == "/":
		return bad("the guest's root cannot be mounted over")
	}
	m.GuestPath = path.Clean(g)
	abs, err := filepath.Abs(m.HostPath)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return m, newError(KindNotFound, err, "mount %s: the host folder", m.HostPath)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return bad("%s is not a folder", abs)
	}
	m.HostPath = abs
	return m, nil
}

// Mount shares a host folder into the running sandbox and returns its
// handle. The guest path is made when missing; a mount already there is
// refused. Not available on a server's sandbox (KindBadRequest): its
// mounts are given at start (Config.Mounts, folders of the server's host).
func (sb *Sandbox) Mount(ctx context.Context, m Mount) (MountHandle, error) {
	if sb.remote != nil {
		return MountHandle{}, errNotRemote("Mount")
	}
	m, err := checkMount(m)
	if err != nil {
		return MountHandle{}, err
	}
	id := make([]byte, 8)
	rand.Read(id)
	h := MountHandle{ID: hex.EncodeToString(id), Mount: m}
	epoch := sb.currentEpoch()
	sb.mounts.ops.Lock()
	defer sb.mounts.ops.Unlock()
	sb.mounts.mu.Lock()
	_, taken := sb.mounts.active[m.GuestPath]
	sb.mounts.mu.Unlock()
	if taken {
		return MountHandle{}, newError(KindBadRequest, nil, "mount %s: %s is already a mount", m.HostPath, m.GuestPath)
	}
	if err := sb.attach(ctx, epoch, h); err != nil {
		return MountHandle{}, err
	}
	return h, nil
}

// attach serves h's folder on a new connection and has the guest mount it,
// in epoch. Called with sb.mounts.ops held.
func (sb *Sandbox) attach(ctx, epoch context.Context, h MountHandle) error {
	what := "mounting " + h.HostPath + " at " + h.GuestPath
	folder, err := share.Open(h.HostPath, h.ReadOnly)
	if err != nil {
		return newError(KindNotFound, err, "%s", what)
	}
	var session *share.Session
	err = sb.fileCallIn(ctx, epoch, what, func(ctx context.Context) error {
		conn, err := sb.client.ConnectMount(ctx, h.ID)
		if err != nil {
			return err
		}
		session = folder.NewSession(conn)
		go session.Serve()
		return sb.client.Mount(ctx, protocol.MountRequest{ID: h.ID, Path: h.GuestPath, ReadOnly: h.ReadOnly})
	})
	am := &activeMount{handle: h, folder: folder, conn: io.NopCloser(nil)}
	if session != nil {
		am.conn = session
	}
	if err != nil {
		am.close()
		return err
	}
	sb.mounts.mu.Lock()
	if sb.mounts.active == nil {
		sb.mounts.active = map[string]*activeMount{}
	}
	sb.mounts.active[h.GuestPath] = am
	sb.mounts.mu.Unlock()
	return nil
}

// Unmount unmounts a mount (the one with h.ID) and stops serving its
// folder: once it returns, the guest reaches nothing of the folder, even
// through files it had open. Not available on a server's sandbox
// (KindBadRequest).
func (sb *Sandbox) Unmount(ctx context.Context, h MountHandle) error {
	if sb.remote != nil {
		return errNotRemote("Unmount")
	}
	sb.mounts.ops.Lock()
	defer sb.mounts.ops.Unlock()
	sb.mounts.mu.Lock()
	var am *activeMount
	for _, m := range sb.mounts.active {
		if m.handle.ID == h.ID {
			am = m
		}
	}
	if am == nil {
		sb.mounts.mu.Unlock()
		return newError(KindBadRequest, nil, "unmounting mount %s %s: it is not mounted (a revert to a checkpoint taken before it was mounted unmounts it)", h.ID, h.GuestPath)
	}
	delete(sb.mounts.active, am.handle.GuestPath)
	sb.mounts.mu.Unlock()
	defer am.close()
	uctx, cancel := context.WithTimeout(ctx, unmountWait)
	defer cancel()
	return sb.fileCall(uctx, "unmounting "+h.GuestPath, func(ctx context.Context) error {
		return sb.client.Unmount(ctx, protocol.UnmountRequest{Path: am.handle.GuestPath})
	})
}

// ActiveMounts are the sandbox's mounts, by guest path (none listed for a
// server's sandbox).
func (sb *Sandbox) ActiveMounts() []MountHandle {
	if sb.remote != nil {
		return nil
	}
	sb.mounts.mu.Lock()
	defer sb.mounts.mu.Unlock()
	out := make([]MountHandle, 0, len(sb.mounts.active))
	for _, am := range sb.mounts.active {
		out = append(out, am.handle)
	}
	slices.SortFunc(out, func(a, b MountHandle) int { return strings.Compare(a.GuestPath, b.GuestPath) })
	return out
}

// mountAll makes the mounts a config asks for, in order; on failure the
// ones made are unmounted again.
func (sb *Sandbox) mountAll(ctx context.Context, ms []Mount) error {
	for _, m := range ms {
		if _, err := sb.Mount(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// closeMounts stops serving every folder (the sandbox stopped).
func (sb *Sandbox) closeMounts() {
	sb.mounts.mu.Lock()
	defer sb.mounts.mu.Unlock()
	for p, am := range sb.mounts.active {
		am.close()
		delete(sb.mounts.active, p)
	}
}

// rememberMounts notes the mounts a checkpoint is taken with. Called with
// sb.snapshots held (a mount made during the checkpoint may or may not be
// counted: the caller raced it).
func (sb *Sandbox) rememberMounts(tag string) {
	handles := sb.ActiveMounts()
	sb.mounts.mu.Lock()
	defer sb.mounts.mu.Unlock()
	if sb.mounts.atCheckpoint == nil {
		sb.mounts.atCheckpoint = map[string][]MountHandle{}
	}
	sb.mounts.atCheckpoint[tag] = handles
}

// restoreMounts follows a revert to tag: the guest is back to the mounts it
// had then, each on a connection that no longer exists. Every folder served
// now stops, and the checkpoint's mounts are cut off in the guest and made
// again on new connections. A mount that cannot be made again (its host
// folder is gone) is reported and left out. Called with sb.snapshots held.
func (sb *Sandbox) restoreMounts(ctx context.Context, tag string) error {
	sb.mounts.ops.Lock()
	defer sb.mounts.ops.Unlock()
	sb.closeMounts()
	sb.mounts.mu.Lock()
	want := sb.mounts.atCheckpoint[tag]
	sb.mounts.mu.Unlock()
	var failed []string
	for _, h := range want {
		uctx, cancel := context.WithTimeout(ctx, unmountWait)
		err := sb.fileCallIn(uctx, sb.epoch, "unmounting "+h.GuestPath, func(ctx context.Context) error {
			return sb.client.Unmount(ctx, protocol.UnmountRequest{Path: h.GuestPath, Force: true})
		})
		cancel()
		if err == nil {
			err = sb.attach(ctx, sb.epoch, h)
		}
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	if failed != nil {
		return newError(KindSnapshotFailed, nil, "reverted to %q, but not every mount came back: %s", tag, strings.Join(failed, "; "))
	}
	return nil
}

// refuseSaveWithMounts: a save is resumed by another process, perhaps on
// another machine, where the folders it had mounted mean nothing.
func (sb *Sandbox) refuseSaveWithMounts(name string) error {
	active := sb.ActiveMounts()
	if len(active) == 0 {
		return nil
	}
	paths := make([]string, len(active))
	for i, h := range active {
		paths[i] = h.GuestPath
	}
	return newError(KindBadRequest, nil, "save %s: unmount the shared folders first (%s): a save cannot take a mount with it", name, strings.Join(paths, ", "))
}
