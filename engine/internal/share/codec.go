package share

import (
	"encoding/binary"
	"errors"
)

// 9P2000.L on the wire: little-endian integers, strings as a 16-bit length
// and bytes, a message as size[4] type[1] tag[2] and its fields.

// errShort: a message ended before its fields did.
var errShort = errors.New("a 9P message shorter than its fields")

// decoder reads one message's fields; the first short read sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.err = errShort
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) str() string { return string(d.take(int(d.u16()))) }

// encoder builds one answer: the header is filled in by finish.
type encoder struct{ b []byte }

func newEncoder(typ uint8, tag uint16, capacity int) *encoder {
	e := &encoder{b: make([]byte, 7, 7+capacity)}
	e.b[4] = typ
	binary.LittleEndian.PutUint16(e.b[5:], tag)
	return e
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) str(s string) {
	e.u16(uint16(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) qid(q qid) {
	e.u8(q.typ)
	e.u32(0) // version: not tracked
	e.u64(q.path)
}

func (e *encoder) finish() []byte {
	binary.LittleEndian.PutUint32(e.b, uint32(len(e.b)))
	return e.b
}

// qid is a file's identity as 9P tells it: its type and a number unique in
// the folder (the inode).
type qid struct {
	typ  uint8
	path uint64
}

// QID types.
const (
	qidDir     = 0x80
	qidSymlink = 0x02
	qidFile    = 0x00
)
