// Package proc starts the QEMU processes of the engine so that none
// outlives the program that started it.
package proc

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Attrs puts QEMU in its own process group (a Ctrl-C meant for the
// host program reaches us, not QEMU, so Stop can still run) and asks the
// kernel to kill it when its parent dies, so a VM never outlives the
// program that started it.
func Attrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// The parent-death signal fires when the *thread* that forked exits, not the
// process. Under cgo (the C ABI) a call may run on a foreign thread that
// exits soon after (a Python executor thread, say), which would kill the VM.
// So every QEMU is forked from one OS thread that lives as long as the
// process: a goroutine locked to its thread that never returns.
var spawner struct {
	once sync.Once
	jobs chan func()
}

// Start starts cmd, with Attrs, from the long-lived spawner thread.
func Start(cmd *exec.Cmd) error { return spawn(cmd, cmd.Start) }

// StartWithoutHugePages is Start for a QEMU that runs its guest under TCG:
// the new process has transparent huge pages off. QEMU asks for them
// (madvise) for TCG's code buffer and for every RAM block, ROMs included.
// Under TCG that rounds each sandbox's translated code up to whole 2 MiB
// pages and makes the 128 KiB of ACPI tables a 2 MiB page, for no speed
// that make bench could measure (20 idle sandboxes: 38.9 MiB of PSS each
// instead of 41.0, commands as fast).
//
// The switch (PR_SET_THP_DISABLE) belongs to the whole process and is
// inherited across fork and exec. So it is set on the host process only for
// the fork and exec of cmd, on the spawner thread that forks every QEMU,
// and then put back as it was; a host that had it set keeps it. A child
// the host program itself forks in that instant inherits it too: it runs
// without huge pages, and is otherwise unaffected.
func StartWithoutHugePages(cmd *exec.Cmd) error {
	return spawn(cmd, func() error {
		was, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
		if err != nil || was != 0 {
			return cmd.Start() // no such switch here, or already off
		}
		if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
			return cmd.Start()
		}
		defer unix.Prctl(unix.PR_SET_THP_DISABLE, 0, 0, 0, 0)
		return cmd.Start()
	})
}

// spawn runs start (which starts cmd) on the spawner thread.
func spawn(cmd *exec.Cmd, start func() error) error {
	cmd.SysProcAttr = Attrs()
	spawner.once.Do(func() {
		spawner.jobs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread stays ours
			for job := range spawner.jobs {
				job()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.jobs <- func() { done <- start() }
	return <-done
}
