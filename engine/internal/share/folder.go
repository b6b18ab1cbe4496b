// Package share serves a host folder to a guest over 9P2000.L: the host
// side of a mount (Sandbox.Mount). The guest's kernel is the client; every
// message it sends is untrusted, so the folder is reached only through file
// descriptors opened one name at a time without following symlinks (a path
// is never resolved on the host), a read-only folder refuses every change
// here rather than trusting the guest's mount flags, and what one mount may
// hold (open files, message size, one request at a time) is bounded.
package share

import (
	"io"
	"sync/atomic"

	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// MaxFiles bounds the host file descriptors one folder holds for the guest:
// a guest that walks to files and never lets go must not exhaust the host
// process's.
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

// Close lets go of the folder. Sessions still serving it keep their files
// until they end.
func (f *Folder) Close() error { return unix.Close(f.root) }

// NewSession prepares to serve the folder on conn; Serve answers.
func (f *Folder) NewSession(conn io.ReadWriteCloser) *Session {
	return &Session{folder: f, conn: conn, fids: map[uint32]*file{}}
}

// attach is a new file for the folder itself.
func (f *Folder) attach() (*file, error) {
	root := &file{folder: f, fd: -1, open: -1}
	fd, err := root.dup(f.root)
	if err != nil {
		return nil, err
	}
	root.fd = fd
	return root, nil
}

// take counts one more descriptor against MaxFiles.
func (f *Folder) take() error {
	if f.files.Add(1) > MaxFiles {
		f.files.Add(-1)
		return unix.EMFILE
	}
	return nil
}

func (f *Folder) release() { f.files.Add(-1) }

// HeldFiles is how many host descriptors the guest's files hold now.
func (f *Folder) HeldFiles() int64 { return f.files.Load() }
