package agent

import "github.com/quicksand-go/quicksand/internal/protocol"

// Block sizes of keptOutput: each new block is as large as what is kept so
// far, within these bounds, so a small output costs a small block and a
// large one a few large ones. Blocks of mappedBlock bytes or more are
// mapped from the OS (offheap.go).
const (
	minKeptBlock = 4 << 10
	maxKeptBlock = 4 << 20
	mappedBlock  = 256 << 10
)

// keptOutput is what a call keeps of one stream for its result: at most
// limit bytes (0: no limit); past it, what fits (never half a character, as
// the agent does when it holds the output), and nothing more, or the output
// would have a hole. It is held in blocks and assembled once, at the end,
// where the result goes (moveTo): one growing slice copies the output
// again at every growth (four times over for 256 MiB) and touches fresh
// memory each time. Once moved or released it takes nothing more.
type keptOutput struct {
	blocks []keptBlock
	n      int64
	limit  int64
	cut    bool // the limit dropped output
	done   bool // moved or released: the blocks are gone
}

type keptBlock struct {
	b      []byte
	mapped bool
}

// keptOutputs is a call's store by Stream, each held to limit.
func keptOutputs(limit int64) (out [3]keptOutput) {
	out[Stdout].limit, out[Stderr].limit = limit, limit
	return out
}

// add keeps what fits of p. Nothing outside keptOutput may point into
// its blocks: they are unmapped when moved.
func (k *keptOutput) add(p []byte) {
	if k.cut || k.done {
		return
	}
	if room := k.limit - k.n; k.limit > 0 && int64(len(p)) > room {
		k.cut = true
		p, _ = protocol.SplitUTF8(p[:max(room, 0)])
	}
	if len(p) == 0 {
		return
	}
	last := len(k.blocks) - 1
	if last < 0 || cap(k.blocks[last].b)-len(k.blocks[last].b) < len(p) {
		k.blocks = append(k.blocks, newBlock(max(len(p), min(max(int(k.n), minKeptBlock), maxKeptBlock))))
		last++
	}
	k.blocks[last].b = append(k.blocks[last].b, p...)
	k.n += int64(len(p))
}

func newBlock(size int) keptBlock {
	if size >= mappedBlock {
		if b := mapBlock(size); b != nil {
			return keptBlock{b: b, mapped: true}
		}
	}
	return keptBlock{b: make([]byte, 0, size)}
}

// len is how many bytes are kept.
func (k *keptOutput) len() int { return int(k.n) }

// moveTo copies everything kept to dst (len() bytes long), giving each
// block back as soon as it is copied, so the output is not held twice.
func (k *keptOutput) moveTo(dst []byte) {
	at := 0
	for _, blk := range k.blocks {
		at += copy(dst[at:], blk.b)
		if blk.mapped {
			unmapBlock(blk.b)
		}
	}
	k.blocks, k.n, k.done = nil, 0, true
}

// bytes moves everything kept to Go's heap.
func (k *keptOutput) bytes() []byte {
	if k.n == 0 {
		k.release()
		return nil
	}
	all := make([]byte, k.n)
	k.moveTo(all)
	return all
}

// release gives the blocks back unused (a call that failed).
func (k *keptOutput) release() {
	for _, blk := range k.blocks {
		if blk.mapped {
			unmapBlock(blk.b)
		}
	}
	k.blocks, k.n, k.done = nil, 0, true
}

// Alloc gives the memory a result's stdout and stderr are put in, of the
// lengths asked (the C ABI's result buffer); nil is Go's heap.
type Alloc func(stdoutLen, stderrLen int) (stdout, stderr []byte)

// moveOutputs moves a call's kept stdout and stderr to where alloc says.
func moveOutputs(out *[3]keptOutput, alloc Alloc) (stdout, stderr []byte) {
	if alloc == nil {
		return out[Stdout].bytes(), out[Stderr].bytes()
	}
	stdout, stderr = alloc(out[Stdout].len(), out[Stderr].len())
	out[Stdout].moveTo(stdout)
	out[Stderr].moveTo(stderr)
	return stdout, stderr
}

// placeOutputs puts stdout and stderr, already in Go's heap (an in-band
// answer), where alloc says.
func placeOutputs(stdout, stderr []byte, alloc Alloc) ([]byte, []byte) {
	if alloc == nil {
		return stdout, stderr
	}
	o, e := alloc(len(stdout), len(stderr))
	copy(o, stdout)
	copy(e, stderr)
	return o, e
}
