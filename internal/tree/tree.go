// Package tree packs a file or a folder with everything in it into a tar
// stream and unpacks one, for copying trees between the host and a guest
// (the agent on one side, the engine on the other): modes, symlinks as
// symlinks, empty folders and modification times included; devices, fifos
// and sockets left out. Unpack writes into a temporary folder beside the
// destination and renames it into place once complete: a copy that fails
// halfway leaves nothing under the destination's name.
package tree

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// singleFileName is the tar name of a tree that is a single file.
const singleFileName = ".quicksand-single-file"

// ErrExists is Unpack's error for a destination that exists already.
var ErrExists = errors.New("already exists")

// BadStreamError is a tar stream Unpack refuses: malformed, or an entry
// that would leave the destination or is not a file, folder or symlink.
type BadStreamError struct{ Msg string }

func (e *BadStreamError) Error() string { return e.Msg }

// Pack writes root (a folder and everything in it, or one file) to w as a
// tar stream.
func Pack(w io.Writer, root string) error {
	fi, err := os.Lstat(root)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if !fi.IsDir() {
		err = add(tw, root, singleFileName, fi)
	} else {
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			return add(tw, p, rel, info)
		})
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

func add(tw *tar.Writer, path, name string, fi fs.FileInfo) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() && link == "" {
		return nil // devices, sockets, fifos: not part of a tree to copy
	}
	h, err := tar.FileInfoHeader(unnamed{fi}, link)
	if err != nil {
		return err
	}
	h.Name = filepath.ToSlash(name)
	if fi.IsDir() && name != "." {
		h.Name += "/"
	}
	h.Uname, h.Gname, h.Uid, h.Gid = "", "", 0, 0
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(tw, f, fi.Size())
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s shrank while it was read", path)
	}
	return err
}

// unnamed is a file's info without its owner's names (tar.FileInfoNames).
// A tree carries no owners (the header's are cleared), and archive/tar
// would otherwise look the names up: through cgo's getpwuid_r in the C
// library, whose writes into Go memory valgrind reported as invalid in the
// C tests now and then.
type unnamed struct{ fs.FileInfo }

func (unnamed) Uname() (string, error) { return "", nil }
func (unnamed) Gname() (string, error) { return "", nil }
