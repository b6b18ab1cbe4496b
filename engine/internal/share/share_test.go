package share

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// serveOnPipe shares dir on one end of a pipe, served until the test ends,
// and returns the guest's end.
func serveOnPipe(t *testing.T, dir string, readOnly bool) (net.Conn, *Folder) {
	t.Helper()
	folder, err := Open(dir, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe()
	go folder.NewSession(server).Serve()
	t.Cleanup(func() {
		client.Close()
		folder.Close()
	})
	return client, folder
}

// serve shares dir over a socket pair and returns the root as a 9P client
// sees it (the library's own client, speaking the wire protocol).
func serve(t *testing.T, dir string, readOnly bool) (p9.File, *Folder) {
	t.Helper()
	conn, folder := serveOnPipe(t, dir, readOnly)
	c, err := p9.NewClient(conn, p9.WithMessageSize(MaxMessage))
	if err != nil {
		t.Fatal(err)
	}
	root, err := c.Attach("/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return root, folder
}

func errnoOf(err error) linux.Errno { return linux.ExtractErrno(err) }

// walk returns the file at names (a copy of root for none: a create turns
// the fid it is sent on into the new file, as 9P has it).
func walk(t *testing.T, root p9.File, names ...string) p9.File {
	t.Helper()
	_, f, err := root.Walk(names)
	if err != nil {
		t.Fatalf("walk %v: %v", names, err)
	}
	return f
}

func TestReadWriteAndList(t *testing.T) {
	dir := t.TempDir()
	root, _ := serve(t, dir, false)
	f, _, _, err := walk(t, root).Create("new", p9.ReadWrite, 0o640, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB: several messages
	for off := 0; off < len(data); {
		n, err := f.WriteAt(data[off:min(len(data), off+MaxMessage/2)], int64(off))
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	f.Close()
	got, err := os.ReadFile(filepath.Join(dir, "new"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("host sees %d bytes (%v), want %d", len(got), err, len(data))
	}
	if fi, _ := os.Stat(filepath.Join(dir, "new")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640 (the host's umask must not apply)", fi.Mode().Perm())
	}
	if _, err := root.Mkdir("sub", 0o755, 0, 0); err != nil {
		t.Fatal(err)
	}
	d := walk(t, root)
	if _, _, err := d.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	ents, err := d.Readdir(0, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name] = true
	}
	if !names["new"] || !names["sub"] {
		t.Fatalf("listing %v lacks new or sub", ents)
	}
	back := make([]byte, 10)
	rf := walk(t, root, "new")
	if _, _, err := rf.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	if n, err := rf.ReadAt(back, 5); err != nil || string(back[:n]) != "5678901234" {
		t.Fatalf("read %q, %v", back[:n], err)
	}
}

// TestTheGuestCannotLeaveTheFolder plays a hostile guest: every way out of
// the shared folder through the protocol is refused, and nothing outside
// is read or changed.
func TestTheGuestCannotLeaveTheFolder(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("host secret"), 0o600)
	dir := filepath.Join(outside, "shared")
	os.Mkdir(dir, 0o755)
	os.Symlink(outside, filepath.Join(dir, "up"))        // a symlink the host left
	os.Symlink(secret, filepath.Join(dir, "secretlink")) // to a file outside
	root, _ := serve(t, dir, false)

	for _, names := range [][]string{{".."}, {"."}, {"up", "secret"}, {"../secret"}, {"up/secret"}, {""}} {
		// A walk that stops short names fewer qids than names (9P's
		// partial walk) and makes no new fid.
		if qids, f, err := root.Walk(names); err == nil && len(qids) == len(names) {
			t.Errorf("walk %q succeeded", names)
		} else if err == nil {
			if _, _, _, err := f.GetAttr(p9.AttrMaskAll); err == nil {
				t.Errorf("walk %q stopped short but its fid works", names)
			}
		}
	}
	// A symlink is the link itself: opening it is refused, reading it
	// gives its text, which the guest resolves in its own file system.
	link := walk(t, root, "secretlink")
	if _, _, err := link.Open(p9.ReadOnly); err == nil {
		t.Error("opened a symlink that points out of the folder")
	}
	if target, err := link.Readlink(); err != nil || target != secret {
		t.Errorf("readlink = %q, %v", target, err)
	}
	// Changing a symlink's attributes must not reach what it points to.
	before, _ := os.Stat(secret)
	link.SetAttr(p9.SetAttrMask{Permissions: true, Size: true}, p9.SetAttr{Permissions: 0o777, Size: 0})
	if after, _ := os.Stat(secret); after.Mode() != before.Mode() || after.Size() != before.Size() {
		t.Errorf("setattr through a symlink changed the file outside: %v %d", after.Mode(), after.Size())
	}
	// A guest-made symlink, then a create or walk through it.
	if _, err := root.Symlink(outside, "mine", 0, 0); err != nil {
		t.Fatal(err)
	}
	mine := walk(t, root, "mine")
	if _, _, _, err := mine.Create("planted", p9.WriteOnly, 0o644, 0, 0); err == nil {
		t.Error("created a file through a symlink")
	}
	if _, err := mine.Mkdir("planted", 0o755, 0, 0); err == nil {
		t.Error("made a folder through a symlink")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); err == nil {
		t.Error("a file appeared outside the folder")
	}
	// Names with a slash or dots are refused by every operation that takes one.
	for _, name := range []string{"../escaped", "..", "a/b", ""} {
		if _, _, _, err := walk(t, root).Create(name, p9.WriteOnly, 0o644, 0, 0); err == nil {
			t.Errorf("create %q succeeded", name)
		}
		if err := root.RenameAt("secretlink", root, name); err == nil {
			t.Errorf("rename to %q succeeded", name)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "escaped")); err == nil {
		t.Error("a file escaped the folder")
	}
	// Device nodes are never made, nor opened when the host has one.
	if _, err := root.Mknod("dev", p9.ModeCharacterDevice|0o666, 1, 3, 0, 0); errnoOf(err) != linux.EPERM {
		t.Errorf("mknod of a device: %v, want EPERM", err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := walk(t, root, "fifo").Open(p9.ReadOnly); done <- err }()
	select {
	case err := <-done:
		if errnoOf(err) != linux.EPERM {
			t.Errorf("opening a host fifo: %v, want EPERM", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("opening a host fifo blocked the server")
	}
	// A hard link can only be made to a file of the folder (the guest has no
	// way to name another); linking one in makes a link inside.
	os.WriteFile(filepath.Join(dir, "inside"), []byte("x"), 0o644)
	if err := root.Link(walk(t, root, "inside"), "inside2"); err != nil {
		t.Errorf("hard link inside the folder: %v", err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "host secret" {
		t.Errorf("the secret outside changed: %q", b)
	}
}

func TestReadOnlyIsEnforcedByTheHost(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), []byte("keep"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	root, _ := serve(t, dir, true)
	f := walk(t, root, "file")
	checks := map[string]error{}
	_, _, checks["open for writing"] = walk(t, root, "file").Open(p9.WriteOnly)
	_, _, checks["open read-write"] = walk(t, root, "file").Open(p9.ReadWrite)
	_, _, checks["open with truncate"] = walk(t, root, "file").Open(p9.ReadOnly | openTruncate)
	_, _, _, checks["create"] = walk(t, root).Create("new", p9.WriteOnly, 0o644, 0, 0)
	_, checks["mkdir"] = root.Mkdir("d", 0o755, 0, 0)
	_, checks["symlink"] = root.Symlink("x", "l", 0, 0)
	_, checks["mknod"] = root.Mknod("p", p9.ModeNamedPipe|0o644, 0, 0, 0, 0)
	checks["link"] = root.Link(f, "hard")
	checks["rename"] = root.RenameAt("file", root, "moved")
	checks["unlink"] = root.UnlinkAt("file", 0)
	checks["rmdir"] = root.UnlinkAt("sub", unix.AT_REMOVEDIR)
	checks["chmod"] = f.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777})
	checks["truncate"] = f.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{Size: 0})
	checks["utimes"] = f.SetAttr(p9.SetAttrMask{MTime: true}, p9.SetAttr{})
	for what, err := range checks {
		if errnoOf(err) != linux.EROFS {
			t.Errorf("%s on a read-only folder: %v, want EROFS", what, err)
		}
	}
	// A file opened for reading cannot be written through either.
	r := walk(t, root, "file")
	if _, _, err := r.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteAt([]byte("x"), 0); err == nil {
		t.Error("wrote through a read-only open")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "file")); string(b) != "keep" {
		t.Errorf("file now %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the folder now holds %d entries, want 2", len(entries))
	}
}

// TestFilesPerMountAreBounded: a guest that holds on to files cannot use up
// the host process's descriptors.
func TestFilesPerMountAreBounded(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	root, folder := serve(t, dir, false)
	var held []p9.File
	var err error
	for i := 0; i < MaxFiles+10; i++ {
		var f p9.File
		if _, f, err = root.Walk([]string{"f"}); err != nil {
			break
		}
		held = append(held, f)
	}
	if errnoOf(err) != linux.EMFILE {
		t.Fatalf("after %d walks: %v, want EMFILE", len(held), err)
	}
	if n := folder.HeldFiles(); n > MaxFiles {
		t.Fatalf("%d descriptors held, bound %d", n, MaxFiles)
	}
	for _, f := range held {
		f.Close()
	}
	if _, _, err := root.Walk([]string{"f"}); err != nil {
		t.Fatalf("after letting go: %v", err)
	}
}

// TestOversizedMessageEndsTheConnection: the window refuses a message
// larger than the mount's size before reading it.
func TestOversizedMessageEndsTheConnection(t *testing.T) {
	folder, err := Open(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer folder.Close()
	server, client := net.Pipe()
	done := make(chan struct{})
	go func() { folder.NewSession(server).Serve(); close(done) }()
	var hdr [7]byte
	binary.LittleEndian.PutUint32(hdr[:], 1<<30)
	go client.Write(hdr[:])
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the server waited for a 1 GiB message")
	}
	if _, err := client.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open: %v", err)
	}
}
