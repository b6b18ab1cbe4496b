package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A folder laid out as Quicksand's image packages are imports as one image
// per architecture, loadable, with Quicksand's agent and a qcow2 root disk.
func TestImportQuicksand(t *testing.T) {
	pkg := t.TempDir()
	imgs := filepath.Join(pkg, "images")
	os.MkdirAll(imgs, 0o755)
	for _, arch := range []string{"amd64", "arm64"} {
		base := filepath.Join(imgs, "alpine-3.23-"+arch)
		os.WriteFile(base+".qcow2", []byte("QFI\xfb\x00\x00\x00\x03"), 0o644)
		os.WriteFile(base+".kernel", []byte("k"), 0o644)
		os.WriteFile(base+".initrd", []byte("i"), 0o644)
	}
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
		if m.Arch != arch || m.Agent != AgentQuicksand || !strings.HasSuffix(m.RootFS, ".qcow2") || !strings.Contains(m.KernelArgs, "root=/dev/vda") {
			t.Errorf("%s: %+v", arch, m)
		}
	}
	if _, err := ImportQuicksand(t.TempDir(), dest, ""); err == nil || !strings.Contains(err.Error(), "no Quicksand image") {
		t.Errorf("an empty folder: %v", err)
	}
	if _, err := ImportQuicksand(pkg, dest, "../x"); err == nil {
		t.Error("a name that is a path was taken")
	}
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
