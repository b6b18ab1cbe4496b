package main

import (
	"fmt"
	"syscall"
)

// serverDescriptors is the descriptor limit init gives the agent server.
// Each background process holds up to four of the server's descriptors
// (stdin, stdout and stderr pipes, or a terminal) besides the connections
// that attach to it; the kernel's default hard limit for init (4096) ran
// out at about 680 processes ("pipe2: too many open files"), and every
// later call failed. With this, the documented bound (maxRunningProcesses)
// is the one that bites.
const serverDescriptors = 1 << 16

// raiseDescriptorLimit, in init, raises the hard limit on open files that
// the server inherits and keeps the soft one at Linux's usual 1024. The
// server, a Go program, raises its own soft limit to the hard one when it
// starts, and gives the commands it runs the soft limit it started with:
// commands see the 1024 that programs expect (some loop over every
// descriptor up to it), and may raise it themselves.
func raiseDescriptorLimit() {
	lim := syscall.Rlimit{Cur: 1024, Max: serverDescriptors}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Printf("quicksand-agent: init: raising the descriptor limit: %v\n", err)
	}
}
