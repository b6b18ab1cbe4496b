package share

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	f.Add(append(version[:len(version):len(version)], attach[:9]...))
	f.Add(version)
	dir := f.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("outside"), 0o644)
	shared := filepath.Join(dir, "shared")
	os.Mkdir(shared, 0o755)
	os.WriteFile(filepath.Join(shared, "f"), []byte("inside"), 0o644)
	f.Fuzz(func(t *testing.T, input []byte) {
		folder, err := Open(shared, false)
		if err != nil {
			t.Fatal(err)
		}
		defer folder.Close()
		server, client := net.Pipe()
		session := folder.NewSession(server)
		done := make(chan struct{})
		go func() { session.Serve(); close(done) }()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(input)
		// The guest hangs up, and the host ends the session (as an unmount
		// or a stop does): whatever the guest sent, the server must end,
		// holding nothing.
		client.Close()
		session.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not end after the session was closed")
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
	})
}
