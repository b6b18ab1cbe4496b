package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/internal/protocol"
	"github.com/quicksand-go/quicksand/internal/tree"
)

// Files in the guest: written and read as streams through the agent (a file
// of any size moves with bounded memory on both sides), trees as tar
// streams. Every path in the guest is absolute. What is written goes to a
// temporary name and is renamed into place once complete.

// FileInfo describes a file in the guest.
type FileInfo struct {
	Name    string
	Type    string // "file", "dir", "symlink" or "other"
	Size    int64
	Mode    fs.FileMode // permission bits (and setuid, setgid, sticky as 0o7000)
	ModTime time.Time
	Target  string // a symlink's target
}

// FileOptions are the options of WriteFile and MakeDir.
type FileOptions struct {
	// Mode is the permission bits (default 0644 for a file, 0755 for a
	// folder).
	Mode fs.FileMode
	// User does the operation as this guest user (default root): its
	// permissions apply and what it makes belongs to it.
	User string
}

// WriteFile writes r's bytes as the file at path (replacing it whole, or
// not at all) and returns how many it wrote.
func (sb *Sandbox) WriteFile(ctx context.Context, path string, r io.Reader, opts FileOptions) (int64, error) {
	var n int64
	err := sb.fileCall(ctx, "writing "+path, func(ctx context.Context) (err error) {
		n, err = sb.client.WriteFile(ctx, path, opts.User, opts.Mode, r)
		return err
	})
	return n, err
}

// ReadFile writes the bytes of the file at path to w and returns how many.
// user (default root) reads it with its permissions.
func (sb *Sandbox) ReadFile(ctx context.Context, path string, w io.Writer, user string) (int64, error) {
	var n int64
	err := sb.fileCall(ctx, "reading "+path, func(ctx context.Context) error {
		body, size, err := sb.client.ReadFile(ctx, path, user)
		if err != nil {
			return err
		}
		defer body.Close()
		if n, err = io.Copy(w, body); err == nil && size >= 0 && n != size {
			err = fmt.Errorf("got %d of its %d bytes", n, size)
		}
		return err
	})
	return n, err
}

// Stat describes path (a symlink itself, not its target). A path that does
// not exist is a KindNotFound error.
func (sb *Sandbox) Stat(ctx context.Context, path string) (*FileInfo, error) {
	res, err := sb.fileOp(ctx, protocol.FileOp{Op: "stat", Path: path}, "stat of "+path)
	if err != nil {
		return nil, err
	}
	if res.Info == nil {
		return nil, newError(KindNotFound, nil, "stat of %s: no such file or folder", path)
	}
	info := fileInfo(*res.Info)
	return &info, nil
}

// Exists says whether path exists (a dangling symlink does).
func (sb *Sandbox) Exists(ctx context.Context, path string) (bool, error) {
	res, err := sb.fileOp(ctx, protocol.FileOp{Op: "stat", Path: path}, "looking for "+path)
	return err == nil && res.Info != nil, err
}

// ListDir lists the folder at path.
func (sb *Sandbox) ListDir(ctx context.Context, path string) ([]FileInfo, error) {
	res, err := sb.fileOp(ctx, protocol.FileOp{Op: "list", Path: path}, "listing "+path)
	if err != nil {
		return nil, err
	}
	out := make([]FileInfo, len(res.Entries))
	for i, e := range res.Entries {
		out[i] = fileInfo(e)
	}
	return out, nil
}

// MakeDir makes the folder path; with parents, also the missing folders
// above it, and an existing folder is no error.
func (sb *Sandbox) MakeDir(ctx context.Context, path string, parents bool, opts FileOptions) error {
	_, err := sb.fileOp(ctx, protocol.FileOp{Op: "mkdir", Path: path, Parents: parents, Mode: uint32(opts.Mode.Perm()), User: opts.User}, "making the folder "+path)
	return err
}

// Remove removes path; a folder that is not empty only when recursive.
func (sb *Sandbox) Remove(ctx context.Context, path string, recursive bool) error {
	_, err := sb.fileOp(ctx, protocol.FileOp{Op: "remove", Path: path, Recursive: recursive}, "removing "+path)
	return err
}

// Rename renames (moves) src to dst within the guest.
func (sb *Sandbox) Rename(ctx context.Context, src, dst string) error {
	_, err := sb.fileOp(ctx, protocol.FileOp{Op: "rename", Path: src, Dest: dst}, "renaming "+src+" to "+dst)
	return err
}

// Upload copies the host's file or folder hostPath (with everything in it:
// modes, symlinks as symlinks, empty folders, modification times) to
// guestPath, which must not exist yet. Files belong to root.
func (sb *Sandbox) Upload(ctx context.Context, hostPath, guestPath string) error {
	if _, err := os.Lstat(hostPath); err != nil {
		return newError(KindNotFound, err, "uploading %s", hostPath)
	}
	return sb.fileCall(ctx, "uploading "+hostPath+" to "+guestPath, func(ctx context.Context) error {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tree.Pack(pw, hostPath)) }()
		defer pr.Close()
		_, err := sb.client.WriteTree(ctx, guestPath, "", pr)
		return err
	})
}

// Download copies the guest's file or folder guestPath to hostPath, which
// must not exist yet; a failure leaves nothing there.
func (sb *Sandbox) Download(ctx context.Context, guestPath, hostPath string) error {
	if _, err := os.Lstat(hostPath); err == nil {
		return newError(KindBadRequest, nil, "downloading %s: %s already exists", guestPath, hostPath)
	}
	if fi, err := os.Stat(filepath.Dir(hostPath)); err != nil || !fi.IsDir() {
		return newError(KindNotFound, err, "downloading %s: no folder %s on the host", guestPath, filepath.Dir(hostPath))
	}
	return sb.fileCall(ctx, "downloading "+guestPath+" to "+hostPath, func(ctx context.Context) error {
		body, err := sb.client.ReadTree(ctx, guestPath, "")
		if err != nil {
			return err
		}
		defer body.Close()
		_, err = tree.Unpack(hostPath, body)
		var bad *tree.BadStreamError
		if errors.As(err, &bad) {
			// The guest's answer is at fault, not the caller's request
			// (tree.Unpack says what it refuses from an untrusted side):
			// %v, so that it is a transport error, not a bad request.
			return fmt.Errorf("the guest sent a tree the host refuses: %v", err)
		}
		if err != nil {
			return fmt.Errorf("writing %s on the host: %w", hostPath, err)
		}
		return nil
	})
}

func (sb *Sandbox) fileOp(ctx context.Context, op protocol.FileOp, what string) (protocol.FileOpResult, error) {
	var res protocol.FileOpResult
	err := sb.fileCall(ctx, what, func(ctx context.Context) (err error) {
		res, err = sb.client.FileOp(ctx, op)
		return err
	})
	return res, err
}

// fileCall runs fn against the agent, ended when the caller gives up, the
// VM goes away or a revert throws the call's state away, and turns what
// went wrong into the error kind that says so.
func (sb *Sandbox) fileCall(ctx context.Context, what string, fn func(context.Context) error) error {
	return sb.fileCallIn(ctx, sb.currentEpoch(), what, fn)
}

// fileCallIn is fileCall in a given epoch (for callers that hold
// sb.snapshots, which currentEpoch takes).
func (sb *Sandbox) fileCallIn(ctx context.Context, epoch context.Context, what string, fn func(context.Context) error) error {
	if cause := context.Cause(sb.alive); cause != nil {
		return newError(KindNotRunning, cause, "%s", what)
	}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sb.alive, cancel)
	defer stop()
	stopEpoch := context.AfterFunc(epoch, cancel)
	defer stopEpoch()
	err := fn(callCtx)
	if err == nil {
		return nil
	}
	var se *agent.StatusError
	if errors.As(err, &se) {
		kind := map[int]Kind{
			http.StatusBadRequest:          KindBadRequest,
			http.StatusNotFound:            KindNotFound,
			http.StatusForbidden:           KindPermission,
			http.StatusInsufficientStorage: KindResource,
			http.StatusServiceUnavailable:  KindResource,
			http.StatusConflict:            KindBadRequest,
			http.StatusUnauthorized:        KindAuth,
		}[se.Status]
		if kind != 0 {
			return newError(kind, nil, "%s: %s", what, se.Detail)
		}
	}
	var bad *tree.BadStreamError
	if errors.As(err, &bad) || errors.Is(err, tree.ErrExists) {
		return newError(KindBadRequest, err, "%s", what)
	}
	return sb.callError(ctx, callCtx, epoch, err, what)
}

func fileInfo(i protocol.FileInfo) FileInfo {
	mode := fs.FileMode(i.Mode & 0o777)
	if i.Mode&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if i.Mode&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if i.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return FileInfo{Name: i.Name, Type: i.Type, Size: i.Size, Mode: mode, ModTime: time.Unix(0, i.MtimeNs), Target: i.Target}
}
