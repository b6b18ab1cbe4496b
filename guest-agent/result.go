package main

import (
	"bufio"
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// chunkSize is the size of the blocks a collector keeps output in. Blocks,
// not one growing slice, so that holding N bytes never needs 2N while the
// slice doubles and is copied.
const chunkSize = 64 << 10

// collector keeps one stream's output for /execute, up to a limit.
type collector struct {
	chunks    [][]byte
	size      int64
	limit     int64
	truncated bool
	invalid   bool // not valid UTF-8: the answer also carries base64
}

func newCollector(limit int64) *collector { return &collector{limit: limit} }

// add keeps p (copying it). Pieces arrive split on character boundaries, so
// checking each piece finds whether the whole stream is valid UTF-8.
func (c *collector) add(p []byte) {
	if room := c.limit - c.size; int64(len(p)) > room {
		c.truncated = true
		p, _ = protocol.SplitUTF8(p[:room]) // do not keep half a character
	}
	if len(p) == 0 {
		return
	}
	if !c.invalid && !utf8.Valid(p) {
		c.invalid = true
	}
	c.size += int64(len(p))
	for len(p) > 0 {
		n := len(c.chunks)
		if n == 0 || len(c.chunks[n-1]) == cap(c.chunks[n-1]) {
			c.chunks = append(c.chunks, make([]byte, 0, chunkSize))
			n++
		}
		last := c.chunks[n-1]
		k := min(cap(last)-len(last), len(p))
		c.chunks[n-1] = append(last, p[:k]...)
		p = p[k:]
	}
}

// writeResult writes the JSON body of /execute, escaping the collected
// output straight into w. Quicksand's dialect (ext false) has only stdout,
// stderr and exit_code.
func writeResult(w *bufio.Writer, out, errs *collector, res outcome, counts *protocol.ChannelCounts, ext bool) {
	w.WriteString(`{"stdout":`)
	writeJSONText(w, out.chunks)
	w.WriteString(`,"stderr":`)
	writeJSONText(w, errs.chunks)
	w.WriteString(`,"exit_code":`)
	w.WriteString(strconv.Itoa(res.exitCode))
	if !ext {
		w.WriteString("}\n")
		return
	}
	w.WriteString(`,"timed_out":`)
	w.WriteString(strconv.FormatBool(res.timedOut))
	for _, f := range []struct {
		name string
		c    *collector
	}{{"stdout", out}, {"stderr", errs}} {
		if f.c.invalid {
			w.WriteString(`,"` + f.name + `_b64":"`)
			enc := base64.NewEncoder(base64.StdEncoding, w)
			for _, chunk := range f.c.chunks {
				enc.Write(chunk)
			}
			enc.Close()
			w.WriteString(`"`)
		}
		if f.c.truncated {
			w.WriteString(`,"` + f.name + `_truncated":true`)
		}
	}
	if counts != nil {
		w.WriteString(`,"channel_bytes":{"stdout":` + strconv.FormatInt(counts.Stdout, 10) +
			`,"stderr":` + strconv.FormatInt(counts.Stderr, 10) + `}`)
	}
	w.WriteString("}\n")
}

// writeJSONText writes the concatenated chunks as one JSON string. Invalid
// UTF-8 becomes U+FFFD (as encoding/json does); the exact bytes go in the
// _b64 field. Chunks may split a character only where the bytes are invalid
// anyway, so decoding chunk by chunk is exact.
func writeJSONText(w *bufio.Writer, chunks [][]byte) {
	const hex = "0123456789abcdef"
	w.WriteByte('"')
	for _, p := range chunks {
		start := 0 // start of the run of bytes that need no escaping
		for i := 0; i < len(p); {
			b := p[i]
			if b >= 0x20 && b != '"' && b != '\\' && b < utf8.RuneSelf {
				i++
				continue
			}
			if b >= utf8.RuneSelf {
				r, size := utf8.DecodeRune(p[i:])
				if r != utf8.RuneError || size != 1 {
					i += size
					continue
				}
				w.Write(p[start:i])
				w.WriteString(`\ufffd`)
				i++
				start = i
				continue
			}
			w.Write(p[start:i])
			switch b {
			case '"', '\\':
				w.WriteByte('\\')
				w.WriteByte(b)
			case '\n':
				w.WriteString(`\n`)
			case '\r':
				w.WriteString(`\r`)
			case '\t':
				w.WriteString(`\t`)
			default:
				w.WriteString(`\u00`)
				w.WriteByte(hex[b>>4])
				w.WriteByte(hex[b&0xf])
			}
			i++
			start = i
		}
		w.Write(p[start:])
	}
	w.WriteByte('"')
}
