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
// whole file, for whoever moves it. An install checks every file against
// SHA256SUMS (and gzip its own CRC), and unpacks into a locked folder that
// is renamed into place only once everything checked out: a corrupt or
// truncated archive leaves nothing behind.

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
	"log/slog"
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

// InstallImage installs the image archive at path into destDir (""
// means DefaultImageDir()) as <name>-<arch>, and returns its folder.
// progress, if not nil, is called as the archive is read (bytes read of
// total). An image of that name and architecture already there is an error:
// remove it first. A corrupt or truncated archive is refused, and nothing
// of it is left.
func InstallImage(ctx context.Context, path, destDir string, progress func(done, total int64)) (string, error) {
	if destDir == "" {
		destDir = DefaultImageDir()
	}
	f, err := os.Open(path)
	if err != nil {
		return "", newError(KindImageNotFound, err, "installing the image archive %s", path)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", newError(KindImageNotFound, err, "installing the image archive %s", path)
	}
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return "", errors.Wrap(err, "installing an image")
	}
	sweepStale(slog.New(slog.DiscardHandler), destDir, "*"+installingSuffix+"*")
	staging, err := makeLockedDir(destDir, "."+filepath.Base(path)+installingSuffix+"*")
	if err != nil {
		return "", errors.Wrap(err, "installing an image")
	}
	defer staging.remove() // nothing left once renamed into place

	bad := func(err error, format string, args ...any) (string, error) {
		return "", newError(KindBadRequest, err, "the image archive %s %s: refused, nothing installed", path, fmt.Sprintf(format, args...))
	}
	r := &progressReader{r: f, total: fi.Size(), report: progress, ctx: ctx}
	zr, err := gzip.NewReader(bufio.NewReaderSize(r, 1<<20))
	if err != nil {
		return bad(err, "is not an image archive (not gzip)")
	}
	got := map[string]string{} // name -> sha256
	var sums []byte
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return bad(err, "is corrupt or truncated")
		}
		switch {
		case h.Typeflag != tar.TypeReg || !archiveEntryName.MatchString(h.Name) || h.Name == lockName:
			return bad(nil, "holds %s, which no image archive has", image.Quote(h.Name))
		case got[h.Name] != "" || len(got) > 16:
			return bad(nil, "holds %s twice, or too many files", image.Quote(h.Name))
		case h.Name == archiveSums:
			if sums, err = io.ReadAll(io.LimitReader(tr, 1<<16)); err != nil {
				return bad(err, "is corrupt or truncated")
			}
			continue
		}
		sum, err := writeEntry(staging.file(h.Name), tr)
		if err != nil {
			if ctx.Err() != nil {
				return "", newError(KindCancelled, err, "installing the image archive %s", path)
			}
			return bad(err, "is corrupt or truncated (at %s)", h.Name)
		}
		got[h.Name] = sum
	}
	// The gzip trailer (CRC and size) is checked once the stream is read to its end.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return bad(err, "is corrupt or truncated")
	}
	if err := checkSums(sums, got); err != nil {
		return bad(err, "does not match its checksums")
	}
	if marker, _ := os.ReadFile(staging.file(archiveMarker)); strings.TrimSpace(string(marker)) != archiveVersion {
		return bad(nil, "is of a format this library does not know (%q)", strings.TrimSpace(string(marker)))
	}
	os.Remove(staging.file(archiveMarker))
	img, err := image.Load(staging.path)
	if err != nil {
		return bad(err, "holds no usable image")
	}
	m := img.Manifest
	if err := image.CheckName(m.Name); err != nil || m.Save != nil || m.Agent != "" {
		return bad(err, "holds no image of ours (name %s)", image.Quote(m.Name))
	}
	m.Source = "archive " + filepath.Base(path)
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(staging.file("manifest.json"), append(raw, '\n'), 0o644); err != nil {
		return "", errors.Wrap(err, "installing an image")
	}
	final := filepath.Join(destDir, m.Name+"-"+m.Arch)
	if _, err := os.Stat(final); err == nil {
		return "", newError(KindBadRequest, nil, "installing %s: %s is already installed at %s: remove it first (quicksand image remove %s)", path, m.Name+"-"+m.Arch, final, m.Name+"-"+m.Arch)
	}
	if err := os.Chmod(staging.path, 0o755); err != nil {
		return "", errors.Wrap(err, "installing an image")
	}
	if err := staging.renameTo(final); err != nil {
		return "", errors.Wrap(err, "installing an image")
	}
	return final, nil
}

// writeEntry writes r to a new file at path and returns its SHA-256.
func writeEntry(path string, r io.Reader) (string, error) {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return hex.EncodeToString(h.Sum(nil)), err
}

// checkSums checks that SHA256SUMS lists exactly the files got holds, each
// with its checksum.
func checkSums(sums []byte, got map[string]string) error {
	if len(sums) == 0 {
		return errors.New("it has no " + archiveSums)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			return errors.Errorf("a malformed line in %s: %q", archiveSums, line)
		}
		if got[name] == "" {
			return errors.Errorf("%s is listed but missing", image.Quote(name))
		}
		if got[name] != sum {
			return errors.Errorf("%s: checksum %s, listed %s", image.Quote(name), got[name], sum)
		}
		listed[name] = true
	}
	for name := range got {
		if !listed[name] {
			return errors.Errorf("%s is not listed", image.Quote(name))
		}
	}
	return nil
}

// progressReader reports how much of the archive was read, at most once
// per percent, and stops reading once ctx ends.
type progressReader struct {
	r           io.Reader
	ctx         context.Context
	done, total int64
	reported    int64
	report      func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.report != nil && (p.done-p.reported >= p.total/100 || err == io.EOF) {
		p.reported = p.done
		p.report(p.done, p.total)
	}
	return n, err
}
