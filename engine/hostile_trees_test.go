package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	tt "github.com/quicksand-go/quicksand/internal/tree/tartest"
)

// hostState describes paths on the host as a test compares them before
// and after: type and mode, time, and a folder's entries.
func hostState(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			continue
		}
		fmt.Fprintf(&b, "%s %v %d", p, fi.Mode(), fi.ModTime().UnixNano())
		if fi.IsDir() {
			entries, _ := os.ReadDir(p)
			for _, e := range entries {
				fmt.Fprintf(&b, " %s", e.Name())
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// hostCanary makes a folder with a file in it, both with an old time, and
// returns the folder and its hostState.
func hostCanary(t *testing.T) (string, string) {
	canary := filepath.Join(t.TempDir(), "canary")
	os.Mkdir(canary, 0o700)
	os.WriteFile(filepath.Join(canary, "keep"), []byte("canary"), 0o600)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(filepath.Join(canary, "keep"), old, old)
	os.Chtimes(canary, old, old)
	return canary, hostState(canary, filepath.Join(canary, "keep"))
}

// A guest that lies in its answer to a download (its agent replaced by
// the liar) cannot change the host outside the download's destination: a
// symlink it sends is never followed, whatever comes after it; hard
// links, devices and fifos are refused; setuid, setgid and owners are
// dropped; a stream that ends early or never leaves nothing behind.
func TestALyingGuestCannotChangeHostFolders(t *testing.T) {
	sb := startSandbox(t, Config{})
	ctx := context.Background()
	l := startLiar(t, sb, "none")

	for _, c := range []struct {
		lie  string
		args func(canary string) []string // the lie's, given the canary's path
	}{
		// The issue's: the canary became 0777, time 0.
		{"tree-symlink-dir", func(canary string) []string { return []string{canary} }},
		{"tree-symlink-dir-file", func(canary string) []string { return []string{canary} }},
		{"tree-symlink-parent", func(canary string) []string { return []string{canary} }},
		{"tree-hardlink", func(canary string) []string { return []string{filepath.Join(canary, "keep")} }},
		{"tree-devices", func(string) []string { return nil }},
		{"tree-huge", func(string) []string { return nil }},
	} {
		t.Run(c.lie, func(t *testing.T) {
			canary, before := hostCanary(t)
			l.tell(t, c.lie, c.args(canary)...)
			parent := t.TempDir()
			err := sb.Download(ctx, "/etc", filepath.Join(parent, "download"), FileOptions{})
			if !errors.Is(err, ErrTransport) {
				t.Errorf("download: %v, want a transport error", err)
			}
			if after := hostState(canary, filepath.Join(canary, "keep")); after != before {
				t.Errorf("the canary changed:\n%swas\n%s", after, before)
			}
			if left, _ := os.ReadDir(parent); len(left) > 0 {
				t.Errorf("left beside the destination: %v", left)
			}
		})
	}

	t.Run("tree-endless", func(t *testing.T) {
		l.tell(t, "tree-endless")
		parent := t.TempDir()
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		start := time.Now()
		err := sb.Download(ctx, "/etc", filepath.Join(parent, "download"), FileOptions{})
		if err == nil || time.Since(start) > 30*time.Second {
			t.Errorf("an endless download: %v after %v", err, time.Since(start))
		}
		if left, _ := os.ReadDir(parent); len(left) > 0 {
			t.Errorf("left beside the destination: %v", left)
		}
	})

	t.Run("tree-setuid", func(t *testing.T) {
		l.tell(t, "tree-setuid")
		dest := filepath.Join(t.TempDir(), "download")
		if err := sb.Download(ctx, "/etc", dest, FileOptions{}); err != nil {
			t.Fatal(err)
		}
		tt.CheckUnpacked(t, dest, map[string]fs.FileMode{".": fs.ModeDir | 0o775, "rootsh": 0o755, "shared": fs.ModeDir | 0o777, "shared/f": 0o755})
	})

	// The liar was the one answering, and the guest works behind it.
	l.tell(t, "none")
	if r := run(t, sb, ExecRequest{Command: "echo behind the liar"}); string(r.Stdout) != "behind the liar\n" {
		t.Fatalf("through the liar: %+v", r)
	}
	if !strings.Contains(l.log(t), "lying (tree-symlink-dir)") {
		t.Errorf("the liar did not tell its lie:\n%s", l.log(t))
	}
}

// An upload cannot change the guest outside its destination either: the
// agent unpacks with the same rules (guest-agent/trees.go), whatever tar
// stream it is sent. A host tree that holds a symlink to / arrives as
// that symlink and nothing else.
func TestUploadsNeverFollowALinkTheyMade(t *testing.T) {
	sb := startSandbox(t, Config{})
	ctx := context.Background()
	// A canary folder made afresh for each case, and / put back: what a
	// case changed (on the old code) must not count against the next.
	guestState := func() string {
		// /tmp's time is left out: the upload's temporary folder beside
		// its destination is made and removed there, which may move it
		// into the next second.
		return mustSh(t, sb, "stat -c '%n %A %Y %U' / /etc /tmp/canary /tmp/canary/keep; stat -c '%n %A %U' /tmp; ls -a /tmp/canary /; ls -a /tmp | grep -c quicksand; true")
	}
	freshCanary := func(t *testing.T) string {
		mustSh(t, sb, "chmod 755 /; rm -rf /tmp/canary /tmp/.upload.quicksand-*; mkdir /tmp/canary && echo canary > /tmp/canary/keep && chmod 700 /tmp/canary && touch -d '2001-02-03 04:05:06' /tmp/canary/keep /tmp/canary")
		return guestState()
	}

	for name, stream := range map[string][]tt.Entry{
		"symlink to / then folder":           {tt.Symlink("x", "/"), tt.Dir("x", 0o777), tt.File("x/tmp/canary/planted", "planted", 0o4777)},
		"symlink to a folder then folder":    {tt.Symlink("x", "/tmp/canary"), tt.Dir("x", 0o777)},
		"symlinked parent":                   {tt.Symlink("a", "/tmp/canary"), tt.File("a/planted", "planted", 0o644)},
		"symlink then file of the same name": {tt.Symlink("x", "/tmp/canary/keep"), tt.File("x", "planted", 0o666)},
		"hard link":                          {tt.Link("h", "/etc/shadow")},
		"device":                             {tt.Node("mem", tar.TypeChar, 1, 1)},
	} {
		t.Run(name, func(t *testing.T) {
			before := freshCanary(t)
			dest := "/tmp/upload"
			_, err := sb.client.WriteTree(ctx, dest, "", bytes.NewReader(tt.Bytes(stream...)))
			var se *agent.StatusError
			if !errors.As(err, &se) || se.Status != 400 {
				t.Errorf("upload: %v, want a 400", err)
			}
			if after := guestState(); after != before {
				t.Errorf("the guest changed:\n%swas\n%s", after, before)
			}
			mustSh(t, sb, "rm -rf "+dest) // in case it was taken
		})
	}

	t.Run("a host tree with a symlink to /", func(t *testing.T) {
		before := freshCanary(t)
		src := filepath.Join(t.TempDir(), "tree")
		os.MkdirAll(filepath.Join(src, "etc"), 0o755)
		os.WriteFile(filepath.Join(src, "etc/passwd"), []byte("not the guest's\n"), 0o644)
		os.Symlink("/", filepath.Join(src, "root"))
		if err := sb.Upload(ctx, src, "/tmp/tree", FileOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := mustSh(t, sb, "readlink /tmp/tree/root; cat /tmp/tree/etc/passwd; grep -c '^root:' /etc/passwd"); got != "/\nnot the guest's\n1\n" {
			t.Errorf("in the guest: %q", got)
		}
		mustSh(t, sb, "rm -rf /tmp/tree")
		if after := guestState(); after != before {
			t.Errorf("the guest changed:\n%swas\n%s", after, before)
		}
	})
}
