package agent

import "github.com/quicksand-go/quicksand/internal/protocol"

// What a call keeps of its output, for the engine's remote sandboxes
// (engine/remote_stream.go), which read a server's answers rather than an
// agent's and keep the output for their results exactly as a call here
// does: held to the call's cap, off Go's heap when large, moved where the
// caller's Alloc says.

// Output keeps a call's stdout and stderr, each held to a cap.
type Output struct{ out [3]keptOutput }

// NewOutput keeps at most limit bytes of each stream (0 or less: the
// default, protocol.DefaultMaxOutput).
func NewOutput(limit int64) *Output {
	if limit <= 0 {
		limit = protocol.DefaultMaxOutput
	}
	return &Output{out: keptOutputs(limit)}
}

// Add keeps what fits of p, a chunk of stream s.
func (o *Output) Add(s Stream, p []byte) {
	if s == Stdout || s == Stderr {
		o.out[s].add(p)
	}
}

// Move moves what was kept where alloc says (nil: Go's heap) and says
// whether the cap dropped output of each stream.
func (o *Output) Move(alloc Alloc) (stdout, stderr []byte, stdoutCut, stderrCut bool) {
	stdoutCut, stderrCut = o.out[Stdout].cut, o.out[Stderr].cut
	stdout, stderr = moveOutputs(&o.out, alloc)
	return stdout, stderr, stdoutCut, stderrCut
}

// Release gives back what was kept and not moved (a call that failed).
func (o *Output) Release() {
	o.out[Stdout].release()
	o.out[Stderr].release()
}

// Capped holds a whole answer's stream to limit, as an agent's in-band
// answer is held (capped).
func Capped(p []byte, limit int64, cut bool) ([]byte, bool) { return capped(p, limit, cut) }

// PlaceOutputs puts stdout and stderr, in Go's heap, where alloc says.
func PlaceOutputs(stdout, stderr []byte, alloc Alloc) ([]byte, []byte) {
	return placeOutputs(stdout, stderr, alloc)
}
