//go:build !linux

package engine

import (
	"os/exec"
	"syscall"
)

// processAttrs puts QEMU in its own process group. Without a parent-death
// signal outside Linux, Stop and the work-folder sweep are the safety net.
func processAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func startProcess(cmd *exec.Cmd) error { return cmd.Start() }
