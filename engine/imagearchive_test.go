package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/quicksand-go/quicksand/engine/internal/image"
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

// fakeSave makes a save folder named name in dir over the image img, laid
// out as Sandbox.Save lays one out (its state is not a VM's).
func fakeSave(t *testing.T, dir, name, img string) string {
	t.Helper()
	save := filepath.Join(dir, name)
	os.MkdirAll(save, 0o755)
	os.WriteFile(filepath.Join(save, saveState), []byte("state"), 0o600)
	os.WriteFile(filepath.Join(save, saveToken), []byte("token"), 0o600)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", filepath.Join(img, "rootfs.ext4"), "-F", "raw", filepath.Join(save, saveDisk)).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	m, _ := json.Marshal(map[string]any{
		"name": name, "arch": HostArch(), "kernel": filepath.Join(img, "vmlinux"), "initrd": filepath.Join(img, "initrd.img"),
		"rootfs": filepath.Join(img, "rootfs.ext4"), "save": map[string]any{"state": saveState, "disk": saveDisk},
	})
	os.WriteFile(filepath.Join(save, "manifest.json"), m, 0o644)
	return save
}

// Saves are neither packed nor removed as images.
func TestSavesAreNotPackedOrRemovedAsImages(t *testing.T) {
	dir := t.TempDir()
	save := fakeSave(t, dir, "saved", fakeImage(t, dir, "tiny"))
	if _, err := FindImage("saved", dir); err != nil {
		t.Fatalf("the save is not found: %v", err)
	}
	if _, err := PackImage(context.Background(), "saved", filepath.Join(t.TempDir(), "x"), dir); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("packing a save: %v", err)
	}
	if _, err := RemoveImage("saved", dir); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("removing a save: %v", err)
	}
	if _, err := os.Stat(save); err != nil {
		t.Fatalf("the save is gone: %v", err)
	}
}

// An image that is refused (it names a host file) can still be removed,
// and removing it touches nothing but its folder; a refused save is not
// removed.
func TestRefusedImagesCanBeRemoved(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("the host's"), 0o600)
	img := fakeImage(t, dir, "evil")
	raw, _ := os.ReadFile(filepath.Join(img, "manifest.json"))
	os.WriteFile(filepath.Join(img, "manifest.json"), []byte(strings.Replace(string(raw), `"rootfs.ext4"`, strconv.Quote(secret), 1)), 0o644)
	if _, err := FindImage("evil", dir); !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "not a file name in the image's folder") {
		t.Fatalf("FindImage: %v", err)
	}
	if _, err := RemoveImage("evil", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Errorf("the image is still there: %v", err)
	}
	if got, _ := os.ReadFile(secret); string(got) != "the host's" {
		t.Errorf("the host file is gone or changed: %q", got)
	}
	save := fakeSave(t, dir, "saved", fakeImage(t, dir, "tiny"))
	raw, _ = os.ReadFile(filepath.Join(save, "manifest.json"))
	os.WriteFile(filepath.Join(save, "manifest.json"), []byte(strings.Replace(string(raw), filepath.Join(dir, "tiny-"+HostArch(), "rootfs.ext4"), secret, 1)), 0o644)
	if _, err := FindImage("saved", dir); err == nil {
		t.Fatal("a save naming a host file was found")
	}
	if _, err := RemoveImage("saved", dir); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("removing a save: %v", err)
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

// testEntry is one file of a hand-made archive.
type testEntry struct {
	hdr  tar.Header
	data []byte
}

// file is a plain archive entry holding data.
func file(name string, data []byte) testEntry {
	return testEntry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}, data}
}

// sumsOf is a SHA256SUMS that lists entries as PackImage does.
func sumsOf(entries ...testEntry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%x  %s\n", sha256.Sum256(e.data), e.hdr.Name)
	}
	return b.String()
}

// writeArchive writes entries as an image archive (gzip'd tar) at a new path.
func writeArchive(t *testing.T, entries ...testEntry) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hostile"+ArchiveSuffix)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed) // a kernel and initrd, under -race
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Flush()
	zw.Close()
	f.Close()
	return path
}

// archiveFiles are the files of a small good archive: marker, manifest (its
// fields over a good one's), kernel, initrd and a qcow2 root disk.
func archiveFiles(t *testing.T, fields map[string]any) []testEntry {
	t.Helper()
	m := map[string]any{"name": "tiny", "arch": HostArch(), "kernel": "vmlinux", "initrd": "initrd.img", "rootfs": archiveRootFS, "kernel_args": "console=ttyS0"}
	for k, v := range fields {
		m[k] = v
	}
	manifest, _ := json.Marshal(m)
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, "8M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	qcow2, _ := os.ReadFile(disk)
	return []testEntry{
		file(archiveMarker, []byte(archiveVersion+"\n")),
		file("manifest.json", manifest),
		file("vmlinux", []byte(strings.Repeat("kernel ", 1000))),
		file("initrd.img", []byte("initrd")),
		file(archiveRootFS, qcow2),
	}
}

// withSums is files followed by their SHA256SUMS.
func withSums(files ...testEntry) []testEntry {
	return append(files, file(archiveSums, []byte(sumsOf(files...))))
}

// mustRefuseArchive installs archive into dst and checks that it is
// refused with an error saying each of why, and that nothing is left.
func mustRefuseArchive(t *testing.T, archive, dst string, why ...string) {
	t.Helper()
	before, _ := os.ReadDir(dst)
	dir, err := InstallImage(context.Background(), archive, dst, nil)
	if err == nil {
		t.Fatalf("installed at %s", dir)
	}
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("not a bad request: %v", err)
	}
	for _, w := range append([]string{"refused"}, why...) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not say %q: %v", w, err)
		}
	}
	if after, _ := os.ReadDir(dst); len(after) != len(before) {
		t.Errorf("left in %s: %v (before: %v)", dst, after, before)
	}
}

// An archive's manifest names only files that came in the archive: not a
// host file by path or by '..', not another installed image's disk, not a
// file the install made (its lock), not the manifest itself; and the
// archive holds no file its manifest does not name. Each refusal says
// which field or file and why.
func TestArchiveManifestNamesOnlyFilesOfTheArchive(t *testing.T) {
	parent := t.TempDir()
	secret := filepath.Join(parent, "secret")
	os.WriteFile(secret, []byte("the host's secret"), 0o600)
	// Another image, installed beside: a hostile archive must not borrow
	// its disk.
	otherArchive := writeArchive(t, withSums(archiveFiles(t, map[string]any{"name": "other"})...)...)
	other := filepath.Join(parent, "images", "other-"+HostArch(), archiveRootFS)
	for name, c := range map[string]struct {
		fields map[string]any
		extra  []testEntry
		why    []string
	}{
		"rootfs a host file":          {fields: map[string]any{"rootfs": secret}, why: []string{"rootfs", image.Quote(secret), "not a file name in the image's folder"}},
		"rootfs /etc/passwd":          {fields: map[string]any{"rootfs": "/etc/passwd"}, why: []string{"rootfs", `"/etc/passwd"`, "not a file name in the image's folder"}},
		"rootfs ../ to a host file":   {fields: map[string]any{"rootfs": "../../secret"}, why: []string{"rootfs", `"../../secret"`, "not a file name in the image's folder"}},
		"kernel deep ../":             {fields: map[string]any{"kernel": "../../../../../../../../etc/passwd"}, why: []string{"kernel", "not a file name in the image's folder"}},
		"rootfs another image's disk": {fields: map[string]any{"rootfs": other}, why: []string{"rootfs", "not a file name in the image's folder"}},
		"rootfs ../other image":       {fields: map[string]any{"rootfs": "../other-" + HostArch() + "/" + archiveRootFS}, why: []string{"rootfs", "not a file name in the image's folder"}},
		"initrd the install's lock":   {fields: map[string]any{"initrd": lockName}, why: []string{"initrd", image.Quote(lockName), "not in the archive"}},
		"kernel the manifest":         {fields: map[string]any{"kernel": "manifest.json"}, why: []string{"kernel", `"manifest.json"`, "not in the archive"}},
		"kernel_compressed absolute":  {fields: map[string]any{"kernel_compressed": "/etc/passwd"}, why: []string{"kernel_compressed", "not a file name in the image's folder"}},
		"a file nothing names":        {extra: []testEntry{file("extra", []byte("x"))}, why: []string{`"extra"`, "its manifest does not name"}},
	} {
		t.Run(name, func(t *testing.T) {
			dst := filepath.Join(parent, "images")
			os.RemoveAll(dst)
			if _, err := InstallImage(context.Background(), otherArchive, dst, nil); err != nil {
				t.Fatal(err)
			}
			files := append(archiveFiles(t, c.fields), c.extra...)
			mustRefuseArchive(t, writeArchive(t, withSums(files...)...), dst, c.why...)
		})
	}
}

// Every file of an archive is listed in its SHA256SUMS with its right sum,
// and every file listed is in it.
func TestArchiveSumsCoverEveryFile(t *testing.T) {
	files := archiveFiles(t, nil)
	sums := sumsOf(files...)
	rootLine := sumsOf(files[4])
	for name, c := range map[string]struct {
		sums string
		why  []string
	}{
		"the root disk unlisted":  {strings.Replace(sums, rootLine, "", 1), []string{image.Quote(archiveRootFS), "not listed"}},
		"the manifest unlisted":   {strings.Replace(sums, sumsOf(files[1]), "", 1), []string{`"manifest.json"`, "not listed"}},
		"a file listed, not held": {sums + fmt.Sprintf("%x  initrd2.img\n", sha256.Sum256([]byte("x"))), []string{`"initrd2.img"`, "listed but missing"}},
		"a wrong sum":             {strings.Replace(sums, rootLine, fmt.Sprintf("%x  %s\n", sha256.Sum256([]byte("x")), archiveRootFS), 1), []string{image.Quote(archiveRootFS), "checksum"}},
		"listed twice":            {sums + rootLine, []string{image.Quote(archiveRootFS), "twice"}},
		"no sums":                 {"", []string{"no " + archiveSums}},
	} {
		t.Run(name, func(t *testing.T) {
			mustRefuseArchive(t, writeArchive(t, append(files, file(archiveSums, []byte(c.sums)))...), t.TempDir(), c.why...)
		})
	}
}

// Entries that are not plain files, or that claim more room than the
// disk has, or small files (manifest, marker, sums) that are not small,
// are refused before anything is written.
func TestArchiveEntryTricksAreRefused(t *testing.T) {
	free := freeBytes(t, t.TempDir())
	for name, c := range map[string]struct {
		entry testEntry
		why   string
	}{
		"fifo":         {testEntry{hdr: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo}}, "which no image archive has"},
		"folder":       {testEntry{hdr: tar.Header{Name: "dir", Typeflag: tar.TypeDir, Mode: 0o755}}, "which no image archive has"},
		"block device": {testEntry{hdr: tar.Header{Name: "sda", Typeflag: tar.TypeBlock, Devmajor: 8}}, "which no image archive has"},
		"dot-dot":      {file("..", []byte("x")), "which no image archive has"},
		"bigger than the disk": {testEntry{hdr: tar.Header{Name: archiveRootFS, Typeflag: tar.TypeReg, Mode: 0o644, Size: free + 1<<30}, data: []byte("x")},
			"free"},
		"a huge manifest": {file("manifest.json", append([]byte(`{"name":"tiny"}`), bytes.Repeat([]byte(" "), 2<<20)...)), "larger than"},
		"a huge sums":     {file(archiveSums, bytes.Repeat([]byte("0"), 2<<20)), "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			entries := []testEntry{file(archiveMarker, []byte(archiveVersion+"\n")), c.entry}
			mustRefuseArchive(t, writeArchive(t, entries...), t.TempDir(), c.why)
		})
	}
}

// freeBytes is the room left on dir's file system for this user.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// Modes and owners in the archive are not kept: setuid, setgid, sticky,
// world-writable and foreign owners all install as plain files of the
// installing user, 0644, in a folder of 0755.
func TestArchiveModesAndOwnersAreNotKept(t *testing.T) {
	files := archiveFiles(t, nil)
	for i := range files {
		files[i].hdr.Mode = 0o7777
		files[i].hdr.Uid, files[i].hdr.Gid = 1234, 1234
	}
	dst := t.TempDir()
	dir, err := InstallImage(context.Background(), writeArchive(t, withSums(files...)...), dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fi, _ := os.Lstat(filepath.Join(dir, e.Name()))
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != 0o644 || int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
			t.Errorf("%s: %v, owner %d:%d", e.Name(), fi.Mode(), st.Uid, st.Gid)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
		t.Errorf("the image folder is %v", fi.Mode())
	}
}
