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
	"strings"
	"time"
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

// Unpack writes the tree in r to dest, which must not exist, and returns
// the bytes of file content written.
func Unpack(dest string, r io.Reader) (int64, error) {
	if _, err := os.Lstat(dest); err == nil {
		return 0, fmt.Errorf("%s: %w", dest, ErrExists)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".quicksand-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp) // empty once renamed, or what a failure left
	n, err := unpackInto(tmp, r)
	if err != nil {
		return n, err
	}
	// A tree of one file is that file; anything else is the folder.
	root := tmp
	if p := filepath.Join(tmp, singleFileName); isFile(p) {
		root = p
	}
	return n, os.Rename(root, dest)
}

func isFile(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && !fi.IsDir()
}

func unpackInto(dir string, r io.Reader) (int64, error) {
	tr := tar.NewReader(r)
	var total int64
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTime // folders' times are set last: filling one changes it
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, &BadStreamError{"reading the tar stream: " + err.Error()}
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		mode := fs.FileMode(h.Mode) & 0o777
		if name == "." && h.Typeflag == tar.TypeDir {
			if err := os.Chmod(dir, mode); err != nil {
				return total, err
			}
			dirs = append(dirs, dirTime{dir, h.ModTime})
			continue
		}
		if name == "." || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) || filepath.IsAbs(name) {
			return total, &BadStreamError{fmt.Sprintf("tar entry %q leaves the destination", h.Name)}
		}
		target := filepath.Join(dir, name)
		if err := noLinkOnTheWay(dir, name); err != nil {
			return total, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return total, err
			}
			if err := os.Chmod(target, mode); err != nil {
				return total, err
			}
			dirs = append(dirs, dirTime{target, h.ModTime})
		case tar.TypeReg:
			n, err := writeFile(target, mode, tr)
			total += n
			if err != nil {
				return total, err
			}
			os.Chtimes(target, h.ModTime, h.ModTime)
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				return total, err
			}
		default:
			return total, &BadStreamError{fmt.Sprintf("tar entry %q: only files, folders and symlinks are taken", h.Name)}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime)
	}
	return total, nil
}

// noLinkOnTheWay refuses a name whose parent folders, inside dir, include
// a symlink an earlier entry made: writing through it would write outside
// dir.
func noLinkOnTheWay(dir, name string) error {
	p := dir
	parts := strings.Split(name, string(filepath.Separator))
	for _, part := range parts[:len(parts)-1] {
		p = filepath.Join(p, part)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return &BadStreamError{fmt.Sprintf("tar entry %q goes through the symlink %q", name, part)}
		}
	}
	return nil
}

// writeFile creates a new file (never following a symlink an earlier entry
// put there) with r's bytes.
func writeFile(path string, mode fs.FileMode, r io.Reader) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode) // the umask took bits off
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// unnamed is a file's info without its owner's names (tar.FileInfoNames).
// A tree carries no owners (the header's are cleared), and archive/tar
// would otherwise look the names up: through cgo's getpwuid_r in the C
// library, whose writes into Go memory valgrind reported as invalid in the
// C tests now and then.
type unnamed struct{ fs.FileInfo }

func (unnamed) Uname() (string, error) { return "", nil }
func (unnamed) Gname() (string, error) { return "", nil }
