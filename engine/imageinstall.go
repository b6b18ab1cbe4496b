package engine

// Installing an image archive (imagearchive.go). The archive may come from
// anyone, so an install takes from it only what an archive of ours holds:
// plain files with plain names (no path, link, device or folder; modes and
// owners are not kept), each within the room left on the disk, each listed
// with its right checksum in SHA256SUMS, and a manifest that names exactly
// the files that came in the archive, in the image's own folder (image.Load
// refuses any other path, a link, and a root disk that names another file).
// It unpacks into a locked folder that is renamed into place only once
// everything checked out: a refused, corrupt or truncated archive leaves
// nothing behind.

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/image"
)

// maxArchiveFiles bounds the files of an archive (it has five or six).
const maxArchiveFiles = 16

// smallEntries are the archive's files read whole into memory, and their
// most bytes.
var smallEntries = map[string]int64{archiveMarker: 64, "manifest.json": image.MaxManifestSize, archiveSums: 1 << 16}

// InstallImage installs the image archive at path into destDir (""
// means DefaultImageDir()) as <name>-<arch>, and returns its folder.
// progress, if not nil, is called as the archive is read (bytes read of
// total). An image of that name and architecture already there is an error:
// remove it first. A corrupt, truncated or hostile archive is refused, and
// nothing of it is left.
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
		if why := refuseEntry(h, got, staging.path); why != "" {
			return bad(nil, "holds %s, %s", image.Quote(h.Name), why)
		}
		if h.Name == archiveSums {
			if sums, err = io.ReadAll(tr); err != nil {
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
	if err := namesWhatItHolds(m, got); err != nil {
		return bad(err, "holds no usable image")
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

// refuseEntry says why the archive entry h cannot be unpacked into dir
// ("" if it can): it is not a plain file with a plain name, it came
// before, there are too many, it is a small file that is not small, or it
// would not fit in the room left on dir's disk (refused before a byte of
// it is written: its size is in its header, and tar reads no more).
func refuseEntry(h *tar.Header, got map[string]string, dir string) string {
	switch {
	case h.Typeflag != tar.TypeReg || !archiveEntryName.MatchString(h.Name) || h.Name == lockName:
		return "which no image archive has (only plain files with plain names)"
	case got[h.Name] != "" || len(got) >= maxArchiveFiles:
		return "twice, or too many files"
	case smallEntries[h.Name] > 0 && h.Size > smallEntries[h.Name]:
		return fmt.Sprintf("of %d bytes, larger than the %d bytes it may be", h.Size, smallEntries[h.Name])
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil {
		if free := int64(st.Bavail) * st.Bsize; h.Size > free {
			return fmt.Sprintf("of %d bytes, more than the %d bytes free in %s", h.Size, free, filepath.Dir(dir))
		}
	}
	return ""
}

// namesWhatItHolds checks that the files the manifest m names are the
// files that came in the archive (got, by name), and no others: not a file
// the install made, not the manifest.
func namesWhatItHolds(m image.Manifest, got map[string]string) error {
	named := map[string]bool{}
	for _, f := range []struct{ field, name string }{
		{"kernel", m.Kernel}, {"kernel_compressed", m.KernelCompressed}, {"initrd", m.Initrd}, {"rootfs", m.RootFS},
	} {
		if f.name == "" && f.field == "kernel_compressed" {
			continue
		}
		if got[f.name] == "" || f.name == "manifest.json" || f.name == archiveMarker {
			return errors.Errorf("its manifest's %s %s is not in the archive as an image file", f.field, image.Quote(f.name))
		}
		named[f.name] = true
	}
	for name := range got {
		if !named[name] && name != "manifest.json" && name != archiveMarker {
			return errors.Errorf("the archive holds %s, which its manifest does not name", image.Quote(name))
		}
	}
	return nil
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
// once, with its checksum.
func checkSums(sums []byte, got map[string]string) error {
	if len(sums) == 0 {
		return errors.New("it has no " + archiveSums)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		switch {
		case !ok:
			return errors.Errorf("a malformed line in %s: %s", archiveSums, image.Quote(line))
		case listed[name]:
			return errors.Errorf("%s is listed twice", image.Quote(name))
		case got[name] == "":
			return errors.Errorf("%s is listed but missing", image.Quote(name))
		case got[name] != sum:
			return errors.Errorf("%s: checksum %s, listed %s", image.Quote(name), got[name], image.Quote(sum))
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
