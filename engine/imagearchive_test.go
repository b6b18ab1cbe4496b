package engine

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeImage makes a small image folder (not bootable: its kernel is text)
// that packs and installs like a real one; its compressed kernel is the
// kernel itself, as in arm64 images.
func fakeImage(t *testing.T, dir, name string) string {
	img := filepath.Join(dir, name+"-"+HostArch())
	os.MkdirAll(img, 0o755)
	os.WriteFile(filepath.Join(img, "vmlinux"), []byte(strings.Repeat("kernel ", 1000)), 0o644)
	os.WriteFile(filepath.Join(img, "initrd.img"), []byte("initrd"), 0o644)
	if out, err := exec.Command("qemu-img", "create", "-f", "raw", filepath.Join(img, "rootfs.ext4"), "8M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	os.WriteFile(filepath.Join(img, "manifest.json"), []byte(`{"name": "`+name+`", "arch": "`+HostArch()+`", "kernel": "vmlinux",
		"kernel_compressed": "vmlinux", "initrd": "initrd.img", "rootfs": "rootfs.ext4", "kernel_args": "console=ttyS0"}`), 0o644)
	return img
}

// An image packed and installed elsewhere is the same image, found by name,
// listed with where it came from; a second install of it is refused; it
// can be removed.
func TestImageArchiveRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	fakeImage(t, src, "tiny")
	archive := filepath.Join(t.TempDir(), "tiny"+ArchiveSuffix)
	sum, err := PackImage(context.Background(), "tiny", archive, src)
	if err != nil {
		t.Fatal(err)
	}
	if side, _ := os.ReadFile(archive + ".sha256"); !strings.HasPrefix(string(side), sum+"  ") {
		t.Fatalf("the .sha256 beside the archive says %q, the archive's sum is %s", side, sum)
	}
	var reported int64
	dir, err := InstallImage(context.Background(), archive, dst, func(done, total int64) { reported = done })
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(archive)
	if reported != fi.Size() {
		t.Errorf("progress ended at %d of %d bytes", reported, fi.Size())
	}
	img, err := FindImage("tiny", dst)
	if err != nil || img.Dir != dir {
		t.Fatalf("FindImage: %+v %v (installed at %s)", img, err, dir)
	}
	if kernel, _ := os.ReadFile(img.Kernel); string(kernel) != strings.Repeat("kernel ", 1000) {
		t.Fatalf("the installed kernel differs")
	}
	found := false
	for _, e := range ListImages(dst) {
		if e.Dir == dir {
			found = e.Source == "archive tiny"+ArchiveSuffix && e.Arch == HostArch() && e.Bytes > 0
			if !found {
				t.Errorf("listed as %+v", e)
			}
		}
	}
	if !found {
		t.Errorf("ListImages does not list %s", dir)
	}
	if _, err := InstallImage(context.Background(), archive, dst, nil); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "already installed") {
		t.Fatalf("a second install: %v", err)
	}
	if _, err := RemoveImage("tiny", dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("removed, yet %s is there", dir)
	}
	assertNothingLeft(t, dst)
}

// A corrupt archive (a byte changed anywhere) and a truncated one are
// refused, and nothing of them is left in the image folder.
func TestCorruptOrTruncatedArchiveIsRefused(t *testing.T) {
	src := t.TempDir()
	fakeImage(t, src, "tiny")
	archive := filepath.Join(t.TempDir(), "tiny"+ArchiveSuffix)
	if _, err := PackImage(context.Background(), "tiny", archive, src); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(archive)
	cases := map[string][]byte{
		"truncated":    good[:len(good)*2/3],
		"empty":        nil,
		"not an image": []byte("hello"),
	}
	for _, at := range []int{len(good) / 5, len(good) / 2, len(good) - 10} {
		bad := append([]byte(nil), good...)
		bad[at] ^= 0x55
		cases["byte "+string(rune('0'+at*10/len(good)))+"0% in changed"] = bad
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			broken := filepath.Join(t.TempDir(), "broken"+ArchiveSuffix)
			os.WriteFile(broken, data, 0o644)
			if dir, err := InstallImage(context.Background(), broken, dst, nil); err == nil {
				t.Fatalf("installed at %s", dir)
			} else if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("error %v", err)
			}
			assertNothingLeft(t, dst)
		})
	}
}

func assertNothingLeft(t *testing.T, dir string) {
	t.Helper()
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Fatalf("left in %s: %v", dir, names)
	}
}

// Saves are neither packed nor removed as images.
func TestSavesAreNotPackedOrRemovedAsImages(t *testing.T) {
	dir := t.TempDir()
	img := fakeImage(t, dir, "saved")
	raw, _ := os.ReadFile(filepath.Join(img, "manifest.json"))
	os.WriteFile(filepath.Join(img, "manifest.json"), []byte(strings.Replace(string(raw), `"name"`, `"save": {"state": "s"}, "name"`, 1)), 0o644)
	if _, err := PackImage(context.Background(), "saved", filepath.Join(t.TempDir(), "x"), dir); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("packing a save: %v", err)
	}
	if _, err := RemoveImage("saved", dir); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("removing a save: %v", err)
	}
	if _, err := os.Stat(img); err != nil {
		t.Fatalf("the save is gone: %v", err)
	}
}

// A hostile archive cannot write outside the folder it is unpacked in:
// entries with a path, a parent reference, a link or a device are refused,
// and nothing is written anywhere.
func TestArchiveEntriesCannotLeaveTheirFolder(t *testing.T) {
	for name, hdr := range map[string]tar.Header{
		"parent":   {Name: "../escaped", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"absolute": {Name: "/tmp/escaped", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"subdir":   {Name: "a/b", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"symlink":  {Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		"hardlink": {Name: "link", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"},
		"device":   {Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
		"lock":     {Name: lockName, Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "images")
			archive := filepath.Join(t.TempDir(), "hostile"+ArchiveSuffix)
			f, _ := os.Create(archive)
			zw := gzip.NewWriter(f)
			tw := tar.NewWriter(zw)
			tw.WriteHeader(&tar.Header{Name: archiveMarker, Typeflag: tar.TypeReg, Size: 2, Mode: 0o644})
			tw.Write([]byte("1\n"))
			tw.WriteHeader(&hdr)
			if hdr.Size > 0 {
				tw.Write([]byte("x"))
			}
			tw.Close()
			zw.Close()
			f.Close()
			if dir, err := InstallImage(context.Background(), archive, dst, nil); err == nil || !errors.Is(err, ErrBadRequest) {
				t.Fatalf("installed at %q, error %v", dir, err)
			}
			assertNothingLeft(t, dst)
			if _, err := os.Stat(filepath.Join(parent, "escaped")); !os.IsNotExist(err) {
				t.Fatalf("the archive wrote outside its folder")
			}
		})
	}
}
