package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Inside a VM the agent shares a small guest memory with the commands it
// runs, and holds /execute's output until the command ends. Two guards:
//   - the Go runtime collects garbage before the heap passes 80% of the
//     guest's memory (by default it lets the heap double between
//     collections, which with 256 MiB of live output exhausted a 512 MiB
//     guest: found by make bench);
//   - /execute keeps at most 60% of the guest's memory per stream by
//     default (the rest is read and dropped, and the result says so).
//
// The agent does not shield itself from the OOM killer: commands would
// inherit the shield before it could be taken off them.
const (
	heapShare   = 0.8
	outputShare = 0.6
)

// tuneForGuest applies the guards; s.maxOutput shrinks to fit the guest.
func tuneForGuest(s *settings) {
	total := memTotal()
	if total <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(float64(total) * heapShare))
	if limit := int64(float64(total) * outputShare); s.maxOutput > limit {
		s.maxOutput = limit
	}
}

// memTotal reads MemTotal from /proc/meminfo, in bytes (0 if unknown).
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
