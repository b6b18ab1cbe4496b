package tree

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	tt "github.com/quicksand-go/quicksand/internal/tree/tartest"
)

// Any stream, unpacked beside a canary folder, leaves the canary as it
// was, and beside the destination nothing but the destination (on
// success) or nothing at all (on failure). The seeds are the tricks of
// TestUnpackNeverFollowsALinkItMade, pointing at the canary by a relative
// path (from the temporary folder, "../canary" is the canary).
func FuzzUnpack(f *testing.F) {
	for _, seed := range [][]tt.Entry{
		{tt.Symlink("x", "../canary"), tt.Dir("x", 0o777), tt.File("x/new", "evil", 0o4755)},
		{tt.Symlink("x", "../canary/keep"), tt.File("x", "evil", 0o666)},
		{tt.Symlink("a", "../canary"), tt.File("a/keep", "evil", 0o666)},
		{tt.Dir("d", 0o755), tt.Symlink("d/a", "../.."), tt.Dir("d/a/canary", 0o777)},
		{tt.Link("h", "../canary/keep")},
		{tt.Node("fifo", tar.TypeFifo, 0, 0)},
		{tt.File("../canary/new", "evil", 0o644)},
		{tt.Dir(".", 0o555), tt.Dir("a", 0o500), tt.File("a/f", "x", 0o400), tt.Symlink("l", "a")},
	} {
		f.Add(tt.Bytes(seed...))
	}
	base := f.TempDir()
	c := canary{dir: filepath.Join(base, "canary")}
	c.file = filepath.Join(c.dir, "keep")
	c.when = c.create()
	dest := filepath.Join(base, "dest")
	f.Fuzz(func(t *testing.T, stream []byte) {
		_, err := Unpack(dest, bytes.NewReader(stream))
		c.check(t)
		entries, _ := os.ReadDir(base)
		if want := 1 + btoi(err == nil); len(entries) != want {
			t.Fatalf("unpack (%v) left %d entries beside the canary", err, len(entries)-1)
		}
		makeRemovable(dest)
		os.RemoveAll(dest)
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// makeRemovable gives every folder under root its owner's permissions back
// (a tree may hold read-only ones), so that it can be removed.
func makeRemovable(root string) {
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
}
