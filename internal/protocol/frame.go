package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"

	"github.com/pkg/errors"
)

// The output channel is this project's fast path for command output: a
// virtio-serial port beside the HTTP connection. Under TCG, sending bytes
// through the guest's TCP stack and QEMU's user networking costs the guest
// several times more CPU than writing them to a virtio-serial port, so a
// command's output travels there as raw frames, while HTTP still carries the
// request and the exit status. See docs/protocol.md, "Output channel".
//
// Both directions carry the same frames: a fixed header, then for data
// frames the payload.
//
//	magic   uint32  FrameMagic
//	kind    uint8   FrameData, FrameGrant or FrameSync
//	stream  uint8   1 stdout, 2 stderr (data frames)
//	zero    uint16
//	call    uint64  the id the host put in ExecRequest.OutputChannel (the
//	                host's nonce for a sync frame)
//	size    uint32  payload bytes (data) or bytes granted (grant)
//	crc     uint32  CRC-32C of the 20 bytes above
//
// All integers are little-endian. The checksum lets a reader that lost its
// place find the next frame. A checksum alone cannot tell a reader whose
// header was good but whose payload was cut short (a VM reverted to a
// checkpoint mid-frame goes on with other bytes) that it has lost its
// place, so after a revert the host asks for a sync frame, a header
// carrying a nonce of its own, and throws away everything before it
// (FrameReader.SkipPast).

// ChannelPortName is the name of the virtio-serial port the agent looks for.
const ChannelPortName = "quicksand.data"

// ChannelWindow is how many bytes of one call's output the agent may send
// before the host grants more: per-call flow control, so that one slow
// consumer never holds up another call's output.
const ChannelWindow = 4 << 20

// MaxFramePayload bounds one data frame. A header announcing more is taken
// for garbage.
const MaxFramePayload = 1 << 20

// FrameMagic starts every frame ("QSDF").
const FrameMagic = 0x46445351

// FrameHeaderSize is the size of a frame header in bytes.
const FrameHeaderSize = 24

// Frame kinds.
const (
	FrameData  = 1 // guest to host: Size bytes of Stream's output follow
	FrameGrant = 2 // host to guest: the call may send Size more bytes
	FrameSync  = 3 // guest to host: a frame starts next; Call is the host's nonce, Size 0
)

// ChannelCounts is how many bytes of each stream the agent sent over the
// output channel. Its presence in an answer says the channel was used (the
// answer's own stdout/stderr are then empty); the host has all of the output
// once it received this many bytes.
type ChannelCounts struct {
	Stdout int64 `json:"stdout"`
	Stderr int64 `json:"stderr"`
}

// FrameHeader is a decoded frame header.
type FrameHeader struct {
	Kind   uint8
	Stream Stream
	Call   uint64
	Size   uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendHeader appends the encoded header to b.
func (h FrameHeader) AppendHeader(b []byte) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, FrameMagic)
	b = append(b, h.Kind, byte(h.Stream), 0, 0)
	b = binary.LittleEndian.AppendUint64(b, h.Call)
	b = binary.LittleEndian.AppendUint32(b, h.Size)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// parseHeader decodes a header; ok is false for anything but a valid one.
func parseHeader(b []byte) (h FrameHeader, ok bool) {
	if binary.LittleEndian.Uint32(b) != FrameMagic ||
		binary.LittleEndian.Uint32(b[20:]) != crc32.Checksum(b[:20], castagnoli) {
		return h, false
	}
	h = FrameHeader{Kind: b[4], Stream: Stream(b[5]), Call: binary.LittleEndian.Uint64(b[8:]), Size: binary.LittleEndian.Uint32(b[16:])}
	switch {
	case h.Kind == FrameData && (h.Stream == Stdout || h.Stream == Stderr) && h.Size <= MaxFramePayload:
		return h, true
	case h.Kind == FrameGrant:
		return h, true
	case h.Kind == FrameSync && h.Size == 0:
		return h, true
	}
	return h, false
}

// FrameReader reads frames, skipping bytes that do not start a valid one.
type FrameReader struct {
	r       *bufio.Reader
	payload []byte
	// Skipped counts bytes thrown away while looking for a frame.
	Skipped int64
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 256<<10)}
}

// SkipPast throws bytes away up to and including the first occurrence of
// marker (a whole encoded frame), so that the next frame starts right after
// it. Bytes read but not thrown away stay for the next call, so it can be
// called again after an error (a read deadline) without losing its place.
func (fr *FrameReader) SkipPast(marker []byte) error {
	for {
		if _, err := fr.r.Peek(len(marker)); err != nil {
			return err
		}
		buf, _ := fr.r.Peek(fr.r.Buffered())
		if i := bytes.Index(buf, marker); i >= 0 {
			fr.r.Discard(i + len(marker))
			fr.Skipped += int64(i)
			return nil
		}
		n := len(buf) - len(marker) + 1 // a match may start in the rest
		fr.r.Discard(n)
		fr.Skipped += int64(n)
	}
}

// Next returns the next frame. The payload is valid until the next call.
func (fr *FrameReader) Next() (FrameHeader, []byte, error) {
	for {
		b, err := fr.r.Peek(FrameHeaderSize)
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return FrameHeader{}, nil, err
		}
		h, ok := parseHeader(b)
		if !ok {
			fr.r.Discard(1)
			fr.Skipped++
			continue
		}
		fr.r.Discard(FrameHeaderSize)
		if h.Kind != FrameData {
			return h, nil, nil
		}
		if cap(fr.payload) < int(h.Size) {
			fr.payload = make([]byte, h.Size)
		}
		p := fr.payload[:h.Size]
		if _, err := io.ReadFull(fr.r, p); err != nil {
			return FrameHeader{}, nil, errors.Wrap(err, "reading a frame's payload")
		}
		return h, p, nil
	}
}
