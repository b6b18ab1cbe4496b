package share

import (
	"strconv"
	"sync"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// file is one guest fid: an O_PATH descriptor of a file or folder inside the
// shared folder, and once opened, a second descriptor to read or write it.
type file struct {
	p9.DefaultWalkGetAttr
	folder *Folder
	fd     int // O_PATH|O_NOFOLLOW: never follows a symlink, cannot read or write

	mu      sync.Mutex
	open    int         // opened descriptor, -1 until Open or Create
	entries []p9.Dirent // a folder's listing, read at offset 0
}

// 9P2000.L open flags the host honours besides the access mode (the wire
// values are Linux's on every architecture the guest kernel runs).
const p9Truncate = 0o1000

// procPath names the descriptor fd through /proc: opening it reaches the
// very file fd refers to, with no path lookup that could be redirected.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// newFile wraps an O_PATH descriptor already counted against the budget.
func (f *file) newFile(fd int) *file { return &file{folder: f.folder, fd: fd, open: -1} }

// openBeneath opens one name in folder dir as O_PATH without following a
// symlink, counted against the folder's budget.
func (f *file) openBeneath(dir int, name string) (int, error) {
	if err := f.folder.take(); err != nil {
		return -1, err
	}
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		f.folder.release()
		return -1, err
	}
	return fd, nil
}

func (f *file) closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
		f.folder.release()
	}
}

func (f *file) writable() error {
	if f.folder.readOnly {
		return linux.EROFS
	}
	return nil
}

func stat(fd int) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(fd, &st)
	return st, err
}

func qidOf(st *unix.Stat_t) p9.QID {
	return p9.QID{Type: p9.FileMode(st.Mode).QIDType(), Path: st.Ino}
}

func qidAt(fd int) (p9.QID, error) {
	st, err := stat(fd)
	return qidOf(&st), err
}

// Walk steps one name at a time from f; a name that is a symlink ends up
// as the symlink itself, and the next step from it fails.
func (f *file) Walk(names []string) ([]p9.QID, p9.File, error) {
	if len(names) == 0 {
		if err := f.folder.take(); err != nil {
			return nil, nil, err
		}
		fd, err := unix.FcntlInt(uintptr(f.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			f.folder.release()
			return nil, nil, err
		}
		return nil, f.newFile(fd), nil
	}
	qids := make([]p9.QID, 0, len(names))
	cur := -1
	for _, name := range names {
		dir := f.fd
		if cur >= 0 {
			dir = cur
		}
		next, err := f.openBeneath(dir, name)
		f.closeFD(cur)
		if err != nil {
			return nil, nil, err
		}
		cur = next
		qid, err := qidAt(cur)
		if err != nil {
			f.closeFD(cur)
			return nil, nil, err
		}
		qids = append(qids, qid)
	}
	return qids, f.newFile(cur), nil
}

func (f *file) GetAttr(req p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	st, err := stat(f.fd)
	if err != nil {
		return p9.QID{}, p9.AttrMask{}, p9.Attr{}, err
	}
	attr := p9.Attr{
		Mode:             p9.FileMode(st.Mode),
		UID:              p9.UID(st.Uid),
		GID:              p9.GID(st.Gid),
		NLink:            p9.NLink(st.Nlink),
		RDev:             p9.Dev(st.Rdev),
		Size:             uint64(st.Size),
		BlockSize:        uint64(st.Blksize),
		Blocks:           uint64(st.Blocks),
		ATimeSeconds:     uint64(st.Atim.Sec),
		ATimeNanoSeconds: uint64(st.Atim.Nsec),
		MTimeSeconds:     uint64(st.Mtim.Sec),
		MTimeNanoSeconds: uint64(st.Mtim.Nsec),
		CTimeSeconds:     uint64(st.Ctim.Sec),
		CTimeNanoSeconds: uint64(st.Ctim.Nsec),
	}
	valid := p9.AttrMask{Mode: true, UID: true, GID: true, NLink: true, RDev: true, Size: true,
		Blocks: true, ATime: true, MTime: true, CTime: true}
	return qidOf(&st), valid, attr, nil
}

// SetAttr changes mode, size and times. An owner change the host user may
// not make is ignored (as QEMU's security_model=none does): the files
// belong to the host user whatever the guest asks.
func (f *file) SetAttr(valid p9.SetAttrMask, attr p9.SetAttr) error {
	if err := f.writable(); err != nil {
		return err
	}
	st, err := stat(f.fd)
	if err != nil {
		return err
	}
	symlink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if valid.Permissions && !symlink {
		if err := unix.Fchmodat(unix.AT_FDCWD, procPath(f.fd), uint32(attr.Permissions)&0o7777, 0); err != nil {
			return err
		}
	}
	if valid.UID || valid.GID {
		uid, gid := -1, -1
		if valid.UID {
			uid = int(attr.UID)
		}
		if valid.GID {
			gid = int(attr.GID)
		}
		err := unix.Fchownat(f.fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && err != unix.EPERM {
			return err
		}
	}
	if valid.Size {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return linux.EINVAL
		}
		if err := unix.Truncate(procPath(f.fd), int64(attr.Size)); err != nil {
			return err
		}
	}
	if (valid.ATime || valid.MTime) && !symlink {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if valid.ATime {
			ts[0] = timeSpec(valid.ATimeNotSystemTime, attr.ATimeSeconds, attr.ATimeNanoSeconds)
		}
		if valid.MTime {
			ts[1] = timeSpec(valid.MTimeNotSystemTime, attr.MTimeSeconds, attr.MTimeNanoSeconds)
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, procPath(f.fd), ts, 0); err != nil {
			return err
		}
	}
	return nil
}

func timeSpec(given bool, sec, nsec uint64) unix.Timespec {
	if !given {
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	}
	return unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}
}

// Open opens a regular file or a folder; anything else (a device, a pipe, a
// socket the host put there) is refused: the guest reaches file contents
// only.
func (f *file) Open(mode p9.OpenFlags) (p9.QID, uint32, error) {
	st, err := stat(f.fd)
	if err != nil {
		return p9.QID{}, 0, err
	}
	flags := unix.O_CLOEXEC | int(mode.Mode())
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		flags |= unix.O_DIRECTORY
	case unix.S_IFREG:
		if mode&p9Truncate != 0 {
			flags |= unix.O_TRUNC
		}
	default:
		return p9.QID{}, 0, linux.EPERM
	}
	if mode.Mode() != p9.ReadOnly || flags&unix.O_TRUNC != 0 {
		if err := f.writable(); err != nil {
			return p9.QID{}, 0, err
		}
	}
	if err := f.folder.take(); err != nil {
		return p9.QID{}, 0, err
	}
	fd, err := unix.Open(procPath(f.fd), flags, 0)
	if err != nil {
		f.folder.release()
		return p9.QID{}, 0, err
	}
	f.mu.Lock()
	f.closeFD(f.open)
	f.open = fd
	f.mu.Unlock()
	return qidOf(&st), 0, nil
}

func (f *file) opened() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open < 0 {
		return -1, linux.EBADF
	}
	return f.open, nil
}

func (f *file) ReadAt(p []byte, offset int64) (int, error) {
	fd, err := f.opened()
	if err != nil {
		return 0, err
	}
	n, err := unix.Pread(fd, p, offset)
	if n < 0 {
		n = 0
	}
	return n, err
}

func (f *file) WriteAt(p []byte, offset int64) (int, error) {
	if err := f.writable(); err != nil {
		return 0, err
	}
	fd, err := f.opened()
	if err != nil {
		return 0, err
	}
	n, err := unix.Pwrite(fd, p, offset)
	if n < 0 {
		n = 0
	}
	return n, err
}

func (f *file) FSync() error {
	fd, err := f.opened()
	if err != nil {
		return nil // nothing written through this fid
	}
	return unix.Fsync(fd)
}

func (f *file) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeFD(f.open)
	f.open = -1
	f.closeFD(f.fd)
	f.fd = -1
	return nil
}

func (f *file) StatFS() (p9.FSStat, error) {
	var s unix.Statfs_t
	if err := unix.Fstatfs(f.fd, &s); err != nil {
		return p9.FSStat{}, err
	}
	return p9.FSStat{
		Type:            0x01021997, // V9FS_MAGIC
		BlockSize:       uint32(s.Bsize),
		Blocks:          s.Blocks,
		BlocksFree:      s.Bfree,
		BlocksAvailable: s.Bavail,
		Files:           s.Files,
		FilesFree:       s.Ffree,
		NameLength:      uint32(s.Namelen),
	}, nil
}

// Create makes and opens a new regular file; it never opens an existing one
// (O_EXCL) nor follows a symlink put in its place.
func (f *file) Create(name string, mode p9.OpenFlags, perm p9.FileMode, _ p9.UID, _ p9.GID) (p9.File, p9.QID, uint32, error) {
	if err := f.writable(); err != nil {
		return nil, p9.QID{}, 0, err
	}
	if err := f.folder.take(); err != nil {
		return nil, p9.QID{}, 0, err
	}
	flags := unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC | int(mode.Mode())
	fd, err := unix.Openat(f.fd, name, flags, uint32(perm.Permissions()))
	if err != nil {
		f.folder.release()
		return nil, p9.QID{}, 0, err
	}
	// The guest applied its umask already; the host's must not apply again.
	_ = unix.Fchmod(fd, uint32(perm.Permissions()))
	if err := f.folder.take(); err != nil {
		f.closeFD(fd)
		return nil, p9.QID{}, 0, err
	}
	pathFD, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		f.folder.release()
		f.closeFD(fd)
		return nil, p9.QID{}, 0, err
	}
	nf := f.newFile(pathFD)
	nf.open = fd
	qid, err := qidAt(fd)
	if err != nil {
		nf.Close()
		return nil, p9.QID{}, 0, err
	}
	return nf, qid, 0, nil
}

// made returns the QID of name, just made in f, without following it.
func (f *file) made(name string) (p9.QID, error) {
	fd, err := f.openBeneath(f.fd, name)
	if err != nil {
		return p9.QID{}, err
	}
	defer f.closeFD(fd)
	return qidAt(fd)
}

func (f *file) Mkdir(name string, perm p9.FileMode, _ p9.UID, _ p9.GID) (p9.QID, error) {
	if err := f.writable(); err != nil {
		return p9.QID{}, err
	}
	if err := unix.Mkdirat(f.fd, name, uint32(perm.Permissions())); err != nil {
		return p9.QID{}, err
	}
	fd, err := f.openBeneath(f.fd, name)
	if err != nil {
		return p9.QID{}, err
	}
	defer f.closeFD(fd)
	st, err := stat(fd)
	if err != nil {
		return p9.QID{}, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		_ = unix.Fchmodat(unix.AT_FDCWD, procPath(fd), uint32(perm.Permissions()), 0)
	}
	return qidOf(&st), nil
}

// Symlink stores the link as written: it is never followed on the host, and
// in the guest it resolves within the guest's own file system.
func (f *file) Symlink(target, name string, _ p9.UID, _ p9.GID) (p9.QID, error) {
	if err := f.writable(); err != nil {
		return p9.QID{}, err
	}
	if err := unix.Symlinkat(target, f.fd, name); err != nil {
		return p9.QID{}, err
	}
	return f.made(name)
}

// Link makes a hard link to a file of the same shared folder (the guest can
// name no other).
func (f *file) Link(target p9.File, name string) error {
	if err := f.writable(); err != nil {
		return err
	}
	t, ok := target.(*file)
	if !ok || t.folder != f.folder {
		return linux.EXDEV
	}
	return unix.Linkat(unix.AT_FDCWD, procPath(t.fd), f.fd, name, unix.AT_SYMLINK_FOLLOW)
}

// Mknod makes pipes, sockets and empty files; never a device node.
func (f *file) Mknod(name string, mode p9.FileMode, _, _ uint32, _ p9.UID, _ p9.GID) (p9.QID, error) {
	if err := f.writable(); err != nil {
		return p9.QID{}, err
	}
	switch uint32(mode) & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFREG:
	default:
		return p9.QID{}, linux.EPERM
	}
	if err := unix.Mknodat(f.fd, name, uint32(mode), 0); err != nil {
		return p9.QID{}, err
	}
	return f.made(name)
}

// Rename is 9P's older form; Linux's client uses RenameAt.
func (f *file) Rename(p9.File, string) error { return linux.EOPNOTSUPP }

func (f *file) RenameAt(oldName string, newDir p9.File, newName string) error {
	if err := f.writable(); err != nil {
		return err
	}
	to, ok := newDir.(*file)
	if !ok || to.folder != f.folder {
		return linux.EXDEV
	}
	return unix.Renameat(f.fd, oldName, to.fd, newName)
}

func (f *file) Renamed(p9.File, string) {}

func (f *file) UnlinkAt(name string, flags uint32) error {
	if err := f.writable(); err != nil {
		return err
	}
	return unix.Unlinkat(f.fd, name, int(flags)&unix.AT_REMOVEDIR)
}

func (f *file) Readlink() (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(f.fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Extended attributes are not shared.
func (f *file) SetXattr(string, []byte, p9.XattrFlags) error { return linux.EOPNOTSUPP }
func (f *file) GetXattr(string) ([]byte, error)              { return nil, linux.EOPNOTSUPP }
func (f *file) ListXattrs() ([]string, error)                { return nil, nil }
func (f *file) RemoveXattr(string) error                     { return linux.EOPNOTSUPP }

// Lock grants every lock: locks are not shared with the host (QEMU's 9p
// does the same).
func (f *file) Lock(int, p9.LockType, p9.LockFlags, uint64, uint64, string) (p9.LockStatus, error) {
	return p9.LockStatusOK, nil
}
