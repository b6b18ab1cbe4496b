package engine

// Image archives: one file that carries an image to another machine, made
// by PackImage and installed by InstallImage (`quicksand image pack` and
// `quicksand image install`, `make dist`).
//
// The file is a gzip-compressed tar holding, in order: archiveMarker (the
// format's version), manifest.json, the kernel (and the compressed kernel,
// when the image has one), the initrd, the root disk as a compressed qcow2
// (a raw root disk is mostly empty space), and last SHA256SUMS, the
// checksum of each of them. Beside it, FILE.sha256 holds the checksum of the
// whole file, for whoever moves it. InstallImage (imageinstall.go) takes
// nothing else.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/image"
	"github.com/quicksand-go/quicksand/engine/internal/qemu"
)

const (
	archiveMarker  = "quicksand-image"
	archiveVersion = "1"
	archiveSums    = "SHA256SUMS"
	archiveRootFS  = "rootfs.qcow2"
	// ArchiveSuffix is how image archive files end.
	ArchiveSuffix = ".qsimage"
	// installingSuffix marks the folders installs unpack into.
	installingSuffix = ".installing-"
)

// archiveEntryName is what a file in an archive may be called: a plain
// name, nothing that points elsewhere.
var archiveEntryName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// PackImage writes the image nameOrPath (found as Start finds it, dirs
// first) as an archive at out, and out+".sha256" beside it. It returns the
// archive's SHA-256. Saves and imported Quicksand images are not packed.
func PackImage(ctx context.Context, nameOrPath, out string, dirs ...string) (string, error) {
	img, err := image.Resolve(nameOrPath, image.SearchDirs(dirs))
	if err != nil {
		return "", newError(KindImageNotFound, err, "packing image %q", nameOrPath)
	}
	m := img.Manifest
	switch {
	case m.Save != nil:
		return "", newError(KindBadRequest, nil, "%s is a save, not an image: saves are not packed", img.Dir)
	case m.Agent == image.AgentQuicksand:
		return "", newError(KindBadRequest, nil, "%s is an imported Quicksand image: pack the package it came from", img.Dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".packing-*")
	if err != nil {
		return "", errors.Wrap(err, "packing")
	}
	defer os.RemoveAll(tmp)

	// The root disk as a compressed qcow2: the engine boots it as it is.
	disk := filepath.Join(tmp, archiveRootFS)
	if out, err := exec.CommandContext(ctx, qemuImg(qemu.Binary(m.Arch)), "convert", "-c", "-O", "qcow2", img.RootFSPath(), disk).CombinedOutput(); err != nil {
		return "", errors.Errorf("compressing the root disk: %v: %s", err, strings.TrimSpace(string(out)))
	}
	files := []struct{ name, path string }{
		{filepath.Base(m.Kernel), img.KernelPath()},
		{filepath.Base(m.Initrd), img.InitrdPath()},
		{archiveRootFS, disk},
	}
	// The compressed kernel, when it is another file (arm64 images boot
	// the compressed one: both names are the same file).
	if m.KernelCompressed != "" && img.File(m.KernelCompressed) != img.KernelPath() {
		files = append(files, struct{ name, path string }{filepath.Base(m.KernelCompressed), img.File(m.KernelCompressed)})
	}
	packed := m
	packed.Kernel, packed.Initrd, packed.RootFS = files[0].name, files[1].name, archiveRootFS
	if m.KernelCompressed != "" {
		packed.KernelCompressed = filepath.Base(m.KernelCompressed)
	}
	packed.Source = ""
	manifest, _ := json.MarshalIndent(packed, "", "  ")

	partial := filepath.Join(tmp, "archive")
	f, err := os.Create(partial)
	if err != nil {
		return "", errors.Wrap(err, "packing")
	}
	defer f.Close()
	aw := newArchiveWriter(f)
	err = aw.bytes(archiveMarker, []byte(archiveVersion+"\n"))
	if err == nil {
		err = aw.bytes("manifest.json", append(manifest, '\n'))
	}
	for _, file := range files {
		if err == nil {
			err = errors.Wrapf(aw.file(file.name, file.path), "%s", file.path)
		}
	}
	var sum string
	if err == nil {
		sum, err = aw.finish()
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(partial, out)
	}
	if err == nil {
		err = os.WriteFile(out+".sha256", []byte(sum+"  "+filepath.Base(out)+"\n"), 0o644)
	}
	if err != nil {
		return "", errors.Wrap(err, "packing")
	}
	return sum, nil
}

// archiveWriter writes an image archive: a gzip'd tar whose entries are
// summed as they go in, SHA256SUMS last, and the whole file summed too.
type archiveWriter struct {
	bw    *bufio.Writer
	zw    *gzip.Writer
	tw    *tar.Writer
	whole hash.Hash
	sums  strings.Builder
}

func newArchiveWriter(w io.Writer) *archiveWriter {
	a := &archiveWriter{whole: sha256.New()}
	a.bw = bufio.NewWriterSize(io.MultiWriter(w, a.whole), 1<<20)
	a.zw = gzip.NewWriter(a.bw)
	a.tw = tar.NewWriter(a.zw)
	return a
}

// entry adds a file of size bytes read from r, listed in SHA256SUMS when summed.
func (a *archiveWriter) entry(name string, r io.Reader, size int64, summed bool) error {
	if err := a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(a.tw, io.TeeReader(r, h)); err != nil {
		return err
	}
	if summed {
		fmt.Fprintf(&a.sums, "%x  %s\n", h.Sum(nil), name)
	}
	return nil
}

func (a *archiveWriter) bytes(name string, b []byte) error {
	return a.entry(name, bytes.NewReader(b), int64(len(b)), true)
}

func (a *archiveWriter) file(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return a.entry(name, f, fi.Size(), true)
}

// finish adds SHA256SUMS, ends the tar and gzip streams and returns the
// whole archive's SHA-256.
func (a *archiveWriter) finish() (string, error) {
	sums := a.sums.String()
	if err := a.entry(archiveSums, strings.NewReader(sums), int64(len(sums)), false); err != nil {
		return "", err
	}
	for _, c := range []io.Closer{a.tw, a.zw} {
		if err := c.Close(); err != nil {
			return "", err
		}
	}
	if err := a.bw.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(a.whole.Sum(nil)), nil
}
