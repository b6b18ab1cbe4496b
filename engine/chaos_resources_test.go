package engine

// More faults (docs/reliability.md): the guest out of processes and out of
// disk, the host's save folder full, QEMU killed or frozen while it boots.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A command the guest has no process for is a resource error, not the
// request's fault: here the commands' parent cgroup is held at its process
// limit by processes a command left running.
func TestForkFailureIsAResourceError(t *testing.T) {
	sb := startSandbox(t, Config{})
	// The limit is set once the sleeps run: they fill it when the shell ends.
	run(t, sb, ExecRequest{Command: "for i in 1 2 3; do sleep 600 & done; echo 3 > /sys/fs/cgroup/quicksand-commands/pids.max"})
	_, err := sb.Execute(context.Background(), ExecRequest{Command: "true"})
	if !errors.Is(err, ErrResource) || !strings.Contains(err.Error(), "out of processes") {
		t.Fatalf("a command with no process left: %v, want a resource error", err)
	}
	gone(t, sb)
}

// A full guest disk fails the writes that need it, with the guest's own
// error, and nothing else: the sandbox answers, and writes work again once
// space is freed.
func TestGuestDiskFull(t *testing.T) {
	sb := startSandbox(t, Config{})
	// fallocate reserves the space without writing it (the host's overlay
	// stays small); the free blocks counted include those ext4 keeps for
	// root, which the commands run as. dd takes what is left.
	run(t, sb, ExecRequest{Command: `fallocate -l $(( $(stat -f -c '%f' /) * $(stat -f -c '%S' /) - 16777216 )) /fill && dd if=/dev/zero of=/fill2 bs=64k 2>/dev/null; sync; true`})
	// head, not the shell's echo: dash reports any write error as "I/O error".
	r := run(t, sb, ExecRequest{Command: "head -c 65536 /dev/zero > /root/new-file"})
	if r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "No space left on device") {
		t.Fatalf("a write to a full disk: %+v (stderr %q)", r, r.Stderr)
	}
	if r := run(t, sb, ExecRequest{Command: "echo alive"}); string(r.Stdout) != "alive\n" {
		t.Fatalf("the sandbox with a full disk: %+v", r)
	}
	if r := run(t, sb, ExecRequest{Command: "rm -f /fill /fill2 && echo data > /root/new-file && cat /root/new-file"}); string(r.Stdout) != "data\n" {
		t.Fatalf("after freeing space: %+v (stderr %q)", r, r.Stderr)
	}
	gone(t, sb)
}

// A save into a folder with too little room fails with a snapshot error,
// leaves nothing there, and the sandbox runs on.
func TestSaveFolderFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a small tmpfs: it needs root (make test runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "qs-test-full", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	sb := startSandbox(t, Config{})
	run(t, sb, ExecRequest{Command: "head -c 20000000 /dev/urandom > /root/big"}) // more than the folder holds
	_, err := sb.Save(context.Background(), filepath.Join(dir, "s"))
	if !errors.Is(err, ErrSnapshot) {
		t.Fatalf("a save into a full folder: %v, want a snapshot error", err)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("left in the full folder: %v", left)
	}
	if r := run(t, sb, ExecRequest{Command: "wc -c < /root/big"}); string(r.Stdout) != "20000000\n" {
		t.Fatalf("the sandbox after the failed save: %+v", r)
	}
	gone(t, sb)
}

// QEMU killed, or frozen, while it boots (a cold boot, and the boot that
// makes a template): Start fails with a boot error, within the boot timeout
// when frozen, and leaves no QEMU and no folder; the next start works.
func TestQEMUFaultsDuringBoot(t *testing.T) {
	for _, c := range []struct {
		name   string
		signal syscall.Signal
		cold   bool
		want   error
	}{
		{"killed during a cold boot", syscall.SIGKILL, true, ErrBootFailed},
		{"killed while making a template", syscall.SIGKILL, false, ErrBootFailed},
		{"frozen during a cold boot", syscall.SIGSTOP, true, ErrBootTimeout},
		{"frozen while making a template", syscall.SIGSTOP, false, ErrBootTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			work, templates := t.TempDir(), t.TempDir()
			// TCG: no accelerator probe, whose QEMU would be found too.
			cfg := Config{WorkDir: work, TemplateDir: templates, ColdBoot: c.cold, Accel: AccelTCG, BootTimeout: 10 * time.Second}
			done := make(chan error, 1)
			began := time.Now()
			go func() {
				sb, err := Start(context.Background(), cfg)
				if sb != nil {
					sb.Stop(context.Background())
				}
				done <- err
			}()
			var pid int
			for deadline := time.Now().Add(20 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if pids := qemusMentioning(work); len(pids) > 0 {
					pid = pids[0]
				}
			}
			if pid == 0 {
				t.Fatal("QEMU never started")
			}
			time.Sleep(300 * time.Millisecond) // inside the boot
			syscall.Kill(pid, c.signal)
			select {
			case err := <-done:
				if !errors.Is(err, c.want) {
					t.Fatalf("Start: %v, want %v", err, c.want)
				}
			case <-time.After(time.Until(began.Add(cfg.BootTimeout + 15*time.Second))):
				t.Fatal("Start did not return")
			}
			if left := qemusMentioning(work); len(left) > 0 {
				t.Fatalf("QEMU left: %v", left)
			}
			if sbs, _ := filepath.Glob(filepath.Join(work, "sb-*")); len(sbs) > 0 {
				t.Errorf("work folders left: %v", sbs)
			}
			if builds, _ := filepath.Glob(filepath.Join(templates, "*.build-*")); len(builds) > 0 {
				t.Errorf("template builds left: %v", builds)
			}
			cfg.BootTimeout = 0
			sb := startSandbox(t, cfg)
			if r := run(t, sb, ExecRequest{Command: "echo fine"}); string(r.Stdout) != "fine\n" {
				t.Fatalf("the next start: %+v", r)
			}
		})
	}
}

// QEMU frozen during a checkpoint: the checkpoint fails when the caller's
// deadline passes, and once QEMU goes on, the sandbox works and its
// monitor is in step (the late answer to the given-up checkpoint is not
// taken for the next command's).
func TestQEMUFrozenDuringCheckpoint(t *testing.T) {
	sb := startSandbox(t, Config{})
	saves := t.TempDir()
	for _, op := range []string{"checkpoint", "save"} {
		syscall.Kill(sb.PID(), syscall.SIGSTOP)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		var err error
		if op == "checkpoint" {
			err = sb.Checkpoint(ctx, "c1")
		} else {
			_, err = sb.Save(ctx, filepath.Join(saves, "s"))
		}
		cancel()
		syscall.Kill(sb.PID(), syscall.SIGCONT)
		if !errors.Is(err, ErrCancelled) || time.Since(start) > 10*time.Second {
			t.Fatalf("a %s of a frozen QEMU: %v after %v", op, err, time.Since(start))
		}
	}
	if left, _ := os.ReadDir(saves); len(left) > 0 {
		t.Errorf("the given-up save left %v", left)
	}
	run(t, sb, ExecRequest{Command: "echo before > /root/mark"})
	if err := sb.Checkpoint(context.Background(), "c2"); err != nil {
		t.Fatalf("a checkpoint after SIGCONT: %v", err)
	}
	run(t, sb, ExecRequest{Command: "echo after > /root/mark"})
	if err := sb.Revert(context.Background(), "c2"); err != nil {
		t.Fatalf("a revert after SIGCONT: %v", err)
	}
	if r := run(t, sb, ExecRequest{Command: "cat /root/mark"}); string(r.Stdout) != "before\n" {
		t.Fatalf("after the revert: %q", r.Stdout)
	}
	gone(t, sb)
}
