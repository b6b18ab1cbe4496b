package tree

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Unpacking never follows a symlink, at any component of any name: the
// stream comes from the other side (a guest that may lie, for a download),
// and a symlink it made first (x -> /some/host/folder) would otherwise
// carry a later entry named x, or x/y, out of the destination. So every
// name is walked one component at a time from a descriptor of the
// temporary folder, each folder opened with O_NOFOLLOW, and the last
// component made or changed relative to its parent's descriptor with calls
// that do not follow it either. An entry whose path meets a symlink, or
// whose name is taken by an earlier entry of another type, fails the
// whole unpack.
//
// What is unpacked belongs to whoever unpacks it, with the permission bits
// alone: no owner, no setuid, setgid or sticky bit crosses over (a guest
// must not plant a setuid file on the host), and only files, folders and
// symlinks are taken (no hard links, devices or fifos).

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
	u := unpacker{root: -1}
	if u.root, err = unix.Open(tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
		return 0, &os.PathError{Op: "open", Path: tmp, Err: err}
	}
	defer unix.Close(u.root)
	if err := u.unpack(r); err != nil {
		return u.total, err
	}
	if err := u.finishFolders(); err != nil {
		return u.total, err
	}
	// A tree of one file is that file; anything else is the folder.
	root := tmp
	var st unix.Stat_t
	if unix.Fstatat(u.root, singleFileName, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		root = filepath.Join(tmp, singleFileName)
	}
	return u.total, renameNew(root, dest)
}

// renameNew renames from to to, which must not exist: one made while the
// tree was unpacked is not replaced.
func renameNew(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	switch err {
	case nil:
		return nil
	case unix.EEXIST:
		return fmt.Errorf("%s: %w", to, ErrExists)
	case unix.EINVAL, unix.ENOSYS:
		return os.Rename(from, to) // a file system without RENAME_NOREPLACE
	}
	return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
}

// unpacker unpacks one stream below the folder root.
type unpacker struct {
	root  int // descriptor of the temporary folder
	total int64
	// folders get their modes and times once everything is in them:
	// filling a folder changes its time, and a read-only one could not
	// be filled.
	folders map[string]folder
}

type folder struct {
	mode  uint32
	mtime time.Time
}

func (u *unpacker) unpack(r io.Reader) error {
	u.folders = map[string]folder{}
	end := &endWatch{r: r}
	tr := tar.NewReader(end)
	for {
		end.mark = end.n
		h, err := tr.Next()
		if err == io.EOF {
			if !end.sawTrailer() {
				// archive/tar takes a stream that stops between two
				// entries for a complete one: a packer that failed
				// midway (a folder it could not read) would pass for a
				// smaller tree.
				return &BadStreamError{"the tar stream ended before its end-of-archive marker: it was cut short"}
			}
			return nil
		}
		if err != nil {
			return &BadStreamError{"reading the tar stream: " + err.Error()}
		}
		name, err := entryName(h.Name)
		if err != nil {
			return err
		}
		if err := u.entry(h, name, tr); err != nil {
			return err
		}
	}
}

// entryName is h.Name cleaned, relative to the destination ("." for
// itself), or an error if it would leave the destination.
func entryName(raw string) (string, error) {
	name := path.Clean(raw)
	if name == ".." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
		return "", &BadStreamError{fmt.Sprintf("tar entry %q leaves the destination", raw)}
	}
	return name, nil
}

// permBits is a mode from the stream with the permission bits alone.
func permBits(h *tar.Header) uint32 { return uint32(h.Mode) & 0o777 }

func (u *unpacker) entry(h *tar.Header, name string, body io.Reader) error {
	if name == "." {
		if h.Typeflag != tar.TypeDir {
			return &BadStreamError{fmt.Sprintf("tar entry %q: the destination itself can only be a folder", h.Name)}
		}
		u.folders["."] = folder{permBits(h), h.ModTime}
		return nil
	}
	switch h.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink:
	default:
		return &BadStreamError{fmt.Sprintf("tar entry %q: only files, folders and symlinks are taken", h.Name)}
	}
	dir, base, err := u.openParent(name)
	if err != nil {
		return err
	}
	defer u.closeDir(dir)
	switch h.Typeflag {
	case tar.TypeDir:
		err = u.makeFolder(dir, base, name)
		if err == nil {
			u.folders[name] = folder{permBits(h), h.ModTime}
		}
	case tar.TypeReg:
		err = u.writeFile(dir, base, permBits(h), body)
		if err == nil {
			setTime(dir, base, h.ModTime)
		}
	case tar.TypeSymlink:
		err = unix.Symlinkat(h.Linkname, dir, base)
	}
	var bad *BadStreamError
	switch {
	case err == unix.EEXIST:
		return &BadStreamError{fmt.Sprintf("tar entry %q: an earlier entry took that name", h.Name)}
	case errors.As(err, &bad):
		return err
	case err != nil:
		var inner *os.PathError // from writing the file: its base name says less
		if errors.As(err, &inner) {
			err = inner.Err
		}
		return &os.PathError{Op: "unpacking", Path: name, Err: err}
	}
	return nil
}

// openParent opens the folder that holds name below the root, one
// component at a time without following a symlink, and makes the ones
// that are missing (owner-only: an entry for one may come later and say
// more). It returns that folder's descriptor (for closeDir) and name's
// last component.
func (u *unpacker) openParent(name string) (int, string, error) {
	parts := strings.Split(name, "/")
	dir := u.root
	for i, part := range parts[:len(parts)-1] {
		next, err := u.openFolder(dir, part, strings.Join(parts[:i+1], "/"), name)
		u.closeDir(dir)
		if err != nil {
			return -1, "", err
		}
		dir = next
	}
	return dir, parts[len(parts)-1], nil
}

// openFolder opens (making it if missing) the folder base in dir; sofar is
// its path below the root, for errors about entry name.
func (u *unpacker) openFolder(dir int, base, sofar, name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dir, base, flags, 0)
	if err == unix.ENOENT {
		if err = unix.Mkdirat(dir, base, 0o700); err == nil || err == unix.EEXIST {
			fd, err = unix.Openat(dir, base, flags, 0)
		}
	}
	switch err {
	case nil:
		return fd, nil
	case unix.ELOOP, unix.ENOTDIR:
		return -1, &BadStreamError{fmt.Sprintf("tar entry %q goes through %q, which is not a folder (a symlink or a file an earlier entry made)", name, sofar)}
	}
	return -1, &os.PathError{Op: "unpacking", Path: sofar, Err: err}
}

func (u *unpacker) closeDir(fd int) {
	if fd != u.root {
		unix.Close(fd)
	}
}

// makeFolder makes the folder base in dir, or takes the folder an earlier
// entry made there; anything else there is an error.
func (u *unpacker) makeFolder(dir int, base, name string) error {
	err := unix.Mkdirat(dir, base, 0o700)
	if err != unix.EEXIST {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &BadStreamError{fmt.Sprintf("tar entry %q: a folder where an earlier entry made a symlink or a file", name+"/")}
	}
	return nil
}

// writeFile creates the new file base in dir (never following a symlink
// an earlier entry put there) with body's bytes and mode.
func (u *unpacker) writeFile(dir int, base string, mode uint32, body io.Reader) error {
	fd, err := unix.Openat(dir, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	in := &streamReader{r: body}
	n, err := io.Copy(f, in)
	u.total += n
	if in.err != nil {
		err = &BadStreamError{"reading the tar stream: " + in.err.Error()}
	}
	if err == nil {
		err = f.Chmod(os.FileMode(mode)) // the umask took bits off
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// streamReader keeps the error of reading the stream, to tell it from an
// error writing the file.
type streamReader struct {
	r   io.Reader
	err error
}

func (s *streamReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// finishFolders gives each folder its mode and time, the deepest first so
// that a read-only folder is not closed before what is in it is done.
func (u *unpacker) finishFolders() error {
	names := make([]string, 0, len(u.folders))
	for name := range u.folders {
		names = append(names, name)
	}
	depth := func(name string) int {
		if name == "." {
			return 0
		}
		return strings.Count(name, "/") + 1
	}
	sort.Slice(names, func(i, j int) bool { return depth(names[i]) > depth(names[j]) })
	for _, name := range names {
		if err := u.finishFolder(name, u.folders[name]); err != nil {
			return err
		}
	}
	return nil
}

func (u *unpacker) finishFolder(name string, f folder) error {
	dir, base := u.root, "."
	if name != "." {
		var err error
		if dir, base, err = u.openParent(name); err != nil {
			return err
		}
		defer u.closeDir(dir)
	}
	fd, err := u.openFolder(dir, base, name, name+"/")
	if err != nil {
		return err
	}
	err = unix.Fchmod(fd, f.mode)
	unix.Close(fd)
	if err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	setTime(dir, base, f.mtime)
	return nil
}

// setTime sets the modification (and access) time of base in dir, not
// following it. A time that cannot be set is no reason to fail a copy.
func setTime(dir int, base string, t time.Time) {
	ts := unix.NsecToTimespec(t.UnixNano())
	_ = unix.UtimesNanoAt(dir, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// endWatch counts what a tar reader reads, to tell a stream that ends with
// tar's end-of-archive marker (two zero blocks after the last entry) from
// one that merely stops.
type endWatch struct {
	r     io.Reader
	n     int64 // bytes read
	zeros int64 // how many of the last bytes read are zero
	mark  int64 // n when the last entry's body had been read
}

func (w *endWatch) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	for _, b := range p[:n] {
		if b == 0 {
			w.zeros++
		} else {
			w.zeros = 0
		}
	}
	w.n += int64(n)
	return n, err
}

// sawTrailer says whether at least the two zero blocks of the marker came
// after the last entry's body (its padding to a block is zeros too).
func (w *endWatch) sawTrailer() bool { return min(w.zeros, w.n-w.mark) >= 2*512 }
