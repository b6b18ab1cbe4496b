package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/image"
	"github.com/quicksand-go/quicksand/engine/internal/proc"
)

// probeTimeout bounds how long a hardware accelerator may take to show that
// it runs a kernel. Under working KVM the kernel's first line comes within
// tens of milliseconds; on the development machines KVM spins forever.
const probeTimeout = 3 * time.Second

// accelMemo remembers each probe's answer for the life of the process: the
// answer cannot change while the host runs, and a probe costs up to
// probeTimeout.
var accelMemo struct {
	sync.Mutex
	answers map[string]string
}

// hardwareAccel is the hardware accelerator of this OS, or "".
func hardwareAccel() string {
	switch runtime.GOOS {
	case "linux":
		return "kvm"
	case "darwin":
		return "hvf"
	}
	return ""
}

// ChooseAuto picks the accelerator for "auto": the OS's hardware accelerator
// when it can run a guest of arch here, else "tcg". It boots kernel briefly
// to find out, at most once per process (and once per host boot when
// cacheDir is set, where the answer is kept keyed by the host's boot id).
// denied is set when the host has KVM but this user may not use it: the
// user can fix that, and must hear so.
func ChooseAuto(ctx context.Context, binary, arch, kernel, cacheDir string) (accel string, denied error) {
	hw := hardwareAccel()
	if hw == "" || arch != image.HostArch() {
		return "tcg", nil
	}
	if hw == "kvm" {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			if os.IsNotExist(err) {
				return "tcg", nil
			}
			return "tcg", fmt.Errorf("/dev/kvm exists but this user cannot open it (%v): add the user to the group that owns it (usually kvm) to run guests at native speed", err)
		}
		f.Close()
	}
	key := binary + " " + arch + " " + hw
	accelMemo.Lock()
	defer accelMemo.Unlock()
	if a, ok := accelMemo.answers[key]; ok {
		return a, nil
	}
	cache := diskCache{dir: cacheDir}
	answer, ok := cache.load(key)
	if !ok {
		answer = "tcg"
		if probe(ctx, binary, arch, hw, kernel) {
			answer = hw
		}
		cache.store(key, answer)
	}
	if accelMemo.answers == nil {
		accelMemo.answers = map[string]string{}
	}
	accelMemo.answers[key] = answer
	return answer, nil
}

// probe boots kernel with accel and reports whether it printed its banner in
// time. A broken accelerator either makes QEMU exit or spins silently.
func probe(ctx context.Context, binary, arch, accel, kernel string) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	console, machine := "ttyS0", "microvm,x-option-roms=off"
	earlycon := "earlyprintk=serial,ttyS0,115200"
	if arch == "arm64" {
		console, machine, earlycon = "ttyAMA0", "virt", "earlycon"
	}
	cmd := exec.CommandContext(ctx, binary,
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-accel", accel, "-cpu", "host", "-M", machine, "-m", "128",
		"-serial", "stdio", "-kernel", kernel,
		"-append", "console="+console+" "+earlycon+" loglevel=8 panic=-1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false
	}
	// Like every QEMU of ours, it dies with the program that started it
	// (a probe of a spinning KVM used to be left at 100% CPU for ever).
	if err := proc.Start(cmd); err != nil {
		return false
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Linux version") {
			return true
		}
	}
	return false
}

// diskCache keeps probe answers in a file, valid for one boot of the host.
type diskCache struct{ dir string }

func bootID() string {
	raw, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}

func (c diskCache) path() string { return filepath.Join(c.dir, "accel-probe.json") }

func (c diskCache) read() map[string]string {
	m := map[string]string{}
	raw, err := os.ReadFile(c.path())
	if err == nil {
		_ = json.Unmarshal(raw, &m)
	}
	return m
}

func (c diskCache) load(key string) (string, bool) {
	id := bootID()
	if c.dir == "" || id == "" {
		return "", false
	}
	a, ok := c.read()[id+" "+key]
	return a, ok
}

func (c diskCache) store(key, answer string) {
	id := bootID()
	if c.dir == "" || id == "" {
		return
	}
	m := c.read()
	m[id+" "+key] = answer
	raw, _ := json.Marshal(m)
	tmp := c.path() + ".tmp" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	if os.WriteFile(tmp, raw, 0o600) == nil {
		_ = os.Rename(tmp, c.path())
	}
}
