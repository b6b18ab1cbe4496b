package share

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// dirent is one entry of a folder as Treaddir answers it.
type dirent struct {
	qid    qid
	offset uint64 // where the next entry starts: this one's index + 1
	typ    uint8  // d_type (DT_DIR...), as Linux's client passes it on
	name   string
}

// readdir lists an opened folder from offset. The listing is read whole
// when the guest starts at offset 0 and served from there, so that offsets
// stay stable across the guest's calls.
func (f *file) readdir(offset uint64) ([]dirent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open < 0 {
		return nil, unix.EBADF
	}
	if offset == 0 || f.entries == nil {
		entries, err := readDirents(f.open)
		if err != nil {
			return nil, err
		}
		f.entries = entries
	}
	if offset >= uint64(len(f.entries)) {
		return nil, nil
	}
	return f.entries[offset:], nil
}

// readDirents reads a folder from its start with getdents64.
func readDirents(fd int) ([]dirent, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	var entries []dirent
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return entries, nil
		}
		entries = parseDirents(buf[:n], entries)
	}
}

// parseDirents appends the linux_dirent64 records in b: inode (8 bytes),
// offset (8), record length (2), type (1), then the name, NUL-terminated.
func parseDirents(b []byte, entries []dirent) []dirent {
	for len(b) >= 19 {
		ino := binary.NativeEndian.Uint64(b[0:8])
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < 19 || reclen > len(b) {
			break
		}
		typ := b[18]
		name := b[19:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		q := qid{qidFile, ino}
		switch typ {
		case unix.DT_DIR:
			q.typ = qidDir
		case unix.DT_LNK:
			q.typ = qidSymlink
		}
		entries = append(entries, dirent{qid: q, offset: uint64(len(entries) + 1), typ: typ, name: string(name)})
		b = b[reclen:]
	}
	return entries
}
