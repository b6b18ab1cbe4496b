package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A boot that outlasts its timeout is a boot timeout that shows what the
// console said, once. QEMU is frozen once the console has said something
// (init's first line), so that there is a reason to show: a short timeout
// alone ends the boot before the guest prints anything under TCG (the
// reason never appeared, and the test passed).
func TestBootTimeoutSaysWhyOnce(t *testing.T) {
	work := t.TempDir()
	const said = "quicksand-agent: init starting"
	done := make(chan error, 1)
	go func() {
		sb, err := Start(context.Background(), Config{WorkDir: work, ColdBoot: true, Accel: AccelTCG, BootTimeout: 10 * time.Second})
		if sb != nil {
			sb.Stop(context.Background())
		}
		done <- err
	}()
	var early error
	if !waitFor(10*time.Second, func() bool {
		logs, _ := filepath.Glob(filepath.Join(work, "sb-*", "console.log"))
		for _, l := range logs {
			if b, _ := os.ReadFile(l); strings.Contains(string(b), said) {
				return true
			}
		}
		return false
	}, done, &early) {
		t.Fatalf("the console never said %q before the boot ended: %v", said, early)
	}
	for _, pid := range qemusMentioning(work) {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	err := <-done
	if KindOf(err) != KindBootTimeout {
		t.Fatalf("Start: %v, want a boot timeout", err)
	}
	if n := strings.Count(err.Error(), "--- last console lines ---"); n != 1 || !strings.Contains(err.Error(), said) {
		t.Fatalf("the console tail is shown %d times, want once with %q:\n%v", n, said, err)
	}
}
