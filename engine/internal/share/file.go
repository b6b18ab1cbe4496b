package share

import (
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// file is one fid: an O_PATH descriptor of a file or folder inside the
// shared folder (never following a symlink: a symlink is the link itself),
// and once opened, a second descriptor to read or write it.
type file struct {
	folder *Folder
	fd     int

	mu      sync.Mutex
	open    int      // opened descriptor, -1 until opened
	entries []dirent // a folder's listing, read at offset 0
}

// Linux open flags the host honours besides the access mode (9P2000.L's
// wire values are Linux's on every architecture the guest runs).
const openTruncate = 0o1000

// setattr's valid bits (P9_ATTR_*).
const (
	attrMode    = 0x1
	attrUID     = 0x2 // never applied: see setAttr
	attrGID     = 0x4 // never applied: see setAttr
	attrSize    = 0x8
	attrATime   = 0x10
	attrMTime   = 0x20
	attrATimeAt = 0x80  // the given atime, not now
	attrMTimeAt = 0x100 // the given mtime, not now
)

// setAttr is a Tsetattr's values.
type setAttr struct {
	valid, mode  uint32
	size         uint64
	atime, mtime unix.Timespec
}

// procPath names the descriptor fd through /proc: opening it reaches the
// very file fd refers to, with no path lookup that could be redirected.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

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

// dup copies fd, counted against the budget.
func (f *file) dup(fd int) (int, error) {
	if err := f.folder.take(); err != nil {
		return -1, err
	}
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		f.folder.release()
		return -1, err
	}
	return nfd, nil
}

func (f *file) closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
		f.folder.release()
	}
}

func (f *file) writable() error {
	if f.folder.readOnly {
		return unix.EROFS
	}
	return nil
}

func fstat(fd int) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(fd, &st)
	return st, err
}

func qidOf(st *unix.Stat_t) qid {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return qid{qidDir, st.Ino}
	case unix.S_IFLNK:
		return qid{qidSymlink, st.Ino}
	}
	return qid{qidFile, st.Ino}
}

func qidAt(fd int) (qid, error) {
	st, err := fstat(fd)
	return qidOf(&st), err
}

// walk steps one name at a time from f. It returns the qids of the names
// it got through and, when it got through all, the new file; a name that
// is a symlink ends up as the symlink itself, and a step from it fails.
func (f *file) walk(names []string) ([]qid, *file, error) {
	if len(names) == 0 {
		fd, err := f.dup(f.fd)
		if err != nil {
			return nil, nil, err
		}
		return nil, f.newFile(fd), nil
	}
	var qids []qid
	cur := -1
	for _, name := range names {
		dir := f.fd
		if cur >= 0 {
			dir = cur
		}
		next, err := f.openBeneath(dir, name)
		f.closeFD(cur)
		cur = -1
		if err != nil {
			return qids, nil, err
		}
		cur = next
		q, err := qidAt(cur)
		if err != nil {
			f.closeFD(cur)
			return qids, nil, err
		}
		qids = append(qids, q)
	}
	return qids, f.newFile(cur), nil
}

// setAttr changes mode, size and times. Setuid and setgid never reach the
// host (see guestMode), and an owner change is never applied: see below.
func (f *file) setAttr(a setAttr) error {
	if err := f.writable(); err != nil {
		return err
	}
	st, err := fstat(f.fd)
	if err != nil {
		return err
	}
	symlink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if a.valid&attrMode != 0 && !symlink {
		if err := chmodExact(f.fd, a.mode); err != nil {
			return err
		}
	}
	// attrUID and attrGID are ignored, and answered with success. Files in
	// a share belong to the host process's user whatever the guest asks:
	// applied, a chown by a caller that runs as root (as CI and containers
	// do) would let guest root give a file to any host user, root
	// included. Refusing with EPERM would break the guest's root doing
	// what root does (cp -a, tar x, install -o, dpkg fail on it); QEMU's
	// security_model=none likewise reports no failure, but unlike it we
	// do not even try. The guest sees the real owner on its next stat.
	if a.valid&attrSize != 0 {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return unix.EINVAL
		}
		if err := dropSetID(f.fd); err != nil {
			return err
		}
		if err := unix.Truncate(procPath(f.fd), int64(a.size)); err != nil {
			return err
		}
	}
	if a.valid&(attrATime|attrMTime) != 0 && !symlink {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if a.valid&attrATime != 0 {
			ts[0] = timeOr(a.valid&attrATimeAt != 0, a.atime)
		}
		if a.valid&attrMTime != 0 {
			ts[1] = timeOr(a.valid&attrMTimeAt != 0, a.mtime)
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, procPath(f.fd), ts, 0); err != nil {
			return err
		}
	}
	return nil
}

func timeOr(given bool, t unix.Timespec) unix.Timespec {
	if !given {
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	}
	return t
}

// openFile opens a regular file or a folder; anything else (a device, a
// pipe, a socket the host put there) is refused: the guest reaches file
// contents only.
func (f *file) openFile(flags uint32) (qid, error) {
	st, err := fstat(f.fd)
	if err != nil {
		return qid{}, err
	}
	access := int(flags & unix.O_ACCMODE)
	osFlags := unix.O_CLOEXEC | access
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if access != unix.O_RDONLY {
			return qid{}, unix.EISDIR
		}
		osFlags |= unix.O_DIRECTORY
	case unix.S_IFREG:
		if flags&openTruncate != 0 {
			osFlags |= unix.O_TRUNC
		}
	default:
		return qid{}, unix.EPERM
	}
	if access != unix.O_RDONLY || osFlags&unix.O_TRUNC != 0 {
		if err := f.writable(); err != nil {
			return qid{}, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			if err := dropSetID(f.fd); err != nil {
				return qid{}, err
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open >= 0 {
		return qid{}, unix.EBADF // opened already
	}
	if err := f.folder.take(); err != nil {
		return qid{}, err
	}
	fd, err := unix.Open(procPath(f.fd), osFlags, 0)
	if err != nil {
		f.folder.release()
		return qid{}, err
	}
	f.open = fd
	return qidOf(&st), nil
}

func (f *file) opened() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open < 0 {
		return -1, unix.EBADF
	}
	return f.open, nil
}

func (f *file) readAt(p []byte, off int64) (int, error) {
	fd, err := f.opened()
	if err != nil {
		return 0, err
	}
	n, err := unix.Pread(fd, p, off)
	return max(n, 0), err
}

func (f *file) writeAt(p []byte, off int64) (int, error) {
	if err := f.writable(); err != nil {
		return 0, err
	}
	fd, err := f.opened()
	if err != nil {
		return 0, err
	}
	n, err := unix.Pwrite(fd, p, off)
	return max(n, 0), err
}

func (f *file) fsync() error {
	if fd, err := f.opened(); err == nil {
		return unix.Fsync(fd)
	}
	return nil // nothing written through this fid
}

func (f *file) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeFD(f.open)
	f.closeFD(f.fd)
	f.open, f.fd = -1, -1
}

// create makes and opens a new regular file; it never opens an existing one
// (O_EXCL) nor follows a symlink put in its place. The guest applied its
// umask already: the host's must not apply again. What the guest makes
// belongs to the host process's user (Tlcreate's gid is not used); its
// group is the process's, or the folder's when the host made that folder
// setgid (Linux's rule, the host's choice).
func (f *file) create(name string, flags, mode uint32) (*file, qid, error) {
	if err := f.writable(); err != nil {
		return nil, qid{}, err
	}
	if err := f.folder.take(); err != nil {
		return nil, qid{}, err
	}
	osFlags := unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC | int(flags&unix.O_ACCMODE)
	// A new file gets no setuid or setgid from Linux (only a new folder
	// does, below a setgid one): guestMode is enough, and the fchmod only
	// takes the host's umask back.
	fd, err := unix.Openat(f.fd, name, osFlags, guestMode(mode))
	if err != nil {
		f.folder.release()
		return nil, qid{}, err
	}
	_ = unix.Fchmod(fd, guestMode(mode))
	pathFD, err := f.dup(fd)
	if err != nil {
		f.closeFD(fd)
		return nil, qid{}, err
	}
	nf := f.newFile(pathFD)
	nf.open = fd
	q, err := qidAt(fd)
	if err != nil {
		nf.close()
		return nil, qid{}, err
	}
	return nf, q, nil
}

// made finishes name, just made in f as a typ (a folder, fifo, socket,
// file or symlink) with the guest's mode: it sets that mode exactly (the
// host's umask applied on making it, and a folder made in a setgid folder
// got setgid from Linux; a symlink has no mode of its own) and returns its
// qid, never following it. Should the mode not take, the new name is
// removed rather than left with a bit it must not have. A name that is no
// longer what was made (the host replaced it in between) is left as it is.
func (f *file) made(name string, typ, mode uint32) (qid, error) {
	fd, err := f.openBeneath(f.fd, name)
	if err != nil {
		return qid{}, err
	}
	defer f.closeFD(fd)
	st, err := fstat(fd)
	if err != nil {
		return qid{}, err
	}
	if st.Mode&unix.S_IFMT == typ && typ != unix.S_IFLNK {
		if err := chmodExact(fd, mode); err != nil {
			flags := 0
			if typ == unix.S_IFDIR {
				flags = unix.AT_REMOVEDIR
			}
			unix.Unlinkat(f.fd, name, flags)
			return qid{}, err
		}
	}
	return qidOf(&st), nil
}

func (f *file) mkdir(name string, mode uint32) (qid, error) {
	if err := f.writable(); err != nil {
		return qid{}, err
	}
	if err := unix.Mkdirat(f.fd, name, guestMode(mode)); err != nil {
		return qid{}, err
	}
	return f.made(name, unix.S_IFDIR, mode)
}

// symlink stores the link as written: it is never followed on the host, and
// in the guest it resolves within the guest's own file system.
func (f *file) symlink(target, name string) (qid, error) {
	if err := f.writable(); err != nil {
		return qid{}, err
	}
	if err := unix.Symlinkat(target, f.fd, name); err != nil {
		return qid{}, err
	}
	return f.made(name, unix.S_IFLNK, 0)
}

// link makes a hard link to a file of the same shared folder (the guest can
// name no other: a fid is only ever reached by walking down from the folder,
// and a fid of a symlink is the symlink itself, so a link to it is one more
// link to the symlink, never to what it points to).
func (f *file) link(target *file, name string) error {
	if err := f.writable(); err != nil {
		return err
	}
	if target.folder != f.folder {
		return unix.EXDEV
	}
	return unix.Linkat(unix.AT_FDCWD, procPath(target.fd), f.fd, name, unix.AT_SYMLINK_FOLLOW)
}

// mknod makes pipes, sockets and empty files; never a device node: one the
// guest planted would be the host's device, open to whoever its mode lets
// in (a /dev/mem or a disk, owned by root when the caller is).
func (f *file) mknod(name string, mode uint32) (qid, error) {
	if err := f.writable(); err != nil {
		return qid{}, err
	}
	typ := mode & unix.S_IFMT
	switch typ {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFREG:
	default:
		return qid{}, unix.EPERM
	}
	if err := unix.Mknodat(f.fd, name, typ|guestMode(mode), 0); err != nil {
		return qid{}, err
	}
	return f.made(name, typ, mode)
}

func (f *file) renameAt(oldName string, to *file, newName string) error {
	if err := f.writable(); err != nil {
		return err
	}
	if to.folder != f.folder {
		return unix.EXDEV
	}
	return unix.Renameat(f.fd, oldName, to.fd, newName)
}

func (f *file) unlinkAt(name string, flags uint32) error {
	if err := f.writable(); err != nil {
		return err
	}
	return unix.Unlinkat(f.fd, name, int(flags)&unix.AT_REMOVEDIR)
}

func (f *file) readlink() (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(f.fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
