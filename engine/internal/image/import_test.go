package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// quicksandPackage makes a folder laid out as Quicksand's image packages
// are, with an image per architecture (kernel, initrd, qcow2 root disk).
func quicksandPackage(t *testing.T) string {
	t.Helper()
	pkg := t.TempDir()
	imgs := filepath.Join(pkg, "images")
	os.MkdirAll(imgs, 0o755)
	for _, arch := range []string{"amd64", "arm64"} {
		base := filepath.Join(imgs, "alpine-3.23-"+arch)
		qemuImg(t, "create", "-q", "-f", "qcow2", base+".qcow2", "1M")
		os.WriteFile(base+".kernel", []byte("k"), 0o644)
		os.WriteFile(base+".initrd", []byte("i"), 0o644)
	}
	return pkg
}

// A folder laid out as Quicksand's image packages are imports as one image
// per architecture, loadable, with Quicksand's agent and a qcow2 root disk,
// whose files are copies in its own folder.
func TestImportQuicksand(t *testing.T) {
	pkg := quicksandPackage(t)
	dest := t.TempDir()
	made, err := ImportQuicksand(pkg, dest, "")
	if err != nil || len(made) != 2 {
		t.Fatalf("import: %v %v", made, err)
	}
	for _, arch := range []string{"x86_64", "arm64"} {
		im, err := Load(filepath.Join(dest, "alpine-"+arch))
		if err != nil {
			t.Fatal(err)
		}
		m := im.Manifest
		if m.Arch != arch || m.Agent != AgentQuicksand || im.RootFormat != "qcow2" || !strings.Contains(m.KernelArgs, "root=/dev/vda") {
			t.Errorf("%s: %+v", arch, m)
		}
		for _, f := range []string{im.KernelPath(), im.InitrdPath(), im.RootFSPath()} {
			if filepath.Dir(f) != im.Dir {
				t.Errorf("%s: %s is not in the image's folder", arch, f)
			}
		}
	}
	if _, err := ImportQuicksand(t.TempDir(), dest, ""); err == nil || !strings.Contains(err.Error(), "no Quicksand image") {
		t.Errorf("an empty folder: %v", err)
	}
	if _, err := ImportQuicksand(pkg, dest, "../x"); err == nil {
		t.Error("a name that is a path was taken")
	}
	// Importing again replaces the imports, never an image of another kind.
	if _, err := ImportQuicksand(pkg, dest, ""); err != nil {
		t.Errorf("importing again: %v", err)
	}
	other := imageDir(t, t.TempDir(), "alpine-x86_64", nil)
	if _, err := ImportQuicksand(pkg, filepath.Dir(other), ""); err == nil || !strings.Contains(err.Error(), "not an imported Quicksand image") {
		t.Errorf("importing over an image of ours: %v", err)
	}
	if _, err := Load(other); err != nil {
		t.Errorf("the image imported over: %v", err)
	}
}

// An imported image named its package's files where they were: a package
// whose files are links to host files, or whose disk is backed by one,
// would have handed the guest those files. Such packages are refused and
// nothing of them is left; an image imported before (naming files by
// path) is refused with a hint to import it again.
func TestImportQuicksandTakesOnlyThePackagesOwnFiles(t *testing.T) {
	secret := hostSecret(t)
	for name, c := range map[string]struct {
		prepare func(t *testing.T, base string)
		why     string
	}{
		"a disk linked to a host file": {func(t *testing.T, base string) {
			os.Remove(base + ".qcow2")
			os.Symlink(secret, base+".qcow2")
		}, "symbolic link"},
		"a kernel linked to a host file": {func(t *testing.T, base string) {
			os.Remove(base + ".kernel")
			os.Symlink(secret, base+".kernel")
		}, "symbolic link"},
		"a disk backed by a host file": {func(t *testing.T, base string) {
			os.Remove(base + ".qcow2")
			qemuImg(t, "create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", base+".qcow2")
		}, "backing file"},
	} {
		t.Run(name, func(t *testing.T) {
			pkg := quicksandPackage(t)
			c.prepare(t, filepath.Join(pkg, "images", "alpine-3.23-amd64"))
			dest := t.TempDir()
			made, err := ImportQuicksand(pkg, dest, "")
			if err == nil || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("imported %v, error %v (want one saying %q)", made, err, c.why)
			}
			if _, err := os.Stat(filepath.Join(dest, "alpine-x86_64")); !os.IsNotExist(err) {
				t.Errorf("the refused image is there: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(dest, ".*")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
	t.Run("imported before", func(t *testing.T) {
		pkg := filepath.Join(quicksandPackage(t), "images", "alpine-3.23-amd64")
		dir := imageDir(t, t.TempDir(), "alpine-x86_64", map[string]any{
			"kernel": pkg + ".kernel", "initrd": pkg + ".initrd", "rootfs": pkg + ".qcow2", "agent": AgentQuicksand,
		})
		mustRefuse(t, dir, "kernel", pkg+".kernel", "not a file name in the image's folder", "import it again")
	})
}

func TestManifestArchAliases(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"k", "i", "disk"} {
		os.WriteFile(filepath.Join(dir, f), []byte("plain bytes"), 0o644)
	}
	for arch, want := range map[string]string{"amd64": "x86_64", "aarch64": "arm64", "x86_64": "x86_64"} {
		os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"name":"n","arch":"`+arch+`","kernel":"k","initrd":"i","rootfs":"disk"}`), 0o644)
		im, err := Load(dir)
		if err != nil || im.Manifest.Arch != want {
			t.Errorf("arch %s: %v %+v", arch, err, im)
		}
	}
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"name":"n","arch":"mips","kernel":"k","initrd":"i","rootfs":"disk"}`), 0o644)
	if _, err := Load(dir); err == nil {
		t.Error("an unknown arch was taken")
	}
}
