package main

import (
	"fmt"
	"os"
	"syscall"
)

// A VM with one vCPU runs a pipeline such as `yes | head | agent` by
// switching between its processes. By default a process woken up (the
// reader of a pipe that just got data) preempts the one running (the
// writer), so the processes take turns every few KiB; under TCG each
// switch costs a flush of the emulated TLB and of the translated-code jump
// cache, which made `yes abcdefgh | head -c 256M >/dev/null` take 2.7 s.
// Without wakeup preemption the writer fills the pipe before the reader
// runs: 0.9 s. A woken process still runs at the next tick, so the agent
// stays responsive while a command is busy.
const schedFeatures = "/sys/kernel/debug/sched/features"

// tuneScheduler turns wakeup preemption off in the guest kernel (through
// debugfs, mounted for the purpose and unmounted after).
func tuneScheduler() {
	const debugfs = "/sys/kernel/debug"
	mounted := false
	if _, err := os.Stat(schedFeatures); err != nil {
		if err := syscall.Mount("debugfs", debugfs, "debugfs", 0, ""); err != nil {
			fmt.Fprintf(os.Stderr, "quicksand-agent: mounting debugfs: %v\n", err)
			return
		}
		mounted = true
	}
	if err := os.WriteFile(schedFeatures, []byte("NO_WAKEUP_PREEMPTION"), 0); err != nil {
		fmt.Fprintf(os.Stderr, "quicksand-agent: scheduler: %v\n", err)
	}
	if mounted {
		_ = syscall.Unmount(debugfs, 0)
	}
}
