package agent

import "github.com/quicksand-go/quicksand/internal/protocol"

// Block sizes of keptOutput: each new block is as large as what is kept so
// far, within these bounds, so a small output costs a small block and a
// large one a few large ones.
const (
	minKeptBlock = 4 << 10
	maxKeptBlock = 4 << 20
)

// keptOutput is what a call keeps of one stream for its result: at most
// limit bytes (0: no limit); past it, what fits (never half a character, as
// the agent does when it holds the output), and nothing more, or the output
// would have a hole. It is held in blocks and assembled once, at the end:
// one growing slice copies the output again at every growth (four times
// over for 256 MiB) and touches fresh memory each time.
type keptOutput struct {
	blocks [][]byte
	n      int64
	limit  int64
	cut    bool // the limit dropped output
}

// keptOutputs is a call's store by Stream, each held to limit.
func keptOutputs(limit int64) (out [3]keptOutput) {
	out[Stdout].limit, out[Stderr].limit = limit, limit
	return out
}

// add keeps what fits of p and returns the bytes kept, as a slice of the
// store that later adds never move or overwrite.
func (k *keptOutput) add(p []byte) []byte {
	if k.cut {
		return nil
	}
	if room := k.limit - k.n; k.limit > 0 && int64(len(p)) > room {
		k.cut = true
		p, _ = protocol.SplitUTF8(p[:max(room, 0)])
	}
	if len(p) == 0 {
		return nil
	}
	last := len(k.blocks) - 1
	if last < 0 || cap(k.blocks[last])-len(k.blocks[last]) < len(p) {
		size := max(len(p), min(max(int(k.n), minKeptBlock), maxKeptBlock))
		k.blocks = append(k.blocks, make([]byte, 0, size))
		last++
	}
	b := k.blocks[last]
	start := len(b)
	b = append(b, p...)
	k.blocks[last] = b
	k.n += int64(len(p))
	return b[start:len(b):len(b)]
}

// bytes is everything kept, in one slice (assembled on the first call).
func (k *keptOutput) bytes() []byte {
	switch len(k.blocks) {
	case 0:
		return nil
	case 1:
		return k.blocks[0]
	}
	all := make([]byte, 0, k.n)
	for _, b := range k.blocks {
		all = append(all, b...)
	}
	k.blocks = [][]byte{all}
	return all
}
