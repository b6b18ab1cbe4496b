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
// 100% CPU for ever). The probe runs only where /dev/kvm can be opened; on
// the development machines KVM is there and spins, so the probe lasts.
func TestProbeDiesWithItsProcess(t *testing.T) {
	if kernel := os.Getenv("QUICKSAND_TEST_PROBE_KERNEL"); kernel != "" {
		probe(context.Background(), Binary(image.HostArch()), image.HostArch(), "kvm", kernel)
		return
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skip("no usable /dev/kvm: the accelerator probe never runs on this machine")
	} else {
		f.Close()
	}
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
	helper.Env = append(os.Environ(), "QUICKSAND_TEST_PROBE_KERNEL="+kernel)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var seen bool
	for i := 0; i < 100 && !seen; i++ {
		seen = len(qemusWith(kernel)) > 0
		time.Sleep(20 * time.Millisecond)
	}
	helper.Process.Kill()
	helper.Wait()
	if !seen {
		t.Skip("the probe ended before it could be caught running (KVM works here)")
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
