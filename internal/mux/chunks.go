package mux

import "sync"

// Data frames are read into buffers of MaxPayload taken from a pool and
// given back once read: a stream carries its data through a few buffers
// rather than leaving a new one to the garbage collector per frame (an
// answer of 256 MiB made 256 MiB of garbage, and the host's heap peak
// grew by as much).
var chunks = sync.Pool{New: func() any { return new([MaxPayload]byte) }}

func getChunk(n int) []byte { return chunks.Get().(*[MaxPayload]byte)[:n] }

// putChunk gives back a buffer of getChunk's once all of it was read (a
// chunk read in part was resliced from its start and is left to the
// collector).
func putChunk(b []byte) {
	if cap(b) == MaxPayload {
		chunks.Put((*[MaxPayload]byte)(b[:MaxPayload]))
	}
}
