package image

import (
	"os"
	"path/filepath"
	"testing"
)

// saveDir makes a save folder in parent over the image in imgDir, as
// engine.Sandbox.Save writes one: a manifest naming the image's files by
// path, the state and a qcow2 disk over the image's root disk beside it,
// and the token and console log. fields and save change its manifest.
func saveDir(t *testing.T, parent, imgDir string, fields, save map[string]any) string {
	t.Helper()
	dir := filepath.Join(parent, "save")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "state"), []byte("migration stream"), 0o600)
	os.WriteFile(filepath.Join(dir, "token"), []byte("token"), 0o600)
	os.WriteFile(filepath.Join(dir, "console.log"), []byte("console"), 0o600)
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", filepath.Join(imgDir, "rootfs.ext4"), "-F", "raw", filepath.Join(dir, "disk.qcow2"))
	s := map[string]any{"state": "state", "disk": "disk.qcow2", "state_sha256": "x", "memory_mib": 256, "cpus": 1}
	for k, v := range save {
		s[k] = v
	}
	m := map[string]any{
		"kernel": filepath.Join(imgDir, "vmlinux"), "initrd": filepath.Join(imgDir, "initrd.img"),
		"rootfs": filepath.Join(imgDir, "rootfs.ext4"), "save": s,
	}
	for k, v := range fields {
		m[k] = v
	}
	writeManifest(t, dir, m)
	return dir
}

// A save names its image's files by path, and nothing else: its kernel,
// initrd and root disk are those of one image (checked as any image is),
// its state and disk are its own files, its disk is a qcow2 over that
// image's root disk and nothing else, and no file in its folder is a link
// or anything but a regular file.
func TestSaveNamesOnlyItsImageAndItsOwnFiles(t *testing.T) {
	secret := hostSecret(t)
	parent := t.TempDir()
	img := imageDir(t, parent, "img", nil)
	other := imageDir(t, parent, "other", nil)
	if _, err := Load(saveDir(t, t.TempDir(), img, nil, nil)); err != nil {
		t.Fatalf("a good save: %v", err)
	}
	for name, c := range map[string]struct {
		fields, save map[string]any
		prepare      func(t *testing.T, dir string)
		field, path  string
		why          string
	}{
		"rootfs a host file":         {fields: map[string]any{"rootfs": secret}, field: "rootfs", path: secret, why: "not a file of its image"},
		"rootfs /etc/passwd":         {fields: map[string]any{"rootfs": "/etc/passwd"}, field: "rootfs", path: "/etc/passwd", why: "not a file of its image"},
		"kernel /etc/passwd":         {fields: map[string]any{"kernel": "/etc/passwd"}, field: "kernel", path: "/etc/passwd", why: "not a file of its image"},
		"initrd a host file":         {fields: map[string]any{"initrd": secret}, field: "initrd", path: secret, why: "not a file of its image"},
		"rootfs another image's":     {fields: map[string]any{"rootfs": filepath.Join(other, "rootfs.ext4")}, field: "rootfs", path: filepath.Join(other, "rootfs.ext4"), why: "not a file of its image"},
		"rootfs relative":            {fields: map[string]any{"rootfs": "../img/rootfs.ext4"}, field: "rootfs", path: "../img/rootfs.ext4", why: "not a file of its image"},
		"kernel the image's initrd":  {fields: map[string]any{"kernel": filepath.Join(img, "initrd.img")}, field: "kernel", path: filepath.Join(img, "initrd.img"), why: "not a file of its image"},
		"state a host file":          {save: map[string]any{"state": secret}, field: "state", path: secret, why: "not a file name in the save's folder"},
		"state dot-dot":              {save: map[string]any{"state": "../img/rootfs.ext4"}, field: "state", path: "../img/rootfs.ext4", why: "not a file name in the save's folder"},
		"disk a host file":           {save: map[string]any{"disk": "/etc/passwd"}, field: "disk", path: "/etc/passwd", why: "not a file name in the save's folder"},
		"disk a symlink out":         {save: map[string]any{"disk": "link"}, prepare: func(t *testing.T, dir string) { os.Symlink(secret, filepath.Join(dir, "link")) }, field: "disk", path: "link", why: "symbolic link"},
		"disk backed by a host file": {prepare: func(t *testing.T, dir string) { recreate(t, dir, "-b", secret, "-F", "raw") }, field: "disk", path: "disk.qcow2", why: "backing file"},
		"disk backed by another image": {prepare: func(t *testing.T, dir string) {
			recreate(t, dir, "-b", filepath.Join(other, "rootfs.ext4"), "-F", "raw")
		}, field: "disk", path: "disk.qcow2", why: "backing file"},
		"disk backed as another format": {prepare: func(t *testing.T, dir string) {
			recreate(t, dir, "-u", "-b", filepath.Join(img, "rootfs.ext4"), "-F", "vmdk")
		}, field: "disk", path: "disk.qcow2", why: "backing file"},
		"disk backed, format unsaid": {prepare: func(t *testing.T, dir string) {
			recreate(t, dir, "-b", filepath.Join(img, "rootfs.ext4"), "-F", "raw")
			dropBackingFormat(t, filepath.Join(dir, "disk.qcow2"))
		}, field: "disk", path: "disk.qcow2", why: "backing file"},
		"disk with a data file": {prepare: func(t *testing.T, dir string) { recreate(t, dir, "-o", "data_file="+secret+",data_file_raw=on") }, field: "disk", path: "disk.qcow2", why: "data file"},
		"token a symlink out": {prepare: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "token"))
			os.Symlink(secret, filepath.Join(dir, "token"))
		}, field: "token", path: "token", why: "symbolic link"},
		"console a symlink out": {prepare: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "console.log"))
			os.Symlink("/dev/zero", filepath.Join(dir, "console.log"))
		}, field: "console.log", path: "console.log", why: "symbolic link"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := saveDir(t, t.TempDir(), img, c.fields, c.save)
			if c.prepare != nil {
				c.prepare(t, dir)
			}
			mustRefuse(t, dir, c.field, c.path, c.why)
		})
	}
}

// recreate writes the save's disk again with other qemu-img create options.
func recreate(t *testing.T, dir string, args ...string) {
	t.Helper()
	os.Remove(filepath.Join(dir, "disk.qcow2"))
	qemuImg(t, append(append([]string{"create", "-q", "-f", "qcow2"}, args...), filepath.Join(dir, "disk.qcow2"), "1M")...)
}
