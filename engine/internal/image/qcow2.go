package image

// Disk files that name other files. A qcow2 file may name a backing file
// and an external data file, which QEMU opens as the disk's content: a
// root disk backed by /etc/shadow gives the guest the host's shadow file,
// whatever the manifest says. And a file QEMU is left to guess the format
// of may be taken for one that names files too (a VMDK descriptor, a few
// lines of text, names its extents by path). So the engine never lets
// QEMU guess: a root disk is qcow2 when it starts as one, else raw, and a
// qcow2 one names no other file.

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

const (
	qcow2Magic           = "QFI\xfb"
	qcow2ExtBackingFmt   = 0xe2792aca
	qcow2ExtDataFile     = 0x44415441
	qcow2IncompatDataFil = 1 << 2
	// qcow2HeaderMax bounds what is read of a header and its extensions
	// (QEMU reads them within the first cluster, at most 2 MiB).
	qcow2HeaderMax = 2 << 20
)

// diskInfo is what a disk file's first bytes say about its format and the
// other files it names.
type diskInfo struct {
	format                 string // "qcow2" or "raw"
	backing, backingFormat string
	dataFile               bool // an external data file (by name or by feature bit)
}

func (d diskInfo) String() string {
	s := d.format
	switch {
	case d.backing != "" && d.backingFormat != "":
		s += fmt.Sprintf(" with the backing file %s (format %s)", Quote(d.backing), d.backingFormat)
	case d.backing != "":
		s += fmt.Sprintf(" with the backing file %s (its format unsaid: QEMU would guess it)", Quote(d.backing))
	case d.format == "qcow2":
		s += " with no backing file"
	}
	if d.dataFile {
		s += ", with an external data file"
	}
	return s
}

// rootDiskFormat is the format of an image's root disk (at path, named
// name in the manifest), as the engine names it to QEMU: qcow2 (naming no
// other file) or raw.
func rootDiskFormat(path, name string) (string, error) {
	d, err := readDisk(path)
	if err != nil {
		return "", fmt.Errorf("rootfs %s: %w", Quote(name), err)
	}
	if d.backing != "" || d.dataFile {
		return "", fmt.Errorf("rootfs %s names another file, which QEMU would give the guest: it is a %s; an image's root disk must hold its content itself", Quote(name), d)
	}
	return d.format, nil
}

// readDisk reads the header of the disk file at path: its first sector,
// and for a qcow2 file its first cluster, where the header extensions are.
func readDisk(path string) (diskInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return diskInfo{}, err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return diskInfo{}, err
	}
	if n >= 24 && string(head[:4]) == qcow2Magic {
		clusterBits := binary.BigEndian.Uint32(head[20:])
		size := int64(qcow2HeaderMax)
		if clusterBits >= 9 && clusterBits <= 21 {
			size = 1 << clusterBits
		}
		head = make([]byte, size)
		if n, err = f.ReadAt(head, 0); err != nil && err != io.EOF {
			return diskInfo{}, err
		}
	}
	return parseDisk(head[:n])
}

// parseDisk reads a disk's format, backing file and data file from its
// first bytes (up to qcow2HeaderMax).
func parseDisk(b []byte) (diskInfo, error) {
	if len(b) < 4 || string(b[:4]) != qcow2Magic {
		return diskInfo{format: "raw"}, nil
	}
	d := diskInfo{format: "qcow2"}
	be := binary.BigEndian
	if len(b) < 72 {
		return d, fmt.Errorf("a qcow2 header cut short (%d bytes)", len(b))
	}
	version := be.Uint32(b[4:])
	if version != 2 && version != 3 {
		return d, fmt.Errorf("a qcow version %d file (only qcow2, versions 2 and 3)", version)
	}
	backingOff, backingLen := be.Uint64(b[8:]), uint64(be.Uint32(b[16:]))
	extAt := uint64(72)
	if version == 3 {
		if len(b) < 104 {
			return d, fmt.Errorf("a qcow2 header cut short (%d bytes)", len(b))
		}
		d.dataFile = be.Uint64(b[72:])&qcow2IncompatDataFil != 0
		extAt = uint64(be.Uint32(b[100:]))
	}
	if backingOff != 0 || backingLen != 0 {
		if backingOff > uint64(len(b)) || backingLen > uint64(len(b))-backingOff || backingLen == 0 {
			d.backing = fmt.Sprintf("(a name of %d bytes at %d)", backingLen, backingOff)
		} else {
			d.backing = string(b[backingOff : backingOff+backingLen])
		}
	}
	// Header extensions: type, length, data padded to 8 bytes; type 0 ends.
	for extAt+8 <= uint64(len(b)) {
		typ, n := be.Uint32(b[extAt:]), uint64(be.Uint32(b[extAt+4:]))
		if typ == 0 || n > uint64(len(b))-extAt-8 {
			break
		}
		data := string(b[extAt+8 : extAt+8+n])
		switch typ {
		case qcow2ExtBackingFmt:
			d.backingFormat = data
		case qcow2ExtDataFile:
			d.dataFile = true
		}
		extAt += 8 + (n+7)&^7
	}
	return d, nil
}
