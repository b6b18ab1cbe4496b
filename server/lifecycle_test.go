package server

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// qemuChildren lists the QEMU processes whose parent is pid.
func qemuChildren(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after it.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.HasPrefix(s[strings.IndexByte(s, '(')+1:], "qemu-system") {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// alive says whether pid runs (a zombie, waiting for a parent that may
// never reap it, does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// SIGKILL gives the server no chance to stop its VMs: the kernel's
// parent-death signal must, and no QEMU may outlive it.
func TestServerKilledLeavesNoQEMU(t *testing.T) {
	s := startServer(t)
	for i := 0; i < 2; i++ {
		s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{}, nil)
	}
	qemus := qemuChildren(s.cmd.Process.Pid)
	if len(qemus) != 2 {
		t.Fatalf("the server runs %d QEMU processes, want 2", len(qemus))
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range qemus {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("QEMU %d outlived the killed server by 10 s", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// SIGTERM stops every sandbox before the server exits.
func TestServerStoppedStopsItsSandboxes(t *testing.T) {
	s := startServer(t)
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{}, nil)
	qemus := qemuChildren(s.cmd.Process.Pid)
	if len(qemus) != 1 {
		t.Fatalf("the server runs %d QEMU processes, want 1", len(qemus))
	}
	s.stop()
	for _, pid := range qemus {
		if alive(pid) {
			t.Fatalf("QEMU %d is still running after the server exited", pid)
		}
	}
	if !strings.Contains(s.log.String(), "the server stops") {
		t.Errorf("the log does not say the sandbox was stopped:\n%s", s.log)
	}
}
