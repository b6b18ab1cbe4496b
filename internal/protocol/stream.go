package protocol

// Stream numbers a command's output streams the same way everywhere: in the
// frames of the output channel, in the agent, in the engine and across the
// C ABI (QS_STDOUT and QS_STDERR are these numbers), as file descriptors
// number them.
type Stream uint8

const (
	Stdout Stream = 1
	Stderr Stream = 2
)

// Index is the stream's place in a pair kept per stream (stdout 0,
// stderr 1).
func (s Stream) Index() int { return int(s) - 1 }

// StreamAt is the stream at place i of such a pair.
func StreamAt(i int) Stream { return Stream(i + 1) }

func (s Stream) String() string {
	if s == Stdout {
		return "stdout"
	}
	return "stderr"
}
