package tree

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPackUnpackRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "a/empty"), 0o755)
	os.WriteFile(filepath.Join(src, "a/f.txt"), []byte("hello"), 0o640)
	os.WriteFile(filepath.Join(src, "x.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("a/f.txt", filepath.Join(src, "link"))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "a/f.txt"), old, old)
	var buf bytes.Buffer
	if err := Pack(&buf, src); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "dest")
	n, err := Unpack(dest, &buf)
	if err != nil || n != int64(len("hello")+len("#!/bin/sh\n")) {
		t.Fatalf("unpack: %d bytes, %v", n, err)
	}
	check := func(rel string, mode os.FileMode) os.FileInfo {
		fi, err := os.Lstat(filepath.Join(dest, rel))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, mode %v want %v", rel, err, fi.Mode(), mode)
		}
		return fi
	}
	if fi := check("a/f.txt", 0o640); !fi.ModTime().Equal(old) {
		t.Errorf("mtime %v, want %v", fi.ModTime(), old)
	}
	check("x.sh", 0o755)
	check("a/empty", os.ModeDir|0o755)
	if target, _ := os.Readlink(filepath.Join(dest, "link")); target != "a/f.txt" {
		t.Errorf("symlink target %q", target)
	}
	if _, err := Unpack(dest, bytes.NewReader(nil)); !errors.Is(err, ErrExists) {
		t.Errorf("unpacking onto an existing path: %v", err)
	}
}

func TestSingleFileIsAFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "one")
	os.WriteFile(src, []byte("x"), 0o600)
	var buf bytes.Buffer
	if err := Pack(&buf, src); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "copy")
	if _, err := Unpack(dest, &buf); err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(dest); err != nil || string(raw) != "x" {
		t.Fatalf("%q %v", raw, err)
	}
}

// Entries that would leave the destination, or are not files, folders or
// symlinks, fail the whole unpack, and nothing is left.
func TestUnpackRefusesEscapes(t *testing.T) {
	for _, h := range []*tar.Header{
		{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "/etc/evil", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "a/../../evil", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "dev", Typeflag: tar.TypeChar, Mode: 0o644},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(h)
		tw.Close()
		parent := t.TempDir()
		_, err := Unpack(filepath.Join(parent, "dest"), &buf)
		var bad *BadStreamError
		if !errors.As(err, &bad) {
			t.Errorf("%q: %v", h.Name, err)
		}
		if left, _ := os.ReadDir(parent); len(left) > 0 {
			t.Errorf("%q left %v", h.Name, left)
		}
	}
	// A symlink, then a file through it: the file may not follow the link.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/tmp"})
	tw.WriteHeader(&tar.Header{Name: "l/evil", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	if _, err := Unpack(filepath.Join(t.TempDir(), "dest"), &buf); err == nil {
		t.Error("a file was written through a symlink")
	}
	if _, err := os.Stat("/tmp/evil"); err == nil {
		t.Error("/tmp/evil was written")
	}
}

// A stream that stops between two entries, without tar's end-of-archive
// marker, is a packer that failed midway: refused, not taken for a
// smaller tree. Its last file ends with more zeros than the marker holds,
// which must not pass for one.
func TestUnpackRefusesAStreamCutShort(t *testing.T) {
	zeros := make([]byte, 4096)
	var whole bytes.Buffer
	tw := tar.NewWriter(&whole)
	tw.WriteHeader(&tar.Header{Name: "d/", Mode: 0o755, Typeflag: tar.TypeDir})
	tw.WriteHeader(&tar.Header{Name: "d/zeros", Mode: 0o644, Size: int64(len(zeros)), Typeflag: tar.TypeReg})
	tw.Write(zeros)
	tw.Flush()
	cut := append([]byte(nil), whole.Bytes()...)
	tw.Close()
	for _, c := range []struct {
		name   string
		stream []byte
		ok     bool
	}{
		{"whole", whole.Bytes(), true},
		{"cut after the last entry", cut, false},
		{"cut after half the marker", whole.Bytes()[:len(cut)+512], false},
		{"nothing at all", nil, false},
	} {
		dest := filepath.Join(t.TempDir(), "out")
		_, err := Unpack(dest, bytes.NewReader(c.stream))
		var bad *BadStreamError
		if c.ok != (err == nil) || !c.ok && !errors.As(err, &bad) {
			t.Errorf("%s: %v", c.name, err)
		}
		if _, serr := os.Lstat(dest); c.ok != (serr == nil) {
			t.Errorf("%s: the destination exists: %v", c.name, serr == nil)
		}
	}
}
