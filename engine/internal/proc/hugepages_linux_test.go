package proc

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// thpEnabled reads the THP_enabled line of /proc/PID/status.
func thpEnabled(t *testing.T, pid int) string {
	t.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "THP_enabled:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no THP_enabled in /proc/%d/status (a kernel older than 5.0?)", pid)
	return ""
}

func TestStartWithoutHugePagesTouchesOnlyTheChild(t *testing.T) {
	if got := thpEnabled(t, os.Getpid()); got != "1" {
		t.Fatalf("this test needs huge pages allowed in its own process to start with; THP_enabled is %s", got)
	}
	for _, c := range []struct {
		start func(*exec.Cmd) error
		want  string
	}{{StartWithoutHugePages, "0"}, {Start, "1"}} {
		cmd := exec.Command("sleep", "30")
		if err := c.start(cmd); err != nil {
			t.Fatal(err)
		}
		got := thpEnabled(t, cmd.Process.Pid)
		cmd.Process.Kill()
		cmd.Wait()
		if got != c.want {
			t.Errorf("the child's THP_enabled is %s, want %s", got, c.want)
		}
		if off, err := unix.PrctlRetInt(unix.PR_GET_THP_DISABLE, 0, 0, 0, 0); err != nil || off != 0 {
			t.Fatalf("the host process was left with huge pages off (%d, %v)", off, err)
		}
	}
}
