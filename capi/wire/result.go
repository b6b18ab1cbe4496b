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
	size.result(r, len(r.Stdout), len(r.Stderr))
	return EncodeResultInto(alloc(size.n), r)
}

// ResultSize is the most bytes the result of an execute with this much
// output takes (its exit code is not known yet: the largest encoding).
func ResultSize(stdoutLen, stderrLen int) int {
	var w resultWriter
	w.result(&engine.ExecResult{ExitCode: math.MinInt32}, stdoutLen, stderrLen)
	return w.n
}

// ResultSlots are where in buf (of ResultSize) EncodeResultInto puts the
// output: an engine.ExecRequest's OutputMemory can give these, so that the
// engine puts the output in place and it is never copied again.
func ResultSlots(buf []byte, stdoutLen, stderrLen int) (stdout, stderr []byte) {
	var w resultWriter
	w.head(stdoutLen)
	at := w.n
	w.n += stdoutLen
	w.middle(stderrLen)
	return buf[at : at+stdoutLen : at+stdoutLen], buf[w.n : w.n+stderrLen : w.n+stderrLen]
}

// EncodeResultInto encodes r into buf (at least ResultSize long) and
// returns the part used. Output already in its slot is not copied.
func EncodeResultInto(buf []byte, r *engine.ExecResult) []byte {
	w := resultWriter{buf: buf[:0]}
	w.result(r, len(r.Stdout), len(r.Stderr))
	return w.buf
}

// resultWriter appends msgpack to buf, or only counts the bytes when buf
// is nil.
type resultWriter struct {
	buf []byte
	n   int
}

// head is everything before stdout's bytes, middle what comes between
// stdout's and stderr's.
func (w *resultWriter) head(stdoutLen int) {
	w.raw(0x87) // a map of 7
	w.str("stdout")
	w.binHeader(stdoutLen)
}

func (w *resultWriter) middle(stderrLen int) {
	w.str("stderr")
	w.binHeader(stderrLen)
}

// result writes r, whose output is stdoutLen and stderrLen bytes (only
// counted when buf is nil).
func (w *resultWriter) result(r *engine.ExecResult, stdoutLen, stderrLen int) {
	w.head(stdoutLen)
	w.output(r.Stdout, stdoutLen)
	w.middle(stderrLen)
	w.output(r.Stderr, stderrLen)
	w.str("exit_code")
	w.int(int64(r.ExitCode))
	w.str("timed_out")
	w.bool(r.TimedOut)
	w.str("duration") // seconds, as every duration the ABI carries
	w.float(r.Duration.Seconds())
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

func (w *resultWriter) binHeader(n int) {
	switch {
	case n <= math.MaxUint8:
		w.raw(0xc4, byte(n))
	case n <= math.MaxUint16:
		w.raw(0xc5, byte(n>>8), byte(n))
	default:
		w.raw(0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// output appends n bytes of output p; p already where they go (from
// ResultSlots) is not copied onto itself.
func (w *resultWriter) output(p []byte, n int) {
	w.n += n
	if w.buf == nil {
		return
	}
	at := len(w.buf)
	w.buf = w.buf[:at+n]
	if n > 0 && &w.buf[at] != &p[0] {
		copy(w.buf[at:], p)
	}
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
