// Package tartest writes tar streams by hand, as a hostile side would send
// them (symlinks followed by entries of the same name, hard links,
// devices, sizes that lie), for the tests of internal/tree, of the engine
// and of the liar agent (engine/testdata/liar).
package tartest

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Entry is one tar entry. A regular file's content is Body, or Stream when
// set (then the header's Size is sent as it is: it may lie).
type Entry struct {
	tar.Header
	Body   string
	Stream io.Reader
}

// Epoch is time 0, the attack's time stamp.
var Epoch = time.Unix(0, 0)

// Symlink is an entry name -> target.
func Symlink(name, target string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}}
}

// Dir is a folder entry.
func Dir(name string, mode int64) Entry {
	return Entry{Header: tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode, ModTime: Epoch}}
}

// File is a regular file entry holding body.
func File(name, body string, mode int64) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, ModTime: Epoch}, Body: body}
}

// Link is a hard link entry name -> target.
func Link(name, target string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}}
}

// Node is a device or fifo entry (typeflag tar.TypeChar, TypeBlock or
// TypeFifo).
func Node(name string, typeflag byte, major, minor int64) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: typeflag, Mode: 0o666, Devmajor: major, Devminor: minor}}
}

// Write writes entries to w as a tar stream. An entry whose Stream ends
// before its Size cuts the stream short there, as a liar would.
func Write(w io.Writer, entries ...Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := e.Header
		if e.Stream == nil && h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			return err
		}
		var err error
		if e.Stream != nil {
			_, err = io.Copy(tw, e.Stream)
		} else {
			_, err = io.WriteString(tw, e.Body)
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// Bytes is the tar stream of entries, as far as Write wrote it (a stream
// cut short is one of the lies).
func Bytes(entries ...Entry) []byte {
	var buf bytes.Buffer
	Write(&buf, entries...)
	return buf.Bytes()
}

// Zeros reads as zero bytes without end.
type Zeros struct{}

func (Zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// CheckUnpacked fails t for each path below dir (relative, "." for dir)
// whose type and mode are not want's, or that does not belong to this
// process's user: what a tree unpacks is its unpacker's, with the
// permission bits alone.
func CheckUnpacked(t testing.TB, dir string, want map[string]fs.FileMode) {
	t.Helper()
	for rel, mode := range want {
		fi, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, mode %v, want %v", rel, err, fi.Mode(), mode)
			continue
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
			t.Errorf("%s belongs to %d:%d, not to the unpacker %d:%d", rel, st.Uid, st.Gid, os.Getuid(), os.Getgid())
		}
	}
}
