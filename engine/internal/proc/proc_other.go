//go:build !linux

package proc

import (
	"os/exec"
	"syscall"
)

// Attrs puts QEMU in its own process group. Without a parent-death
// signal outside Linux, Stop and the work-folder sweep are the safety net.
func Attrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// Start starts cmd with Attrs.
func Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = Attrs()
	return cmd.Start()
}

// StartWithoutHugePages is Start: transparent huge pages are Linux's.
func StartWithoutHugePages(cmd *exec.Cmd) error { return Start(cmd) }
