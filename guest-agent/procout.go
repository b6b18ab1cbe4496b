package main

import (
	"sync"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// outputLog keeps a background process's output for whoever attaches: the
// last protocol.ProcessOutputKept bytes of both streams, in the order they
// were read, each byte at an offset counted from the process's start.
type outputLog struct {
	mu     sync.Mutex
	chunks []logChunk
	start  int64 // offset of the first byte kept
	end    int64 // offset after the last byte
	kept   int
	// changed is closed (and replaced) when output arrives or the log ends.
	changed chan struct{}
	ended   bool
}

type logChunk struct {
	s    stream
	at   int64
	data []byte
}

func newOutputLog() *outputLog { return &outputLog{changed: make(chan struct{})} }

// add appends a copy of p, dropping the oldest chunks past the bound.
func (l *outputLog) add(s stream, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.chunks = append(l.chunks, logChunk{s: s, at: l.end, data: append([]byte(nil), p...)})
	l.end += int64(len(p))
	l.kept += len(p)
	for l.kept > protocol.ProcessOutputKept && len(l.chunks) > 1 {
		l.kept -= len(l.chunks[0].data)
		l.chunks[0] = logChunk{}
		l.chunks = l.chunks[1:]
		l.start = l.chunks[0].at
	}
	l.wake()
}

// end marks the output complete (the process exited and its pipes drained).
func (l *outputLog) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
	l.wake()
}

func (l *outputLog) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// since returns the chunks from offset from on (the first may start before
// it: it is cut), how many bytes before them are no longer kept, the
// offset to ask for next, whether the log has ended, and a channel closed
// when there is more.
func (l *outputLog) since(from int64) (chunks []logChunk, dropped, next int64, ended bool, more <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if from < l.start {
		dropped, from = l.start-from, l.start
	}
	for _, c := range l.chunks {
		if c.at+int64(len(c.data)) <= from {
			continue
		}
		if c.at < from {
			c.data, c.at = c.data[from-c.at:], from
		}
		chunks = append(chunks, c)
	}
	return chunks, dropped, max(from, l.end), l.ended, l.changed
}
