package engine

// Faults injected into real VMs, each with the outcome a caller must see:
// a clear error or a working sandbox within a bounded time, no QEMU of ours
// left, no folder left. docs/reliability.md lists them.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gone checks that a stopped sandbox left neither its QEMU nor its folder.
func gone(t *testing.T, sb *Sandbox) {
	t.Helper()
	sb.Stop(context.Background())
	if syscall.Kill(sb.PID(), 0) == nil {
		t.Errorf("QEMU %d still running", sb.PID())
	}
	if _, err := os.Stat(sb.workdir.path); !os.IsNotExist(err) {
		t.Errorf("work folder %s left: %v", sb.workdir.path, err)
	}
}

// Faults that end the guest: each is a not-running error at once for the
// call in flight and every call after, never a wait for a timeout.
func TestGuestThatEnds(t *testing.T) {
	for name, cmd := range map[string]string{
		"kernel panic": "echo c > /proc/sysrq-trigger",
		// reboot(2) straight: the guest has no init system to ask.
		"power off": `python3 -c 'import ctypes; ctypes.CDLL(None).reboot(0x4321fedc)'`,
		"reboot":    `python3 -c 'import ctypes; ctypes.CDLL(None).reboot(0x01234567)'`,
	} {
		t.Run(name, func(t *testing.T) {
			sb := startSandbox(t, Config{})
			start := time.Now()
			r, err := sb.Execute(context.Background(), ExecRequest{Command: cmd, Timeout: time.Minute})
			if !errors.Is(err, ErrNotRunning) || time.Since(start) > 10*time.Second {
				t.Fatalf("the call that ended the guest: %v after %v (%+v)", err, time.Since(start), r)
			}
			if _, err := sb.Execute(context.Background(), ExecRequest{Command: "true"}); !errors.Is(err, ErrNotRunning) {
				t.Fatalf("a call after: %v", err)
			}
			gone(t, sb)
		})
	}
}

// Faults the guest survives: chaos_guest_test.go.

// A QEMU frozen from outside (SIGSTOP): a call fails within its timeout
// plus the transport margin with a transport error, and once QEMU goes on
// the sandbox works again.
func TestQEMUStopped(t *testing.T) {
	sb := startSandbox(t, Config{})
	syscall.Kill(sb.PID(), syscall.SIGSTOP)
	start := time.Now()
	_, err := sb.Execute(context.Background(), ExecRequest{Command: "true", Timeout: time.Second})
	took := time.Since(start)
	syscall.Kill(sb.PID(), syscall.SIGCONT)
	// docs/reliability.md: "after its timeout plus the 15 s margin"; 5 s
	// of slack above for a loaded machine.
	const margin = 15 * time.Second
	if !errors.Is(err, ErrTransport) || took < time.Second+margin || took > time.Second+margin+5*time.Second {
		t.Fatalf("a call to a stopped QEMU: %v after %v", err, took)
	}
	if r := run(t, sb, ExecRequest{Command: "echo again"}); string(r.Stdout) != "again\n" {
		t.Fatalf("after SIGCONT: %+v", r)
	}
	gone(t, sb)
}

// QEMU killed during a checkpoint or a save: the operation fails with a
// not-running error, and nothing is left (a save's folder included). QEMU
// is killed only once the operation is seen writing the VM's state (a
// checkpoint's overlay growing, a save's state file), and the test fails
// if the operation ended before.
func TestQEMUKilledDuringSnapshots(t *testing.T) {
	for _, op := range []string{"checkpoint", "save"} {
		t.Run(op, func(t *testing.T) {
			sb := startSandbox(t, Config{})
			// Something to write, on the disk before the overlay is measured.
			run(t, sb, ExecRequest{Command: "head -c 200000000 /dev/urandom > /root/big; sync"})
			parent := t.TempDir()
			saveDir := parent + "/s"
			overlay := filepath.Join(sb.workdir.path, "overlay.qcow2")
			before := fileSize(overlay)
			writing := func() bool {
				if op == "checkpoint" {
					return fileSize(overlay) > before+1<<20
				}
				states, _ := filepath.Glob(filepath.Join(parent, "s"+savingSuffix+"*", saveState))
				return len(states) == 1 && fileSize(states[0]) > 0
			}
			done := make(chan error, 1)
			go func() {
				if op == "checkpoint" {
					done <- sb.Checkpoint(context.Background(), "c")
				} else {
					_, err := sb.Save(context.Background(), saveDir)
					done <- err
				}
			}()
			var early error
			if !waitFor(30*time.Second, writing, done, &early) {
				t.Fatalf("the %s ended (%v) before it was seen writing the VM's state", op, early)
			}
			syscall.Kill(sb.PID(), syscall.SIGKILL)
			select {
			case err := <-done:
				if !errors.Is(err, ErrNotRunning) && !errors.Is(err, ErrSnapshot) {
					t.Fatalf("%s when QEMU died: %v", op, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s did not return when QEMU died", op)
			}
			if _, err := os.Stat(saveDir); !os.IsNotExist(err) {
				t.Errorf("a half-written save was left: %v", err)
			}
			if leftovers, _ := os.ReadDir(parent); len(leftovers) > 0 {
				t.Errorf("left: %v", leftovers)
			}
			gone(t, sb)
		})
	}
}

// fileSize is the size of the file at path, or -1.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// waitFor polls seen every 5 ms until it holds (true), or until the
// timeout passes or the operation reports on done first (false; what it
// reported in *early).
func waitFor(timeout time.Duration, seen func() bool, done <-chan error, early *error) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if seen() {
			return true
		}
		select {
		case *early = <-done:
			return false
		default:
		}
	}
	return false
}

// Twenty sandboxes started at once all start, run a command and stop, and
// no QEMU is left.
func TestTwentyAtOnce(t *testing.T) {
	const n = 20
	sbs := make([]*Sandbox, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range sbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if sbs[i], errs[i] = Start(ctx, Config{}); errs[i] != nil {
				return
			}
			var r *ExecResult
			if r, errs[i] = sbs[i].Execute(ctx, ExecRequest{Command: "echo ok"}); errs[i] == nil && string(r.Stdout) != "ok\n" {
				errs[i] = errors.New("wrong output " + strings.TrimSpace(string(r.Stdout)))
			}
		}()
	}
	wg.Wait()
	for i, sb := range sbs {
		if errs[i] != nil {
			t.Errorf("sandbox %d: %v", i, errs[i])
		}
		if sb != nil {
			gone(t, sb)
		}
	}
}

// chaosStageEnv makes this test binary a helper that works in the folders
// it names: it says "READY" when the stage to be interrupted begins,
// "RUNNING" once an execute's command has printed, and "DONE" when the
// stage's call returned (then it waits to be killed).
const chaosStageEnv = "QUICKSAND_TEST_CHAOS_STAGE"

func TestHelperChaosStage(t *testing.T) {
	stage := os.Getenv(chaosStageEnv)
	if stage == "" {
		t.Skip("run by TestHostKilledMidway")
	}
	base := os.Getenv("QUICKSAND_TEST_CHAOS_BASE")
	cfg := Config{WorkDir: base + "/work", TemplateDir: base + "/templates"}
	ctx := context.Background()
	defer func() {
		println("DONE")
		select {}
	}()
	if stage == "start" || stage == "template build" {
		println("READY")
		Start(ctx, cfg)
		return
	}
	sb, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if stage != "execute" {
		sb.Execute(ctx, ExecRequest{Command: "head -c 100000000 /dev/urandom > /root/big; sync"})
	}
	println("READY")
	switch stage {
	case "execute":
		var once sync.Once
		sb.Execute(ctx, streaming(ExecRequest{Command: "echo started; sleep 60", Timeout: time.Minute}, func(Stream, []byte) { once.Do(func() { println("RUNNING") }) }))
	case "checkpoint":
		sb.Checkpoint(ctx, "c")
	case "save":
		sb.Save(ctx, base+"/saves/s")
	}
}

// The host process killed at each stage: its QEMU goes with it at once,
// and the next start in the same folders removes what it left. The kill
// comes only once the stage is seen under way (its QEMU running, its
// half-built template, its command's first output, the VM's state being
// written), and the test fails if the helper said the stage was done.
func TestHostKilledMidway(t *testing.T) {
	old := unlockedGrace
	unlockedGrace = 0
	defer func() { unlockedGrace = old }()
	for _, name := range []string{"start", "template build", "execute", "checkpoint", "save"} {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			os.Mkdir(base+"/saves", 0o700)
			if name != "template build" {
				// A template in place, so that only the stage itself runs.
				startSandbox(t, Config{WorkDir: base + "/work", TemplateDir: base + "/templates"}).Stop(context.Background())
			}
			helper := exec.Command(os.Args[0], "-test.run=^TestHelperChaosStage$")
			helper.Env = append(os.Environ(), chaosStageEnv+"="+name, "QUICKSAND_TEST_CHAOS_BASE="+base)
			stderr, _ := helper.StderrPipe()
			if err := helper.Start(); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			said := "\n"
			ended := make(chan error, 1)
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := stderr.Read(buf)
					mu.Lock()
					said += string(buf[:n])
					mu.Unlock()
					if err != nil {
						ended <- err
						return
					}
				}
			}()
			helperSaid := func(line string) bool {
				mu.Lock()
				defer mu.Unlock()
				return strings.Contains(said, "\n"+line+"\n")
			}
			var early error
			if !waitFor(2*time.Minute, func() bool { return helperSaid("READY") }, ended, &early) {
				killWithItsQEMUs(t, helper, base)
				t.Fatalf("the helper did not get to its stage (%v)", early)
			}
			underWay := map[string]func() bool{
				"start": func() bool { return len(qemusMentioning(base)) > 0 },
				"template build": func() bool {
					builds, _ := filepath.Glob(base + "/templates/*" + buildSuffix + "*")
					return len(builds) > 0 && len(qemusMentioning(base)) > 0
				},
				"execute": func() bool { return helperSaid("RUNNING") },
				"checkpoint": func() bool {
					// The overlay holds the 100 MB written before READY;
					// savevm adds the VM's RAM to it.
					overlays, _ := filepath.Glob(base + "/work/sb-*/overlay.qcow2")
					return len(overlays) == 1 && fileSize(overlays[0]) > 110<<20
				},
				"save": func() bool {
					states, _ := filepath.Glob(base + "/saves/s" + savingSuffix + "*/" + saveState)
					return len(states) == 1 && fileSize(states[0]) > 0
				},
			}[name]
			if !waitFor(2*time.Minute, func() bool { return underWay() || helperSaid("DONE") }, ended, &early) || helperSaid("DONE") {
				killWithItsQEMUs(t, helper, base)
				t.Fatalf("the stage was not seen under way before it ended (%v)", early)
			}
			killWithItsQEMUs(t, helper, base)
			<-ended
			if helperSaid("DONE") {
				t.Fatal("the stage ended before the kill: nothing was interrupted")
			}
			// The next start sweeps what the killed one left.
			sb := startSandbox(t, Config{WorkDir: base + "/work", TemplateDir: base + "/templates"})
			if _, err := sb.Save(context.Background(), base+"/saves/next"); err != nil {
				t.Fatal(err)
			}
			left, _ := filepath.Glob(base + "/work/sb-*")
			builds, _ := filepath.Glob(base + "/templates/*" + buildSuffix + "*")
			savings, _ := filepath.Glob(base + "/saves/*" + savingSuffix + "*")
			if len(left) != 1 || len(builds) != 0 || len(savings) != 0 {
				t.Fatalf("left behind: work %v, builds %v, saves %v", left, builds, savings)
			}
		})
	}
}

// qemusMentioning lists the QEMU processes whose command line mentions s.
func qemusMentioning(s string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		raw, _ := os.ReadFile(p)
		if strings.Contains(string(raw), "qemu-system") && strings.Contains(string(raw), s) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			pids = append(pids, pid)
		}
	}
	return pids
}
