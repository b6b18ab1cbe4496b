package serverapi

import (
	"bytes"
	"encoding/base64"
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
