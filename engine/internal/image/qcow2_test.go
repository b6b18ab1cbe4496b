package image

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// parseDisk reads headers of any bytes without failing the caller:
// whatever a file holds, the answer is a format or an error, never a panic.
func FuzzParseDisk(f *testing.F) {
	dir := f.TempDir()
	for i, args := range [][]string{
		{"create", "-q", "-f", "qcow2"},
		{"create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw"},
		{"create", "-q", "-f", "qcow2", "-o", "compat=0.10"},
		{"create", "-q", "-f", "qcow2", "-o", "data_file=" + filepath.Join(dir, "data")},
	} {
		p := filepath.Join(dir, string(rune('a'+i)))
		qemuImgF(f, append(args, p, "1M")...)
		raw, _ := os.ReadFile(p)
		f.Add(raw[:4096])
	}
	huge := make([]byte, 104)
	copy(huge, qcow2Magic)
	binary.BigEndian.PutUint32(huge[4:], 3)
	binary.BigEndian.PutUint64(huge[8:], ^uint64(0))
	binary.BigEndian.PutUint32(huge[16:], 2)
	binary.BigEndian.PutUint32(huge[100:], ^uint32(0))
	f.Add(huge)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDisk(b)
		if err == nil && d.format != "raw" && d.format != "qcow2" {
			t.Fatalf("format %q", d.format)
		}
	})
}

// The formats a root disk can have, as the engine names them to QEMU: a
// qcow2 (version 2 or 3) is qcow2; anything else is raw, a VMDK
// descriptor included (QEMU would take it for a VMDK naming its extents);
// a qcow version 1 file is refused.
func TestRootDiskFormat(t *testing.T) {
	dir := t.TempDir()
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", filepath.Join(dir, "v2.qcow2"), "1M")
	qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(dir, "v3.qcow2"), "1M")
	os.WriteFile(filepath.Join(dir, "vmdk"), []byte("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"/etc/passwd\" 0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "raw"), make([]byte, 4096), 0o644)
	os.WriteFile(filepath.Join(dir, "qcow1"), append([]byte(qcow2Magic), make([]byte, 100)...), 0o644)
	binaryPut := func(p string, at int, v uint32) {
		raw, _ := os.ReadFile(p)
		binary.BigEndian.PutUint32(raw[at:], v)
		os.WriteFile(p, raw, 0o644)
	}
	binaryPut(filepath.Join(dir, "qcow1"), 4, 1)
	for name, want := range map[string]string{"v2.qcow2": "qcow2", "v3.qcow2": "qcow2", "vmdk": "raw", "raw": "raw"} {
		if got, err := rootDiskFormat(filepath.Join(dir, name), name); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", name, got, err, want)
		}
	}
	if got, err := rootDiskFormat(filepath.Join(dir, "qcow1"), "qcow1"); err == nil {
		t.Errorf("a qcow version 1 file is taken as %s", got)
	}
}

func qemuImgF(f *testing.F, args ...string) {
	f.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		f.Fatalf("qemu-img %v: %v: %s", args, err, out)
	}
}
