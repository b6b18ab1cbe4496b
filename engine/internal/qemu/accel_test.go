package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/image"
)

// TestProbeDiesWithItsProcess kills a process in the middle of the
// accelerator probe: the probe's QEMU must go with it (it used to spin at
// 100% CPU for ever). A probe lasts where KVM spins, as on the development
// machines; so that the leak is tested everywhere, the probe also runs a
// stand-in for QEMU that never ends (a shell loop named qemu-system-*):
// what is tested is that the probe's child dies with its process, whatever
// the child does.
func TestProbeDiesWithItsProcess(t *testing.T) {
	if kernel := os.Getenv("QUICKSAND_TEST_PROBE_KERNEL"); kernel != "" {
		probe(context.Background(), os.Getenv("QUICKSAND_TEST_PROBE_BINARY"), image.HostArch(), "kvm", kernel)
		return
	}
	stall := filepath.Join(t.TempDir(), "qemu-system-stall")
	if err := os.WriteFile(stall, []byte("#!/bin/sh\nwhile :; do sleep 0.1; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("a probe that never ends", func(t *testing.T) { probeDiesWithItsProcess(t, stall) })
	t.Run("KVM that spins", func(t *testing.T) {
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
			t.Skip("no usable /dev/kvm: the real probe never runs on this machine (the stand-in above does)")
		} else {
			f.Close()
		}
		probeDiesWithItsProcess(t, Binary(image.HostArch()))
	})
}

// probeDiesWithItsProcess runs the probe with binary in a helper process,
// kills the helper once the probe's child runs, and checks the child died.
func probeDiesWithItsProcess(t *testing.T, binary string) {
	img, err := image.Resolve("debian", image.SearchDirs(nil))
	if err != nil {
		t.Fatalf("the debian image (make image): %v", err)
	}
	// A kernel path of its own, to find this probe's QEMU by.
	kernel := filepath.Join(t.TempDir(), "probe-kernel")
	if err := os.Symlink(img.KernelPath(), kernel); err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestProbeDiesWithItsProcess$")
	helper.Env = append(os.Environ(), "QUICKSAND_TEST_PROBE_KERNEL="+kernel, "QUICKSAND_TEST_PROBE_BINARY="+binary)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	// Running when the helper is killed: seen, and still there 200 ms
	// later (a real QEMU whose KVM fails exits by itself at once, and then
	// its death proves nothing).
	var seen bool
	for i := 0; i < 100 && !seen; i++ {
		time.Sleep(20 * time.Millisecond)
		seen = len(qemusWith(kernel)) > 0
	}
	time.Sleep(200 * time.Millisecond)
	seen = seen && len(qemusWith(kernel)) > 0
	helper.Process.Kill()
	helper.Wait()
	if !seen && binary != Binary(image.HostArch()) {
		t.Fatal("the probe's stand-in was never seen running")
	}
	if !seen {
		t.Skip("the probe ended before it could be caught running (KVM works, or fails at once, here)")
	}
	for i := 0; i < 50 && len(qemusWith(kernel)) > 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if pids := qemusWith(kernel); len(pids) > 0 {
		for _, p := range pids {
			if proc, err := os.FindProcess(p); err == nil {
				proc.Kill()
			}
		}
		t.Fatalf("the probe's QEMU outlived its process: %v", pids)
	}
}

// qemusWith lists the processes whose command line mentions s.
func qemusWith(s string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		raw, err := os.ReadFile(d + "/cmdline")
		if err == nil && strings.Contains(string(raw), s) && strings.Contains(string(raw), "qemu-system") {
			var pid int
			for _, c := range filepath.Base(d) {
				pid = pid*10 + int(c-'0')
			}
			pids = append(pids, pid)
		}
	}
	return pids
}
