package image

// What a manifest may name. An image's folder may come from anyone (an
// archive, a copied folder, a package): whatever it says, the files the
// engine hands QEMU must be that folder's own. Otherwise a manifest with
// "rootfs": "/etc/shadow" (or "../../etc/shadow", or a link to it, or
// another image's disk) gives the guest a host file as its disk.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// MaxManifestSize bounds manifest.json: it is read whole into memory.
const MaxManifestSize = 1 << 20

// readManifest reads dir's manifest.json, which must be a regular file of
// the folder (not a link), of at most MaxManifestSize. A missing manifest
// gives an error for which os.IsNotExist is true. A fifo in its place is
// refused at once: it is opened without waiting for a writer.
func readManifest(dir string) ([]byte, error) {
	p := filepath.Join(dir, "manifest.json")
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("manifest.json is a symbolic link (to %s): an image's files must be its own", Quote(linkTarget(p)))
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("manifest.json is not a regular file (%s)", fi.Mode().Type())
	}
	raw, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxManifestSize {
		return nil, fmt.Errorf("manifest.json is larger than %d bytes", MaxManifestSize)
	}
	return raw, nil
}

// ownFile is the path of the file a manifest's field names in dir (an
// image's or a save's folder, as kind says): a plain file name, never a
// path (absolute, with '/', or '..'), and a regular file of the folder,
// never a symbolic link (wherever it points: a link inside the folder
// today may be swapped for one out of it) nor a device, fifo or folder.
func ownFile(dir, kind, field, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("names no %s", field)
	}
	if name != filepath.Base(name) || name == "." || name == ".." {
		return "", fmt.Errorf("%s %s is not a file name in the %s's folder: it names only its own files (no path, no '..')", field, Quote(name), kind)
	}
	p := filepath.Join(dir, name)
	if err := regularFile(p); err != nil {
		return "", fmt.Errorf("%s %s %w", field, Quote(name), err)
	}
	return p, nil
}

// regularFile says why the file at p is not a regular file, without
// following a link, in words that follow its name.
func regularFile(p string) error {
	fi, err := os.Lstat(p)
	switch {
	case err != nil:
		return fmt.Errorf("cannot be read: %s", errorsNoNotExist(err))
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("is a symbolic link (to %s): its files must be its own, not links", Quote(linkTarget(p)))
	case !fi.Mode().IsRegular():
		return fmt.Errorf("is not a regular file (%s)", fi.Mode().Type())
	}
	return nil
}

func linkTarget(p string) string {
	target, _ := os.Readlink(p)
	return target
}

// checkImageFiles checks the files an image's manifest names and returns
// its root disk's format.
func checkImageFiles(im *Image) (string, error) {
	m := im.Manifest
	for _, f := range []struct{ field, name string }{{"kernel", m.Kernel}, {"initrd", m.Initrd}, {"rootfs", m.RootFS}} {
		if _, err := ownFile(im.Dir, "image", f.field, f.name); err != nil {
			return "", err
		}
	}
	if m.KernelCompressed != "" {
		if _, err := ownFile(im.Dir, "image", "kernel_compressed", m.KernelCompressed); err != nil {
			return "", err
		}
	}
	return rootDiskFormat(im.RootFSPath(), m.RootFS)
}

// checkSaveFiles checks what a save names: its image's kernel, initrd and
// root disk by path (engine.Sandbox.Save writes them so), which must be
// those of one image that loads as any image does; its state and disk,
// its own files; and every file in its folder (the engine also reads its
// token and console log there), regular files, not links. Its disk must
// be a qcow2 over that image's root disk, in its format, and nothing else.
// It returns the image's root disk format.
func checkSaveFiles(im *Image) (string, error) {
	m, s := im.Manifest, im.Manifest.Save
	// The image's folder is the one two of the three share, so that the
	// odd one out is the one the error names.
	imgDir := filepath.Dir(m.RootFS)
	if filepath.Dir(m.Kernel) == filepath.Dir(m.Initrd) {
		imgDir = filepath.Dir(m.Kernel)
	}
	for _, f := range []struct{ field, name string }{{"kernel", m.Kernel}, {"initrd", m.Initrd}, {"rootfs", m.RootFS}} {
		if !filepath.IsAbs(f.name) || filepath.Dir(f.name) != imgDir {
			return "", fmt.Errorf("%s %s is not a file of its image: a save names its image's kernel, initrd and root disk by path, all in the image's folder", f.field, Quote(f.name))
		}
	}
	base, err := load(imgDir, false)
	if err != nil {
		return "", fmt.Errorf("its image: %w", err)
	}
	for _, f := range []struct{ field, name, want string }{
		{"kernel", m.Kernel, base.KernelPath()}, {"initrd", m.Initrd, base.InitrdPath()}, {"rootfs", m.RootFS, base.RootFSPath()},
	} {
		if f.name != f.want {
			return "", fmt.Errorf("%s %s is not a file of its image (its %s is %s)", f.field, Quote(f.name), f.field, Quote(f.want))
		}
	}
	entries, err := os.ReadDir(im.Dir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if err := regularFile(filepath.Join(im.Dir, e.Name())); err != nil {
			return "", fmt.Errorf("%s %w", Quote(e.Name()), err)
		}
	}
	if _, err := ownFile(im.Dir, "save", "state", s.State); err != nil {
		return "", err
	}
	disk, err := ownFile(im.Dir, "save", "disk", s.Disk)
	if err != nil {
		return "", err
	}
	info, err := readDisk(disk)
	if err != nil {
		return "", fmt.Errorf("disk %s: %w", Quote(s.Disk), err)
	}
	if info.format != "qcow2" || info.backing != base.RootFSPath() || info.backingFormat != base.RootFormat || info.dataFile {
		return "", fmt.Errorf("disk %s must be a qcow2 over its image's root disk and nothing else: %s (its image's root disk is %s, %s)", Quote(s.Disk), info, Quote(base.RootFSPath()), base.RootFormat)
	}
	return base.RootFormat, nil
}
