package image

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// imageDir makes an image folder in parent with a kernel, an initrd and a
// raw root disk of its own, and a manifest made of fields over those
// defaults.
func imageDir(t *testing.T, parent, name string, fields map[string]any) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmlinux", "initrd.img", "rootfs.ext4"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f+" bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeManifest(t, dir, fields)
	return dir
}

// writeManifest writes dir's manifest.json: the defaults of imageDir with
// fields over them (a nil value removes the field).
func writeManifest(t *testing.T, dir string, fields map[string]any) {
	t.Helper()
	m := map[string]any{"name": "n", "arch": HostArch(), "kernel": "vmlinux", "initrd": "initrd.img", "rootfs": "rootfs.ext4"}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	raw, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hostSecret is a file of the host's, outside every image folder, that a
// hostile manifest tries to hand the guest.
func hostSecret(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("the host's secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustRefuse checks that Load refuses dir with an error that names the
// field, the path the manifest gave and each of the words of why.
func mustRefuse(t *testing.T, dir, field, path string, why ...string) {
	t.Helper()
	im, err := Load(dir)
	if err == nil {
		t.Fatalf("Load took a manifest whose %s is %q: %s is %s", field, path, field, im.path(path))
	}
	if os.IsNotExist(err) {
		t.Errorf("the error looks like a missing image: %v", err)
	}
	for _, want := range append([]string{field, Quote(path)}, why...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

// A manifest names only files of its own folder: no absolute path, no
// '..', no other image's file, no symlink (wherever it points), nothing
// but a regular file. Each refusal says which field, which path and why.
func TestManifestNamesOnlyItsOwnFiles(t *testing.T) {
	secret := hostSecret(t)
	for _, field := range []string{"kernel", "kernel_compressed", "initrd", "rootfs"} {
		t.Run(field, func(t *testing.T) {
			parent := t.TempDir()
			other := imageDir(t, parent, "other", nil)
			rel, _ := filepath.Rel(filepath.Join(parent, "evil"), secret)
			cases := []struct {
				name, path string
				why        []string
				prepare    func(dir string)
			}{
				{"absolute host file", secret, []string{"not a file name in the image's folder"}, nil},
				{"absolute /etc/passwd", "/etc/passwd", []string{"not a file name in the image's folder"}, nil},
				{"dot-dot to a host file", rel, []string{"not a file name in the image's folder"}, nil},
				{"another image's disk", "../other/rootfs.ext4", []string{"not a file name in the image's folder"}, nil},
				{"another image's disk by path", filepath.Join(other, "rootfs.ext4"), []string{"not a file name in the image's folder"}, nil},
				{"a subfolder", "sub/disk", []string{"not a file name in the image's folder"}, func(dir string) {
					os.Mkdir(filepath.Join(dir, "sub"), 0o755)
					os.WriteFile(filepath.Join(dir, "sub", "disk"), []byte("x"), 0o644)
				}},
				{"the folder itself", ".", []string{"not a file name in the image's folder"}, nil},
				{"a symlink out of the folder", "link", []string{"symbolic link"}, func(dir string) {
					os.Symlink(secret, filepath.Join(dir, "link"))
				}},
				{"a symlink to another image's disk", "link", []string{"symbolic link"}, func(dir string) {
					os.Symlink("../other/rootfs.ext4", filepath.Join(dir, "link"))
				}},
				{"a symlink inside the folder", "link", []string{"symbolic link"}, func(dir string) {
					os.Symlink("rootfs.ext4", filepath.Join(dir, "link"))
				}},
				{"a fifo", "fifo", []string{"not a regular file"}, func(dir string) {
					syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644)
				}},
				{"a folder", "sub", []string{"not a regular file"}, func(dir string) {
					os.Mkdir(filepath.Join(dir, "sub"), 0o755)
				}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					dir := imageDir(t, parent, "evil", map[string]any{field: c.path})
					defer os.RemoveAll(dir)
					if c.prepare != nil {
						c.prepare(dir)
					}
					mustRefuse(t, dir, field, c.path, c.why...)
				})
			}
		})
	}
}

// The manifest itself is a small regular file: a fifo in its place is
// refused at once (reading it would wait forever), a huge one is refused
// before it is read, a symlink is refused.
func TestManifestFileIsBoundedAndOwn(t *testing.T) {
	parent := t.TempDir()
	fifo := imageDir(t, parent, "fifo", nil)
	os.Remove(filepath.Join(fifo, "manifest.json"))
	syscall.Mkfifo(filepath.Join(fifo, "manifest.json"), 0o644)
	huge := imageDir(t, parent, "huge", nil)
	raw, _ := os.ReadFile(filepath.Join(huge, "manifest.json"))
	os.WriteFile(filepath.Join(huge, "manifest.json"), append(raw, strings.Repeat(" ", 2<<20)...), 0o644)
	link := imageDir(t, parent, "link", nil)
	os.Rename(filepath.Join(link, "manifest.json"), filepath.Join(parent, "elsewhere.json"))
	os.Symlink(filepath.Join(parent, "elsewhere.json"), filepath.Join(link, "manifest.json"))
	for dir, why := range map[string]string{fifo: "not a regular file", huge: "larger than", link: "symbolic link"} {
		done := make(chan error, 1)
		go func() { _, err := Load(dir); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "manifest.json") {
				t.Errorf("%s: %v (want an error saying %q)", filepath.Base(dir), err, why)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: Load still waits after 5 s", filepath.Base(dir))
		}
	}
}

// qemuImg runs qemu-img, which the image tests need.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v: %s", args, err, out)
	}
}

// A qcow2 root disk names no other file: a backing file (a host file, or
// another image's disk) or an external data file would hand the guest
// that file as its disk, whatever the manifest says.
func TestRootDiskNamesNoOtherFile(t *testing.T) {
	secret := hostSecret(t)
	parent := t.TempDir()
	other := imageDir(t, parent, "other", nil)
	for name, c := range map[string]struct {
		args []string
		why  string
	}{
		"backing host file":         {[]string{"-b", secret, "-F", "raw"}, "backing file"},
		"backing another's disk":    {[]string{"-b", filepath.Join(other, "rootfs.ext4"), "-F", "raw"}, "backing file"},
		"backing relative":          {[]string{"-b", "../other/rootfs.ext4", "-F", "raw"}, "backing file"},
		"external data file":        {[]string{"-o", "data_file=" + secret + ",data_file_raw=on"}, "data file"},
		"external data file, qcow2": {[]string{"-o", "compat=1.1,data_file=" + filepath.Join(parent, "data")}, "data file"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := imageDir(t, parent, "evil", map[string]any{"rootfs": "rootfs.qcow2"})
			defer os.RemoveAll(dir)
			qemuImg(t, append(append([]string{"create", "-f", "qcow2"}, c.args...), filepath.Join(dir, "rootfs.qcow2"), "1M")...)
			mustRefuse(t, dir, "rootfs", "rootfs.qcow2", c.why)
		})
	}
	t.Run("backing, format unsaid", func(t *testing.T) {
		dir := imageDir(t, parent, "evil", map[string]any{"rootfs": "rootfs.qcow2"})
		defer os.RemoveAll(dir)
		qemuImg(t, "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", filepath.Join(dir, "rootfs.qcow2"))
		dropBackingFormat(t, filepath.Join(dir, "rootfs.qcow2"))
		mustRefuse(t, dir, "rootfs", "rootfs.qcow2", "backing file", "unsaid")
	})
	t.Run("a plain qcow2", func(t *testing.T) {
		dir := imageDir(t, parent, "plain", map[string]any{"rootfs": "rootfs.qcow2"})
		qemuImg(t, "create", "-f", "qcow2", filepath.Join(dir, "rootfs.qcow2"), "1M")
		if _, err := Load(dir); err != nil {
			t.Fatal(err)
		}
	})
}

// dropBackingFormat ends the header extensions of the qcow2 file p where
// its backing format is, as a file written without one has none: QEMU then
// guesses the backing file's format.
func dropBackingFormat(t *testing.T, p string) {
	t.Helper()
	raw, _ := os.ReadFile(p)
	at := bytes.Index(raw[:4096], []byte{0xe2, 0x79, 0x2a, 0xca})
	if at < 0 {
		t.Fatal("no backing format extension in the disk")
	}
	copy(raw[at:], make([]byte, 8))
	os.WriteFile(p, raw, 0o600)
}
