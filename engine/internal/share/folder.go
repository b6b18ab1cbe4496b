// Package share serves a host folder to a guest over 9P2000.L: the host
// side of a mount (Sandbox.Mount). The guest's kernel is the client; every
// message it sends is untrusted, so the folder is reached only through file
// descriptors opened one name at a time without following symlinks (a path
// is never resolved on the host), a read-only folder refuses every change
// here rather than trusting the guest's mount flags, and what one mount may
// hold (open files, requests in flight, message size) is bounded.
package share

import (
	"io"
	"sync/atomic"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"

	"github.com/pkg/errors"
)

// MaxFiles bounds the host file descriptors one mount holds: a guest that
// walks to files and never lets go must not exhaust the host process's.
const MaxFiles = 16384

// Folder is one shared host folder.
type Folder struct {
	root     int // O_PATH descriptor of the folder
	readOnly bool
	files    atomic.Int64 // descriptors held by the guest's files
}

// Open opens the host folder at path (resolved by the caller: symlinks in
// path itself are the host user's choice) for sharing.
func Open(path string, readOnly bool) (*Folder, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errors.Wrapf(err, "opening %s", path)
	}
	return &Folder{root: fd, readOnly: readOnly}, nil
}

// Close lets go of the folder. Files the guest still holds stay valid until
// their connection ends.
func (f *Folder) Close() error { return unix.Close(f.root) }

// Serve answers the guest's 9P requests on conn until it closes or fails.
// Many connections may be served at once.
func (f *Folder) Serve(conn io.ReadWriteCloser) error {
	w := newWindow(conn, MaxMessage, maxInFlight)
	return p9.NewServer(f).Handle(w, w)
}

// Attach implements p9.Attacher: every attach starts at the folder itself.
func (f *Folder) Attach() (p9.File, error) {
	if err := f.take(); err != nil {
		return nil, err
	}
	fd, err := unix.FcntlInt(uintptr(f.root), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		f.release()
		return nil, err
	}
	return &file{folder: f, fd: fd, open: -1}, nil
}

// take counts one more descriptor against MaxFiles.
func (f *Folder) take() error {
	if f.files.Add(1) > MaxFiles {
		f.files.Add(-1)
		return linux.EMFILE
	}
	return nil
}

func (f *Folder) release() { f.files.Add(-1) }

// HeldFiles is how many host descriptors the guest's files hold now.
func (f *Folder) HeldFiles() int64 { return f.files.Load() }
