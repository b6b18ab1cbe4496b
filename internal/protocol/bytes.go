package protocol

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// SplitUTF8 splits p so that head ends on a UTF-8 character boundary and
// tail holds an incomplete multi-byte sequence at the end of p (at most 3
// bytes), to be prepended to the next read. Output that is valid UTF-8 then
// travels as valid UTF-8 chunks even when a read splits a character.
// Bytes that can never become valid stay in head.
func SplitUTF8(p []byte) (head, tail []byte) {
	// Look at most utf8.UTFMax-1 bytes back for the start of a sequence.
	for i := len(p) - 1; i >= 0 && i >= len(p)-(utf8.UTFMax-1); i-- {
		b := p[i]
		if b < utf8.RuneSelf {
			return p, nil // ASCII: nothing pending
		}
		if utf8.RuneStart(b) {
			if utf8.FullRune(p[i:]) {
				return p, nil
			}
			return p[:i], p[i:]
		}
	}
	return p, nil
}

// EncodeChunk turns raw output bytes into the text form and, when the bytes
// are not valid UTF-8, the exact base64 form.
func EncodeChunk(p []byte) (text, b64 string) {
	if utf8.Valid(p) {
		return string(p), ""
	}
	return string(p), base64.StdEncoding.EncodeToString(p)
}

// DecodeChunk recovers the exact bytes of a chunk from its text and optional
// base64 forms.
func DecodeChunk(text, b64 string) ([]byte, error) {
	if b64 == "" {
		return []byte(text), nil
	}
	p, err := base64.StdEncoding.DecodeString(b64)
	return p, errors.Wrap(err, "decoding base64 output")
}
