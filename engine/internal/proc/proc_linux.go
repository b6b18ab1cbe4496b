// Package proc starts the QEMU processes of the engine so that none
// outlives the program that started it.
package proc

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
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
func Start(cmd *exec.Cmd) error {
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
	spawner.jobs <- func() { done <- cmd.Start() }
	return <-done
}
