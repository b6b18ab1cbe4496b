package wire

import (
	"encoding/binary"
	"fmt"
)

// Limits on what any msgpack input may be, checked before anything is
// decoded. The generic decoder recurses once per nesting level and
// allocates per element, so 2 MB of nested arrays used to overflow the Go
// stack (a fatal error no recover can catch, killing the caller's process)
// and 1 MB of them cost 700 MB. Our maps are at most three deep.
const (
	// MaxDepth is the deepest nesting of maps and arrays accepted.
	MaxDepth = 16
	// MaxItems bounds the values in one input, containers included.
	MaxItems = 1 << 16
	// MaxInput bounds the size of one input in bytes (a request carries
	// its stdin, so this is generous).
	MaxInput = 256 << 20
)

// checkShape walks one msgpack value in b without recursion and without
// allocating per value, and fails unless it is well formed, fits in b
// exactly (nothing after it), nests at most MaxDepth deep and holds at most
// MaxItems values. Every length it accepts fits in the input, so the
// decoder that runs after it cannot be asked for more memory than the
// input's size.
func checkShape(b []byte) error {
	if len(b) > MaxInput {
		return fmt.Errorf("is %d bytes, more than the %d allowed", len(b), MaxInput)
	}
	// pending[i] is how many values the container at depth i still owes.
	var pending [MaxDepth + 1]uint64
	depth := 0
	pending[0] = 1
	items := 0
	pos := 0
	for {
		for depth > 0 && pending[depth] == 0 {
			depth--
		}
		if pending[depth] == 0 {
			break
		}
		pending[depth]--
		if items++; items > MaxItems {
			return fmt.Errorf("holds more than %d values", MaxItems)
		}
		size, children, err := header(b[pos:])
		if err != nil {
			return fmt.Errorf("is not valid msgpack at byte %d: %v", pos, err)
		}
		if uint64(len(b)-pos) < size {
			return fmt.Errorf("is not valid msgpack at byte %d: truncated", pos)
		}
		pos += int(size)
		if children > 0 {
			if depth == MaxDepth {
				return fmt.Errorf("nests deeper than %d levels", MaxDepth)
			}
			// Each child takes at least one byte: a count beyond what is
			// left cannot be honest.
			if children > uint64(len(b)-pos) {
				return fmt.Errorf("is not valid msgpack at byte %d: a container promises %d values in %d bytes", pos, children, len(b)-pos)
			}
			depth++
			pending[depth] = children
		}
	}
	if pos != len(b) {
		return fmt.Errorf("has %d bytes after its value", len(b)-pos)
	}
	return nil
}

// header reads the msgpack header at the start of p and returns how many
// bytes the value takes itself (header and payload, not its children) and
// how many child values follow it (a map's keys and values both count).
func header(p []byte) (size, children uint64, err error) {
	if len(p) == 0 {
		return 0, 0, fmt.Errorf("truncated")
	}
	c := p[0]
	// n reads an n-byte big-endian length after the type byte.
	n := func(width int) (uint64, error) {
		if len(p) < 1+width {
			return 0, fmt.Errorf("truncated")
		}
		switch width {
		case 1:
			return uint64(p[1]), nil
		case 2:
			return uint64(binary.BigEndian.Uint16(p[1:])), nil
		default:
			return uint64(binary.BigEndian.Uint32(p[1:])), nil
		}
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 1, 0, nil // fixints, nil, booleans
	case c <= 0x8f:
		return 1, 2 * uint64(c&0x0f), nil // fixmap
	case c <= 0x9f:
		return 1, uint64(c & 0x0f), nil // fixarray
	case c <= 0xbf:
		return 1 + uint64(c&0x1f), 0, nil // fixstr
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		l, err := n(1)
		return 2 + l, 0, err
	case 0xc5, 0xda: // bin16, str16
		l, err := n(2)
		return 3 + l, 0, err
	case 0xc6, 0xdb: // bin32, str32
		l, err := n(4)
		return 5 + l, 0, err
	case 0xc7: // ext8: length, type, data
		l, err := n(1)
		return 3 + l, 0, err
	case 0xc8:
		l, err := n(2)
		return 4 + l, 0, err
	case 0xc9:
		l, err := n(4)
		return 6 + l, 0, err
	case 0xcc, 0xd0:
		return 2, 0, nil
	case 0xcd, 0xd1:
		return 3, 0, nil
	case 0xca, 0xce, 0xd2:
		return 5, 0, nil
	case 0xcb, 0xcf, 0xd3:
		return 9, 0, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		return 2 + 1<<(c-0xd4), 0, nil
	case 0xdc: // array16
		l, err := n(2)
		return 3, l, err
	case 0xdd:
		l, err := n(4)
		return 5, l, err
	case 0xde: // map16
		l, err := n(2)
		return 3, 2 * l, err
	case 0xdf:
		l, err := n(4)
		return 5, 2 * l, err
	}
	return 0, 0, fmt.Errorf("0x%02x is not a msgpack type", c)
}
