package share

import (
	"encoding/binary"
	"io"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// rawGuest speaks 9P to the server message by message, as Linux's v9fs
// client does: unlike the p9 library's client, which keeps only 0o1777 of
// a mode, it sends every bit the guest asks for (setuid and setgid too).
type rawGuest struct {
	t    *testing.T
	conn net.Conn
	tag  uint16
}

// rootFid is the fid the raw guest attaches the folder as.
const rootFid = 1

func newRawGuest(t *testing.T, dir string) *rawGuest {
	t.Helper()
	conn, _ := serveOnPipe(t, dir, false)
	g := &rawGuest{t: t, conn: conn}
	if _, err := g.call(tversion, uint32(MaxMessage), "9P2000.L"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.call(tattach, uint32(rootFid), ^uint32(0), "root", "", uint32(0)); err != nil {
		t.Fatal(err)
	}
	return g
}

// call sends one request and returns its answer's body, or the errno of an
// Rlerror.
func (g *rawGuest) call(typ byte, fields ...any) ([]byte, error) {
	g.t.Helper()
	g.tag++
	out := msg9p(typ, g.tag, fields...)
	go g.conn.Write(out)
	var hdr [7]byte
	if _, err := io.ReadFull(g.conn, hdr[:]); err != nil {
		g.t.Fatalf("reading the answer to %d: %v", typ, err)
	}
	body := make([]byte, binary.LittleEndian.Uint32(hdr[:])-7)
	if _, err := io.ReadFull(g.conn, body); err != nil {
		g.t.Fatalf("reading the answer to %d: %v", typ, err)
	}
	if hdr[4] == rlerror {
		return nil, unix.Errno(binary.LittleEndian.Uint32(body))
	}
	if hdr[4] != typ+1 {
		g.t.Fatalf("answer type %d to a request of type %d", hdr[4], typ)
	}
	return body, nil
}

// walk makes fid newFid name the path names from fid.
func (g *rawGuest) walk(fid, newFid uint32, names ...string) error {
	fields := []any{fid, newFid, uint16(len(names))}
	for _, n := range names {
		fields = append(fields, n)
	}
	_, err := g.call(twalk, fields...)
	return err
}

// create makes name in the folder fid names, with the guest's mode and
// owner; fid then names the new file, opened with flags.
func (g *rawGuest) create(fid uint32, name string, flags, mode, gid uint32) error {
	_, err := g.call(tlcreate, fid, name, flags, mode, gid)
	return err
}

func (g *rawGuest) mkdir(fid uint32, name string, mode, gid uint32) error {
	_, err := g.call(tmkdir, fid, name, mode, gid)
	return err
}

func (g *rawGuest) mknod(fid uint32, name string, mode, major, minor, gid uint32) error {
	_, err := g.call(tmknod, fid, name, mode, major, minor, gid)
	return err
}

func (g *rawGuest) symlink(fid uint32, name, target string, gid uint32) error {
	_, err := g.call(tsymlink, fid, name, target, gid)
	return err
}

func (g *rawGuest) link(dirFid, fid uint32, name string) error {
	_, err := g.call(tlink, dirFid, fid, name)
	return err
}

func (g *rawGuest) rename(fid uint32, oldName string, toFid uint32, newName string) error {
	_, err := g.call(trenameat, fid, oldName, toFid, newName)
	return err
}

func (g *rawGuest) open(fid, flags uint32) error {
	_, err := g.call(tlopen, fid, flags)
	return err
}

func (g *rawGuest) write(fid uint32, data string) error {
	_, err := g.call(twrite, fid, uint64(0), uint32(len(data)), []byte(data))
	return err
}

// setattr sends Tsetattr with the valid bits given (attrMode, attrUID, ...).
func (g *rawGuest) setattr(fid, valid, mode, uid, gid uint32, size uint64) error {
	_, err := g.call(tsetattr, fid, valid, mode, uid, gid, size, uint64(0), uint64(0), uint64(0), uint64(0))
	return err
}

func (g *rawGuest) chmod(fid, mode uint32) error { return g.setattr(fid, attrMode, mode, 0, 0, 0) }

func (g *rawGuest) chown(fid, uid, gid uint32) error {
	return g.setattr(fid, attrUID|attrGID, 0, uid, gid, 0)
}

func (g *rawGuest) clunk(fid uint32) error {
	_, err := g.call(tclunk, fid)
	return err
}
