package share

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// MaxMessage is the largest 9P message a mount takes (the guest mounts with
// this msize): a larger one ends the session.
const MaxMessage = protocol.MountMessageSize

// maxWalk is the most names one Twalk may hold (9P's MAXWELEM).
const maxWalk = 16

// Session serves the folder on one connection: one request at a time, in
// order, each answered before the next is read. Linux's client mostly waits
// for each answer anyway, one goroutine holds no lock with another, and a
// session holds at most one message. A message that breaks the protocol
// (too large, too short for its fields, an unknown fid where one must
// exist) is answered with an error, or ends the session when its framing
// cannot be trusted.
type Session struct {
	folder *Folder
	conn   io.ReadWriteCloser
	fids   map[uint32]*file
	msize  uint32
	once   sync.Once
}

// Serve answers until the connection ends or fails, or Close; then every
// file the guest held is closed.
func (s *Session) Serve() error {
	defer s.Close()
	defer func() {
		for id, f := range s.fids {
			f.close()
			delete(s.fids, id)
		}
	}()
	s.msize = MaxMessage
	r := bufio.NewReaderSize(s.conn, 64<<10)
	var hdr [7]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil
		}
		size := binary.LittleEndian.Uint32(hdr[:])
		if size < 7 || size > s.msize {
			return errors.New("a 9P message of a size out of bounds")
		}
		body := make([]byte, size-7)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil
		}
		typ, tag := hdr[4], binary.LittleEndian.Uint16(hdr[5:])
		answer := s.handle(typ, tag, &decoder{b: body})
		if _, err := s.conn.Write(answer); err != nil {
			return nil
		}
	}
}

// Close ends the session's connection.
func (s *Session) Close() error {
	var err error
	s.once.Do(func() { err = s.conn.Close() })
	return err
}

// 9P2000.L message types (T: request; the answer is T+1).
const (
	rlerror    = 7
	tstatfs    = 8
	tlopen     = 12
	tlcreate   = 14
	tsymlink   = 16
	tmknod     = 18
	treadlink  = 22
	tgetattr   = 24
	tsetattr   = 26
	txattrwalk = 30
	treaddir   = 40
	tfsync     = 50
	tlock      = 52
	tgetlock   = 54
	tlink      = 70
	tmkdir     = 72
	trenameat  = 74
	tunlinkat  = 76
	tversion   = 100
	tattach    = 104
	tflush     = 108
	twalk      = 110
	tread      = 116
	twrite     = 118
	tclunk     = 120
)

// errMsg answers with an error number.
func errMsg(tag uint16, err error) []byte {
	errno := unix.EIO
	var e unix.Errno
	if errors.As(err, &e) {
		errno = e
	} else if errors.Is(err, errShort) {
		errno = unix.EINVAL
	}
	m := newEncoder(rlerror, tag, 4)
	m.u32(uint32(errno))
	return m.finish()
}

// handle answers one request.
func (s *Session) handle(typ uint8, tag uint16, d *decoder) []byte {
	m, err := s.dispatch(typ, tag, d)
	if err == nil && d.err != nil {
		err = d.err
	}
	if err != nil {
		return errMsg(tag, err)
	}
	return m.finish()
}

// fid finds a fid the request names.
func (s *Session) fid(d *decoder) (*file, error) {
	f, _, err := s.fidAndID(d)
	return f, err
}

func (s *Session) fidAndID(d *decoder) (*file, uint32, error) {
	id := d.u32()
	if d.err != nil {
		return nil, id, d.err
	}
	f := s.fids[id]
	if f == nil {
		return nil, id, unix.EBADF
	}
	return f, id, nil
}

// newFid checks that a fid the request would create is free.
func (s *Session) newFid(id uint32) error {
	if _, taken := s.fids[id]; taken {
		return unix.EBADF
	}
	return nil
}

// checkName accepts one path element: not empty, ".", "..", nor with a
// slash or a NUL.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return unix.EINVAL
	}
	return nil
}

func (s *Session) dispatch(typ uint8, tag uint16, d *decoder) (*encoder, error) {
	reply := func(capacity int) *encoder { return newEncoder(typ+1, tag, capacity) }
	switch typ {
	case tversion:
		msize, version := d.u32(), d.str()
		if d.err != nil {
			return nil, d.err
		}
		// A new session: what the old one held goes.
		for id, f := range s.fids {
			f.close()
			delete(s.fids, id)
		}
		m := reply(32)
		s.msize = min(max(msize, 4096), MaxMessage)
		m.u32(s.msize)
		// 9P2000.L and its extensions (9P2000.L.Google.N) get 9P2000.L.
		if strings.HasPrefix(version, "9P2000.L") {
			version = "9P2000.L"
		} else {
			version = "unknown"
		}
		m.str(version)
		return m, nil

	case tattach:
		id, afid := d.u32(), d.u32()
		d.str() // uname: access=any, the host's user does everything
		d.str() // aname: there is one tree
		d.u32() // n_uname
		if d.err != nil {
			return nil, d.err
		}
		if afid != ^uint32(0) {
			return nil, unix.EINVAL // no authentication
		}
		if err := s.newFid(id); err != nil {
			return nil, err
		}
		root, err := s.folder.attach()
		if err != nil {
			return nil, err
		}
		q, err := qidAt(root.fd)
		if err != nil {
			root.close()
			return nil, err
		}
		s.fids[id] = root
		m := reply(13)
		m.qid(q)
		return m, nil

	case tflush:
		d.u16() // requests are answered in order: the one named is done
		return reply(0), nil

	case twalk:
		f, id, err := s.fidAndID(d)
		newID := d.u32()
		n := int(d.u16())
		if err != nil {
			return nil, err
		}
		if n > maxWalk {
			return nil, unix.EINVAL
		}
		names := make([]string, n)
		for i := range names {
			names[i] = d.str()
			if err := checkName(names[i]); err != nil && d.err == nil {
				return nil, err
			}
		}
		if d.err != nil {
			return nil, d.err
		}
		if newID != id {
			if err := s.newFid(newID); err != nil {
				return nil, err
			}
		}
		qids, nf, err := f.walk(names)
		if err != nil && len(qids) == 0 {
			return nil, err
		}
		m := reply(2 + 13*len(qids))
		m.u16(uint16(len(qids)))
		for _, q := range qids {
			m.qid(q)
		}
		if nf != nil { // the whole walk: newfid names where it ended
			if old := s.fids[newID]; old != nil {
				old.close()
			}
			s.fids[newID] = nf
		}
		return m, nil

	case tclunk:
		id := d.u32()
		f := s.fids[id]
		if f == nil {
			return nil, unix.EBADF
		}
		f.close()
		delete(s.fids, id)
		return reply(0), nil

	case tlopen:
		f, err := s.fid(d)
		flags := d.u32()
		if err != nil {
			return nil, err
		}
		q, err := f.openFile(flags)
		if err != nil {
			return nil, err
		}
		m := reply(17)
		m.qid(q)
		m.u32(0) // iounit: msize decides
		return m, nil

	case tlcreate:
		f, id, err := s.fidAndID(d)
		name, flags, mode := d.str(), d.u32(), d.u32()
		d.u32() // gid: the host's user owns what is made
		if err != nil {
			return nil, err
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		nf, q, err := f.create(name, flags, mode)
		if err != nil {
			return nil, err
		}
		// The fid now names the new, opened file.
		f.close()
		s.fids[id] = nf
		m := reply(17)
		m.qid(q)
		m.u32(0)
		return m, nil

	case tread:
		f, err := s.fid(d)
		off, count := d.u64(), d.u32()
		if err != nil {
			return nil, err
		}
		count = min(count, s.msize-11)
		m := reply(4 + int(count))
		m.u32(0)
		m.b = m.b[:len(m.b)+int(count)]
		n, err := f.readAt(m.b[11:], int64(off))
		if err != nil && n == 0 && err != io.EOF {
			return nil, err
		}
		m.b = m.b[:11+n]
		binary.LittleEndian.PutUint32(m.b[7:], uint32(n))
		return m, nil

	case twrite:
		f, err := s.fid(d)
		off, count := d.u64(), d.u32()
		data := d.take(int(count))
		if err != nil {
			return nil, err
		}
		if d.err != nil {
			return nil, d.err
		}
		n, err := f.writeAt(data, int64(off))
		if err != nil && n == 0 {
			return nil, err
		}
		m := reply(4)
		m.u32(uint32(n))
		return m, nil

	case tgetattr:
		f, err := s.fid(d)
		d.u64() // request mask: everything is always given
		if err != nil {
			return nil, err
		}
		st, err := fstat(f.fd)
		if err != nil {
			return nil, err
		}
		m := reply(160)
		m.u64(0x7ff) // P9_GETATTR_BASIC: mode to blocks
		m.qid(qidOf(&st))
		m.u32(st.Mode)
		m.u32(st.Uid)
		m.u32(st.Gid)
		m.u64(uint64(st.Nlink))
		m.u64(st.Rdev)
		m.u64(uint64(st.Size))
		m.u64(uint64(st.Blksize))
		m.u64(uint64(st.Blocks))
		for _, t := range []unix.Timespec{st.Atim, st.Mtim, st.Ctim, {}} {
			m.u64(uint64(t.Sec))
			m.u64(uint64(t.Nsec))
		}
		m.u64(0) // gen
		m.u64(0) // data version
		return m, nil

	case tsetattr:
		f, err := s.fid(d)
		var a setAttr
		a.valid, a.mode = d.u32(), d.u32()
		d.u32() // uid and gid: never applied (file.setAttr says why)
		d.u32()
		a.size = d.u64()
		a.atime = unix.Timespec{Sec: int64(d.u64()), Nsec: int64(d.u64())}
		a.mtime = unix.Timespec{Sec: int64(d.u64()), Nsec: int64(d.u64())}
		if err != nil {
			return nil, err
		}
		if d.err != nil {
			return nil, d.err
		}
		return reply(0), f.setAttr(a)

	case treaddir:
		f, err := s.fid(d)
		off, count := d.u64(), d.u32()
		if err != nil {
			return nil, err
		}
		count = min(count, s.msize-11)
		entries, err := f.readdir(off)
		if err != nil {
			return nil, err
		}
		m := reply(4 + int(count))
		m.u32(0)
		for _, e := range entries {
			if len(m.b)-11+24+len(e.name) > int(count) {
				break
			}
			m.qid(e.qid)
			m.u64(e.offset)
			m.u8(e.typ)
			m.str(e.name)
		}
		binary.LittleEndian.PutUint32(m.b[7:], uint32(len(m.b)-11))
		return m, nil

	case tstatfs:
		f, err := s.fid(d)
		if err != nil {
			return nil, err
		}
		var st unix.Statfs_t
		if err := unix.Fstatfs(f.fd, &st); err != nil {
			return nil, err
		}
		m := reply(60)
		m.u32(0x01021997) // V9FS_MAGIC
		m.u32(uint32(st.Bsize))
		m.u64(st.Blocks)
		m.u64(st.Bfree)
		m.u64(st.Bavail)
		m.u64(st.Files)
		m.u64(st.Ffree)
		m.u64(0) // fsid
		m.u32(uint32(st.Namelen))
		return m, nil

	case tfsync:
		f, err := s.fid(d)
		d.u32() // datasync
		if err != nil {
			return nil, err
		}
		return reply(0), f.fsync()

	case tmkdir, tsymlink, tmknod:
		f, err := s.fid(d)
		name := d.str()
		var q qid
		var mode uint32
		var target string
		switch typ {
		case tmkdir:
			mode = d.u32()
		case tsymlink:
			target = d.str()
		case tmknod:
			mode = d.u32()
			d.u32() // major
			d.u32() // minor
		}
		d.u32() // gid
		if err != nil {
			return nil, err
		}
		if d.err != nil {
			return nil, d.err
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		switch typ {
		case tmkdir:
			q, err = f.mkdir(name, mode)
		case tsymlink:
			if strings.IndexByte(target, 0) >= 0 {
				return nil, unix.EINVAL
			}
			q, err = f.symlink(target, name)
		default:
			q, err = f.mknod(name, mode)
		}
		if err != nil {
			return nil, err
		}
		m := reply(13)
		m.qid(q)
		return m, nil

	case tlink:
		dir, err := s.fid(d)
		target, terr := s.fid(d)
		name := d.str()
		if err == nil {
			err = terr
		}
		if err != nil {
			return nil, err
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		return reply(0), dir.link(target, name)

	case trenameat:
		from, err := s.fid(d)
		oldName := d.str()
		to, terr := s.fid(d)
		newName := d.str()
		if err == nil {
			err = terr
		}
		if err != nil {
			return nil, err
		}
		if err := checkName(oldName); err != nil {
			return nil, err
		}
		if err := checkName(newName); err != nil {
			return nil, err
		}
		return reply(0), from.renameAt(oldName, to, newName)

	case tunlinkat:
		f, err := s.fid(d)
		name, flags := d.str(), d.u32()
		if err != nil {
			return nil, err
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		return reply(0), f.unlinkAt(name, flags)

	case treadlink:
		f, err := s.fid(d)
		if err != nil {
			return nil, err
		}
		target, err := f.readlink()
		if err != nil {
			return nil, err
		}
		m := reply(2 + len(target))
		m.str(target)
		return m, nil

	case tlock:
		// Locks are granted locally, not shared with the host (as QEMU's
		// 9p does).
		if _, err := s.fid(d); err != nil {
			return nil, err
		}
		m := reply(1)
		m.u8(0) // P9_LOCK_SUCCESS
		return m, nil

	case tgetlock:
		if _, err := s.fid(d); err != nil {
			return nil, err
		}
		d.u8()
		start, length, pid := d.u64(), d.u64(), d.u32()
		client := d.str()
		m := reply(24 + len(client))
		m.u8(2) // F_UNLCK: nothing holds it
		m.u64(start)
		m.u64(length)
		m.u32(pid)
		m.str(client)
		return m, nil

	case txattrwalk:
		return nil, unix.EOPNOTSUPP // extended attributes are not shared
	}
	return nil, unix.EOPNOTSUPP
}
