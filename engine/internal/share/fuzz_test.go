package share

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// msg9p builds one 9P message: size, type, tag, body.
func msg9p(typ byte, tag uint16, body ...any) []byte {
	var b bytes.Buffer
	for _, v := range body {
		switch v := v.(type) {
		case []byte:
			b.Write(v)
		case string:
			binary.Write(&b, binary.LittleEndian, uint16(len(v)))
			b.WriteString(v)
		default:
			binary.Write(&b, binary.LittleEndian, v)
		}
	}
	out := make([]byte, 7, 7+b.Len())
	binary.LittleEndian.PutUint32(out, uint32(7+b.Len()))
	out[4] = typ
	binary.LittleEndian.PutUint16(out[5:], tag)
	return append(out, b.Bytes()...)
}

// FuzzGuestMessages feeds the server what a hostile guest could send: it
// must neither panic, nor hang, nor touch anything outside the folder.
func FuzzGuestMessages(f *testing.F) {
	const noFID = uint32(0xFFFFFFFF)
	version := msg9p(100, 0xFFFF, uint32(MaxMessage), "9P2000.L")
	attach := msg9p(104, 1, uint32(1), noFID, "root", "", uint32(0))
	session := bytes.Join([][]byte{
		version, attach,
		msg9p(110, 2, uint32(1), uint32(2), uint16(1), "f"),                 // walk f
		msg9p(12, 3, uint32(2), uint32(2)),                                  // lopen read-write
		msg9p(118, 4, uint32(2), uint64(0), uint32(3), []byte("abc")),       // write
		msg9p(116, 5, uint32(2), uint64(0), uint32(100)),                    // read
		msg9p(24, 6, uint32(2), uint64(0x3fff)),                             // getattr
		msg9p(110, 7, uint32(1), uint32(3), uint16(1), ".."),                // walk ..
		msg9p(14, 8, uint32(1), "new", uint32(2), uint32(0o644), uint32(0)), // lcreate
		msg9p(16, 9, uint32(1), "ln", "/etc/passwd", uint32(0)),             // symlink
		msg9p(74, 10, uint32(1), "ln", uint32(1), "ln2"),                    // renameat
		msg9p(76, 11, uint32(1), "ln2", uint32(0)),                          // unlinkat
		msg9p(120, 12, uint32(2)),                                           // clunk
	}, nil)
	f.Add(session)
	// Guest root planting privilege: setuid, setgid, an owner, a device.
	f.Add(bytes.Join([][]byte{
		version, attach,
		msg9p(110, 2, uint32(1), uint32(2), uint16(1), "f"),
		msg9p(26, 3, uint32(2), uint32(0x7), uint32(0o6755), uint32(1234), uint32(0), make([]byte, 40)), // setattr mode, uid, gid
		msg9p(72, 4, uint32(1), "d", uint32(0o2777), uint32(1234)),                                      // mkdir
		msg9p(18, 5, uint32(1), "n", uint32(0o106777), uint32(0), uint32(0), uint32(0)),                 // mknod a setuid file
		msg9p(18, 6, uint32(1), "c", uint32(0o020666), uint32(1), uint32(3), uint32(0)),                 // mknod a device
		msg9p(12, 7, uint32(2), uint32(0o1001)),                                                         // lopen write, truncate
		msg9p(14, 8, uint32(1), "s", uint32(2), uint32(0o4777), uint32(0)),                              // lcreate setuid
	}, nil))
	f.Add(append(version[:len(version):len(version)], attach[:9]...))
	f.Add(version)
	dir := f.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("outside"), 0o644)
	shared := filepath.Join(dir, "shared")
	resetFolder(f, shared)
	f.Fuzz(func(t *testing.T, input []byte) {
		folder, err := Open(shared, false)
		if err != nil {
			t.Fatal(err)
		}
		defer folder.Close()
		// The guest sends input and stops: the server acts on every
		// message in it, then ends, holding nothing.
		session := folder.NewSession(guestBytes{bytes.NewReader(input), io.Discard})
		done := make(chan struct{})
		go func() { session.Serve(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not end after the guest stopped sending")
		}
		if folder.HeldFiles() != 0 {
			t.Fatalf("%d descriptors still held after the connection ended", folder.HeldFiles())
		}
		if b, _ := os.ReadFile(secret); string(b) != "outside" {
			t.Fatalf("the file outside the folder is now %q", b)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Fatalf("the folder above holds %d entries", len(entries))
		}
		// What the inputs make piles up only so far, so that this walk
		// stays short.
		if checkNoPrivilege(t, shared) > 256 {
			resetFolder(t, shared)
		}
	})
}

// guestBytes is a connection on which the guest sends what it holds and
// then nothing; the server's answers are dropped.
type guestBytes struct {
	io.Reader
	io.Writer
}

func (guestBytes) Close() error { return nil }

// checkNoPrivilege fails if anything in dir has setuid or setgid, is a
// device, or belongs to anyone but this process's user and group; it
// returns how many names it found (0: dir is not there).
func checkNoPrivilege(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		var st unix.Stat_t
		if err != nil || unix.Lstat(path, &st) != nil {
			return nil
		}
		n++
		typ := st.Mode & unix.S_IFMT
		if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 || typ == unix.S_IFCHR || typ == unix.S_IFBLK ||
			int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
			t.Fatalf("%s: mode %o, owner %d:%d", path, st.Mode, st.Uid, st.Gid)
		}
		return nil
	})
	return n
}

// resetFolder makes dir a folder holding one file, f, whatever modes the
// guest left in it.
func resetFolder(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(path, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
}
