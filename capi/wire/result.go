package wire

import (
	"encoding/binary"
	"math"

	"github.com/quicksand-go/quicksand/engine"
)

// EncodeResult writes an execute result as a msgpack map (keys in
// include/quicksand.h) into memory that alloc gives, of exactly the size
// needed. The C ABI passes C memory: a result can hold hundreds of MiB of
// output, which is so copied once, straight where the caller reads it,
// instead of into Go's heap first and then again.
func EncodeResult(r *engine.ExecResult, alloc func(n int) []byte) []byte {
	var size resultWriter
	size.result(r)
	w := resultWriter{buf: alloc(size.n)[:0]}
	w.result(r)
	return w.buf
}

// resultWriter appends msgpack to buf, or only counts the bytes when buf
// is nil.
type resultWriter struct {
	buf []byte
	n   int
}

func (w *resultWriter) result(r *engine.ExecResult) {
	w.raw(0x87) // a map of 7
	w.str("stdout")
	w.bin(r.Stdout)
	w.str("stderr")
	w.bin(r.Stderr)
	w.str("exit_code")
	w.int(int64(r.ExitCode))
	w.str("timed_out")
	w.bool(r.TimedOut)
	w.str("duration_ms")
	w.float(float64(r.Duration.Microseconds()) / 1000)
	w.str("stdout_truncated")
	w.bool(r.StdoutTruncated)
	w.str("stderr_truncated")
	w.bool(r.StderrTruncated)
}

func (w *resultWriter) raw(b ...byte) {
	w.n += len(b)
	if w.buf != nil {
		w.buf = append(w.buf, b...)
	}
}

func (w *resultWriter) str(s string) { // keys: all shorter than 32 bytes
	w.raw(0xa0 | byte(len(s)))
	w.raw([]byte(s)...)
}

func (w *resultWriter) bin(p []byte) {
	switch n := len(p); {
	case n <= math.MaxUint8:
		w.raw(0xc4, byte(n))
	case n <= math.MaxUint16:
		w.raw(0xc5, byte(n>>8), byte(n))
	default:
		w.raw(0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	w.raw(p...)
}

func (w *resultWriter) int(v int64) {
	switch {
	case v >= 0 && v <= 0x7f:
		w.raw(byte(v)) // positive fixint
	case v >= -32 && v < 0:
		w.raw(byte(v)) // negative fixint (two's complement 0xe0..0xff)
	default:
		w.raw(binary.BigEndian.AppendUint64([]byte{0xd3}, uint64(v))...)
	}
}

func (w *resultWriter) bool(b bool) {
	if b {
		w.raw(0xc3)
	} else {
		w.raw(0xc2)
	}
}

func (w *resultWriter) float(f float64) {
	w.raw(binary.BigEndian.AppendUint64([]byte{0xcb}, math.Float64bits(f))...)
}
