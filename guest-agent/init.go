package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// runInit is PID 1's job. Orphaned processes are re-parented to PID 1, and
// if the server itself were PID 1 its blanket wait4(-1) would race with
// exec.Cmd.Wait for its own children. So init forks the server and does
// nothing but reap: every exit status goes to whoever waits first, and the
// server waits only for its own children.
//
// PID 1 must never exit (the kernel panics). If the server cannot start
// because its settings are wrong, init says so on the console and powers the
// VM off, so that the host sees QEMU exit with the reason in the console log
// instead of waiting for a boot timeout.
func runInit() {
	fmt.Println("quicksand-agent: init starting")
	raiseDescriptorLimit()
	startAutostart()
	for {
		pid, err := startServer()
		if err != nil {
			fmt.Printf("quicksand-agent: init: starting the server: %v\n", err)
			powerOff()
		}
		status := reapUntil(pid)
		if status.Exited() && status.ExitStatus() == exitBadSettings {
			fmt.Println("quicksand-agent: init: the server cannot run with these settings; powering off")
			powerOff()
		}
		fmt.Printf("quicksand-agent: init: the server ended (%v); restarting it\n", describeStatus(status))
		time.Sleep(100 * time.Millisecond)
	}
}

// autostartPath is what an image runs at boot beside the agent, if it has
// it: debian-desktop's session (X and the desktop). It is the image's own,
// trusted as the rest of its root disk is.
const autostartPath = "/etc/quicksand/autostart"

// startAutostart starts the image's autostart program, if any, as a child of
// init (reaped with the other orphans), with its output in
// /var/log/quicksand-autostart.log.
func startAutostart() {
	if st, err := os.Stat(autostartPath); err != nil || st.Mode()&0o111 == 0 {
		return
	}
	log, err := os.OpenFile("/var/log/quicksand-autostart.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		log = nil
	}
	proc, err := os.StartProcess(autostartPath, []string{autostartPath}, &os.ProcAttr{
		Dir:   "/",
		Env:   baseEnv(),
		Files: []*os.File{nil, log, log},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if log != nil {
		log.Close()
	}
	if err != nil {
		fmt.Printf("quicksand-agent: init: starting %s: %v\n", autostartPath, err)
		return
	}
	proc.Release()
}

func startServer() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	proc, err := os.StartProcess(exe, os.Args, &os.ProcAttr{
		Env:   append(baseEnv(), childEnv+"=1"),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return 0, err
	}
	return proc.Pid, nil
}

// reapUntil reaps every child that exits until pid does, and returns its status.
func reapUntil(pid int) syscall.WaitStatus {
	for {
		var status syscall.WaitStatus
		got, err := syscall.Wait4(-1, &status, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			// ECHILD cannot happen while the server lives; avoid a busy loop.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if got == pid {
			return status
		}
	}
}

func describeStatus(s syscall.WaitStatus) string {
	if s.Signaled() {
		return "killed by " + s.Signal().String()
	}
	return fmt.Sprintf("exit status %d", s.ExitStatus())
}

func powerOff() {
	syscall.Sync()
	// QEMU runs with -no-reboot, so either call ends it.
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
	for {
		time.Sleep(time.Hour)
	}
}

// baseEnv is the environment commands start from. PID 1 gets almost nothing
// from the kernel, so fill in what shells and tools expect.
func baseEnv() []string {
	env := os.Environ()
	defaults := map[string]string{
		"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME": "/root",
		"LANG": "C.UTF-8",
		"TERM": "dumb",
	}
	for _, kv := range env {
		for k := range defaults {
			if len(kv) > len(k) && kv[:len(k)+1] == k+"=" {
				delete(defaults, k)
			}
		}
	}
	for k, v := range defaults {
		env = append(env, k+"="+v)
	}
	return env
}
