package share

import (
	"encoding/binary"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// Readdir lists an opened folder. The listing is read whole when the guest
// starts at offset 0 and served from there, so that offsets (an entry's
// index, plus one) stay stable across the guest's calls.
func (f *file) Readdir(offset uint64, count uint32) (p9.Dirents, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open < 0 {
		return nil, linux.EBADF
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
	// An encoded entry takes 24 bytes and its name: no more can fit.
	end := min(uint64(len(f.entries)), offset+uint64(count/24)+1)
	return f.entries[offset:end], nil
}

// readDirents reads a folder from its start with getdents64.
func readDirents(fd int) ([]p9.Dirent, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	var entries []p9.Dirent
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
func parseDirents(b []byte, entries []p9.Dirent) []p9.Dirent {
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
		entries = append(entries, p9.Dirent{
			QID:    p9.QID{Type: direntQIDType(typ), Path: ino},
			Offset: uint64(len(entries) + 1),
			// Linux's client passes this on as d_type (DT_DIR...), as
			// QEMU's server sends it: not a QID type.
			Type: p9.QIDType(typ),
			Name: string(name),
		})
		b = b[reclen:]
	}
	return entries
}

func direntQIDType(t uint8) p9.QIDType {
	switch t {
	case unix.DT_DIR:
		return p9.TypeDir
	case unix.DT_LNK:
		return p9.TypeSymlink
	default:
		return p9.TypeRegular
	}
}
