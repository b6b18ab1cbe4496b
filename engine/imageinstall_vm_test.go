package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tinyRootDisk makes an ext4 root disk at path that the initrd switches to
// and the agent runs commands on (busybox as the shell), holding files.
func tinyRootDisk(t *testing.T, path string, files map[string]string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "dev", "proc", "sys", "run", "tmp", "root", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox (busybox-static) is needed: %v", err)
	}
	raw, _ := os.ReadFile(busybox)
	os.WriteFile(filepath.Join(root, "bin", "busybox"), raw, 0o755)
	for _, applet := range []string{"sh", "cat", "head"} {
		os.Symlink("busybox", filepath.Join(root, "bin", applet))
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	for name, content := range files {
		os.WriteFile(filepath.Join(root, name), []byte(content), 0o644)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", root, path, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
}

// An image archive installed as a user installs one (InstallImage) cannot
// hand the guest a file of the host's: a manifest naming a host disk by
// path or by '..' is refused at install, and a folder placed by hand
// naming one is refused by Start before any QEMU runs; a root disk that
// QEMU would take for a VMDK descriptor naming a host disk boots as the
// raw bytes it is. A good archive still installs and boots. On the old
// code each hostile one booted, and the guest read the host's file.
func TestHostileArchiveCannotHandTheGuestAHostFile(t *testing.T) {
	debian, err := FindImage(DefaultImage)
	if err != nil {
		t.Fatal(err)
	}
	// The compressed kernel: a smaller archive, the same boot.
	kernel, _ := os.ReadFile(debian.KernelCompressed)
	initrd, _ := os.ReadFile(debian.Initrd)
	work := t.TempDir()
	dst := filepath.Join(work, "images")
	const secret = "the host's private disk"
	hostDisk := filepath.Join(work, "host-private.ext4")
	tinyRootDisk(t, hostDisk, map[string]string{"secret.txt": secret})
	hostDiskBytes, _ := os.ReadFile(hostDisk)

	// archive writes an archive of an image named name whose manifest
	// names rootfs, holding the debian kernel and initrd and disk (as
	// rootfs.ext4) when it is not nil.
	archive := func(name, rootfs string, disk []byte) string {
		files := []testEntry{
			file(archiveMarker, []byte(archiveVersion+"\n")),
			file("manifest.json", []byte(fmt.Sprintf(`{"name": %q, "arch": %q, "kernel": "vmlinuz", "initrd": "initrd.img", "rootfs": %q, "kernel_args": %q}`,
				name, HostArch(), rootfs, debian.KernelArgs))),
			file("vmlinuz", kernel),
			file("initrd.img", initrd),
		}
		if disk != nil {
			files = append(files, file("rootfs.ext4", disk))
		}
		return writeArchive(t, withSums(files...)...)
	}
	// theGuestReadsTheSecret boots the image and says whether the guest
	// found the host's secret on its disk.
	theGuestReadsTheSecret := func(t *testing.T, img string) bool {
		t.Helper()
		sb, err := Start(context.Background(), Config{Image: img, ImageDirs: []string{dst}, ColdBoot: true})
		if err != nil {
			t.Logf("it does not boot: %v", err)
			return false
		}
		defer sb.Stop(context.Background())
		r, err := sb.Execute(context.Background(), ExecRequest{Command: "cat /secret.txt"})
		return err == nil && strings.Contains(string(r.Stdout), secret)
	}

	for name, rootfs := range map[string]string{
		"by path":                           hostDisk,
		"by '..'":                           "../../host-private.ext4", // from the image's folder in work/images
		"by '..' through the images folder": "../../images/../host-private.ext4",
	} {
		t.Run("the manifest names a host disk "+name, func(t *testing.T) {
			dir, err := InstallImage(context.Background(), archive("evil", rootfs, nil), dst, nil)
			if err == nil {
				read := theGuestReadsTheSecret(t, "evil")
				RemoveImage("evil", dst)
				t.Fatalf("installed at %s (the guest read the host's file: %v)", dir, read)
			}
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "rootfs") || !strings.Contains(err.Error(), "not a file name in the image's folder") {
				t.Fatalf("refused, but not saying why: %v", err)
			}
			if _, err := FindImage("evil", dst); !errors.Is(err, ErrImageNotFound) {
				t.Fatalf("the refused image is found: %v", err)
			}
		})
	}

	t.Run("a folder placed by hand names a host disk", func(t *testing.T) {
		placed := filepath.Join(work, "placed")
		os.MkdirAll(placed, 0o755)
		os.WriteFile(filepath.Join(placed, "vmlinuz"), kernel, 0o644)
		os.WriteFile(filepath.Join(placed, "initrd.img"), initrd, 0o644)
		os.WriteFile(filepath.Join(placed, "manifest.json"), []byte(fmt.Sprintf(`{"name": "placed", "arch": %q, "kernel": "vmlinuz", "initrd": "initrd.img", "rootfs": %q, "kernel_args": %q}`,
			HostArch(), hostDisk, debian.KernelArgs)), 0o644)
		workDir := t.TempDir()
		sb, err := Start(context.Background(), Config{Image: placed, ColdBoot: true, WorkDir: workDir})
		if err == nil {
			defer sb.Stop(context.Background())
			r, _ := sb.Execute(context.Background(), ExecRequest{Command: "cat /secret.txt"})
			t.Fatalf("it started; the guest read %q", r.Stdout)
		}
		if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "not a file name in the image's folder") {
			t.Fatalf("refused, but not saying why: %v", err)
		}
		// No sandbox folder was made: QEMU never ran.
		if left, _ := os.ReadDir(workDir); len(left) > 0 {
			t.Fatalf("a sandbox was set up: %v", left)
		}
	})

	t.Run("the root disk is a VMDK descriptor naming a host disk", func(t *testing.T) {
		descriptor := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW %d FLAT %q 0\n",
			len(hostDiskBytes)/512, hostDisk)
		if _, err := InstallImage(context.Background(), archive("vmdk", "rootfs.ext4", []byte(descriptor)), dst, nil); err != nil {
			t.Fatalf("a raw disk of text is an image like any: %v", err)
		}
		defer RemoveImage("vmdk", dst)
		if theGuestReadsTheSecret(t, "vmdk") {
			t.Fatal("the guest read the host's disk through the VMDK descriptor")
		}
	})

	t.Run("a good archive installs and boots", func(t *testing.T) {
		src := filepath.Join(work, "src", "good-"+HostArch())
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "vmlinuz"), kernel, 0o644)
		os.WriteFile(filepath.Join(src, "initrd.img"), initrd, 0o644)
		tinyRootDisk(t, filepath.Join(src, "rootfs.ext4"), map[string]string{"good.txt": "from the archive"})
		os.WriteFile(filepath.Join(src, "manifest.json"), []byte(fmt.Sprintf(`{"name": "good", "arch": %q, "kernel": "vmlinuz", "initrd": "initrd.img", "rootfs": "rootfs.ext4", "kernel_args": %q}`,
			HostArch(), debian.KernelArgs)), 0o644)
		packed := filepath.Join(work, "good"+ArchiveSuffix)
		if _, err := PackImage(context.Background(), src, packed); err != nil {
			t.Fatal(err)
		}
		if _, err := InstallImage(context.Background(), packed, dst, nil); err != nil {
			t.Fatal(err)
		}
		sb := startSandbox(t, Config{Image: "good", ImageDirs: []string{dst}, ColdBoot: true})
		if r := run(t, sb, ExecRequest{Command: "cat /good.txt"}); string(r.Stdout) != "from the archive" {
			t.Fatalf("the guest reads %q", r.Stdout)
		}
	})
}
