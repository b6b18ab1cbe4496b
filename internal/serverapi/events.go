package serverapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// Output in an event stream. A text event carries the bytes as they are,
// one SSE data line per line of output (a reader joins them with the
// newlines that split them), for what SSE can carry so: valid UTF-8
// without a carriage return (which SSE reads as a line break). Anything
// else goes as base64 in an event of its own type. (JSON was the first
// format: decoding a 1 MiB JSON string ran at 107 MB/s on these machines,
// slower than a guest sends; these run at memory speed.)
const (
	EventStdoutB64 = "stdout_b64"
	EventStderrB64 = "stderr_b64"
)

// AppendChunkEvent appends to b the whole event (type, data, blank line)
// that carries p, output of stderr or stdout.
func AppendChunkEvent(b []byte, stderr bool, p []byte) []byte {
	kind := EventStdout
	if stderr {
		kind = EventStderr
	}
	if !utf8.Valid(p) || bytes.IndexByte(p, '\r') >= 0 {
		b = append(append(append(b, "event: "...), kind...), "_b64\ndata: "...)
		b = base64.StdEncoding.AppendEncode(b, p)
		return append(b, "\n\n"...)
	}
	b = append(append(append(b, "event: "...), kind...), '\n')
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		b = append(append(append(b, "data: "...), p[:i]...), '\n')
		p = p[i+1:]
	}
	// The last line, empty when p ended with a newline: the reader drops
	// the newline after the last data line, so it must be there.
	return append(append(append(b, "data: "...), p...), "\n\n"...)
}

// ChunkOf reads an event of a stream: its bytes and whether they are
// stderr's; ok is false for an event that is no chunk.
func ChunkOf(kind, data string) (p []byte, stderr, ok bool, err error) {
	switch kind {
	case EventStdout, EventStderr:
		return []byte(data), kind == EventStderr, true, nil
	case EventStdoutB64, EventStderrB64:
		p, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, false, true, errors.Errorf("the server sent a %s event that is not base64", kind)
		}
		return p, kind == EventStderrB64, true, nil
	}
	return nil, false, false, nil
}

// The binary form of a stream, for clients that ask for it (Accept:
// StreamType): what SSE carries, as records of a kind byte, a 4-byte
// big-endian length and that many bytes. Output costs a copy, where SSE
// costs a pass per line (go-sse read "abcdefgh\n" output at 76 MB/s) or a
// base64 or JSON decoding. The engine's client asks for it; curl and
// browsers get SSE.
const StreamType = "application/x-quicksand-stream"

// Record kinds: output of either stream, then the exit or error event's
// JSON, as in SSE.
const (
	RecordStdout = 'o'
	RecordStderr = 'e'
	RecordExit   = 'x'
	RecordError  = 'r'
)

// AppendRecord appends one record to b.
func AppendRecord(b []byte, kind byte, p []byte) []byte {
	b = append(b, kind, byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p)))
	return append(b, p...)
}

// ReadRecord reads one record into buf (grown as needed) and returns its
// kind and bytes; a record longer than max is an error, not an allocation.
func ReadRecord(r io.Reader, buf []byte, max int) (kind byte, p []byte, err error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(head[1:]))
	if n > max {
		return 0, nil, errors.Errorf("a record of %d bytes, more than %d", n, max)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	p = buf[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, errors.Wrap(err, "a record cut short")
	}
	return head[0], p, nil
}
