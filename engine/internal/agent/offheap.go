package agent

import (
	"sync/atomic"
	"syscall"
)

// Output kept for a result is held off Go's heap when it is large: mapped
// from the operating system in blocks, each given back (unmapped) as soon
// as it has been copied to where the result goes. On Go's heap the blocks
// stayed resident until a collection long after the copy, and as live
// heap they let the collector put off collecting everything else (the
// chunks a streaming call copies, say): 1 GiB of output through a 256 MiB
// cap cost the caller 1,066 MB, four times the cap.

// mapped counts the bytes mapped now, for tests: every path of a call
// gives its blocks back.
var mapped atomic.Int64

// mapBlock returns n bytes mapped from the OS, or nil when it cannot.
func mapBlock(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil
	}
	mapped.Add(int64(n))
	return b[:0]
}

// unmapBlock gives back a block from mapBlock; nothing may use it after.
func unmapBlock(b []byte) {
	if syscall.Munmap(b[:cap(b)]) == nil {
		mapped.Add(-int64(cap(b)))
	}
}
