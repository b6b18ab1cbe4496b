package tree

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	tt "github.com/quicksand-go/quicksand/internal/tree/tartest"
)

// Tar streams made by hand, as a lying guest (a download) or a hostile
// caller (an upload) would send them. The whole unpack fails with a
// BadStreamError, nothing is left beside the destination, and nothing
// outside it changes: a canary folder beside it keeps its mode, its time
// and its contents.

// dir0777 is the folder entry of the attack: world-writable, time 0.
func dir0777(name string) tt.Entry { return tt.Dir(name, 0o777) }

// canary is a folder outside the destination, with a file in it, whose
// every detail the test checks afterwards.
type canary struct {
	dir, file string
	when      time.Time
}

func newCanary(t *testing.T) canary {
	c := canary{dir: filepath.Join(t.TempDir(), "canary")}
	c.file = filepath.Join(c.dir, "keep")
	c.when = c.create()
	return c
}

// create makes the canary and returns its time.
func (c canary) create() time.Time {
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Mkdir(c.dir, 0o700)
	os.WriteFile(c.file, []byte("canary"), 0o600)
	os.Chtimes(c.file, when, when)
	os.Chtimes(c.dir, when, when)
	return when
}

// check fails the test if anything about the canary changed.
func (c canary) check(t *testing.T) {
	t.Helper()
	for path, mode := range map[string]fs.FileMode{c.dir: fs.ModeDir | 0o700, c.file: 0o600} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Errorf("canary %s: %v", path, err)
			continue
		}
		if fi.Mode() != mode || !fi.ModTime().Equal(c.when) {
			t.Errorf("canary %s changed: mode %v time %v, was %v %v", path, fi.Mode(), fi.ModTime(), mode, c.when)
		}
	}
	if entries, _ := os.ReadDir(c.dir); len(entries) != 1 {
		t.Errorf("canary folder holds %d entries, was 1", len(entries))
	}
	if raw, _ := os.ReadFile(c.file); string(raw) != "canary" {
		t.Errorf("canary file now holds %q", raw)
	}
}

func TestUnpackNeverFollowsALinkItMade(t *testing.T) {
	cases := map[string]func(c canary) []tt.Entry{
		// The attack: the host folder became 0777, time 0.
		"symlink then folder": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Symlink("x", c.dir), dir0777("x")}
		},
		"symlink then folder then a file in it": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Symlink("x", c.dir), dir0777("x"), tt.File("x/new", "evil", 0o644)}
		},
		"symlink then file": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Symlink("x", c.file), tt.File("x", "evil", 0o666)}
		},
		"symlink to a file then folder": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Symlink("x", c.file), dir0777("x")}
		},
		"symlinked parent, a file": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Symlink("a", c.dir), tt.File("a/new", "evil", 0o644)}
		},
		"symlinked parent, a folder": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Symlink("a", c.dir), dir0777("a/sub")}
		},
		"symlinked parent, the file that is there": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Symlink("a", c.dir), tt.File("a/keep", "evil", 0o666)}
		},
		"symlinked grandparent": func(c canary) []tt.Entry {
			return []tt.Entry{dir0777("d"), tt.Symlink("d/a", filepath.Dir(c.dir)), dir0777("d/a/canary")}
		},
		"relative symlink out": func(c canary) []tt.Entry {
			// From <tmp>/x: <tmp> sits beside the destination, in its
			// own t.TempDir, so ../../<canary's TempDir>/canary.
			rel := filepath.Join("..", "..", filepath.Base(filepath.Dir(c.dir)), "canary")
			return []tt.Entry{tt.Symlink("x", rel), dir0777("x")}
		},
		"symlink then the same name as a symlink again": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Symlink("x", c.dir), tt.Symlink("x", c.file)}
		},
		"file then folder of the same name": func(c canary) []tt.Entry {
			return []tt.Entry{tt.File("x", "", 0o644), dir0777("x")}
		},
		"hard link to a file outside": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Link("h", c.file)}
		},
		"hard link to a symlink made before": func(c canary) []tt.Entry {
			return []tt.Entry{tt.Symlink("s", c.file), tt.Link("h", "s")}
		},
		"character device": func(canary) []tt.Entry {
			return []tt.Entry{tt.Node("null", tar.TypeChar, 1, 3)}
		},
		"block device": func(canary) []tt.Entry {
			return []tt.Entry{tt.Node("vda", tar.TypeBlock, 254, 0)}
		},
		"fifo": func(canary) []tt.Entry {
			return []tt.Entry{tt.Node("fifo", tar.TypeFifo, 0, 0)}
		},
		"dot dot": func(c canary) []tt.Entry {
			return []tt.Entry{tt.File("../canary/new", "evil", 0o644)}
		},
		"dot dot inside": func(c canary) []tt.Entry {
			return []tt.Entry{dir0777("a"), tt.File("a/../../canary/new", "evil", 0o644)}
		},
		"a file cut short": func(canary) []tt.Entry {
			e := tt.File("huge", "", 0o644)
			e.Size, e.Stream = 1<<40, io.LimitReader(tt.Zeros{}, 1<<20)
			return []tt.Entry{e}
		},
		"absolute name": func(c canary) []tt.Entry {
			return []tt.Entry{tt.File(c.dir+"/new", "evil", 0o644)}
		},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			c := newCanary(t)
			parent := t.TempDir()
			_, err := Unpack(filepath.Join(parent, "dest"), bytes.NewReader(tt.Bytes(entries(c)...)))
			var bad *BadStreamError
			if !errors.As(err, &bad) {
				t.Errorf("unpack: %v, want a BadStreamError", err)
			}
			c.check(t)
			if left, _ := os.ReadDir(parent); len(left) > 0 {
				t.Errorf("left %v", left)
			}
		})
	}
}

// The trees a guest sends may not carry setuid, setgid or owners onto the
// host: what is unpacked belongs to whoever unpacks it, with the
// permission bits alone.
func TestUnpackDropsSetuidSetgidAndOwners(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "dest")
	suid := tt.File("rootsh", "#!/bin/sh\n", 0o4755)
	suid.Uid, suid.Gid, suid.Uname = 1234, 1234, "root"
	sgidDir := tt.Dir("shared", 0o3775)
	sgidDir.Gid = 1234
	if _, err := Unpack(dest, bytes.NewReader(tt.Bytes(suid, sgidDir, tt.File("shared/f", "x", 0o6644)))); err != nil {
		t.Fatal(err)
	}
	tt.CheckUnpacked(t, dest, map[string]fs.FileMode{"rootsh": 0o755, "shared": fs.ModeDir | 0o775, "shared/f": 0o644})
}

// A folder without write permission for its owner still gets its
// contents (its mode is set once it is filled), and folders get their
// times after their contents.
func TestUnpackFillsReadOnlyFolders(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "dest")
	when := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	ro := tt.Dir("ro", 0o555)
	ro.ModTime = when
	if _, err := Unpack(dest, bytes.NewReader(tt.Bytes(ro, tt.File("ro/f", "x", 0o444), dir0777("ro/sub")))); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(filepath.Join(dest, "ro"), 0o755) // let t.TempDir clean up
	fi, err := os.Lstat(filepath.Join(dest, "ro"))
	if err != nil || fi.Mode() != fs.ModeDir|0o555 || !fi.ModTime().Equal(when) {
		t.Fatalf("ro: %v %v %v", err, fi.Mode(), fi.ModTime())
	}
	if raw, err := os.ReadFile(filepath.Join(dest, "ro/f")); err != nil || string(raw) != "x" {
		t.Fatalf("ro/f: %q %v", raw, err)
	}
}
