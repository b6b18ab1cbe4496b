package engine

// Faults of the host around a start: its ports taken by another local
// user, a template build killed midway, its disks full. Each error must
// say what went wrong, and a template is thrown away only for its own
// faults.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// ownNetnsEnv marks the run of a test again inside a network
	// namespace of its own (runInOwnNetns).
	ownNetnsEnv = "QUICKSAND_TEST_OWN_NETNS"
	// holdPortsEnv ("lo-hi") makes TestHelperHoldPorts the attacker that
	// takes those ports of 127.0.0.1.
	holdPortsEnv = "QUICKSAND_TEST_HOLD_PORTS"
	// coldBuildEnv (a folder) makes TestHelperColdBuild start a cold
	// template build there.
	coldBuildEnv = "QUICKSAND_TEST_COLD_BUILD_BASE"
	// attackPorts is the ephemeral range in the attack's own namespace:
	// small, so the attacker takes all of it at once.
	attackPortLo, attackPortHi = 40000, 40199
)

// runInOwnNetns runs the calling test again in a new network namespace
// (its own loopback and ephemeral port range, which nothing else on the
// machine uses) and fails with it. It reports whether the caller is that
// run, which goes on with the test.
func runInOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(ownNetnsEnv) != "" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("bringing up the namespace's loopback: %v %s", err, out)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test makes a network namespace: run it as root (as CI does)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.timeout=15m")
	cmd.Env = append(os.Environ(), ownNetnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace of its own:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the run in its own network namespace failed: %v", err)
	}
	return false
}

// TestHelperHoldPorts is the attacker of TestPortExhaustionKeepsTheTemplate,
// run as another local user: it listens on every port of holdPortsEnv on
// 127.0.0.1 that it can, says how many, and holds them until its stdin
// closes.
func TestHelperHoldPorts(t *testing.T) {
	spec := os.Getenv(holdPortsEnv)
	if spec == "" {
		t.Skip("run by TestPortExhaustionKeepsTheTemplate")
	}
	var lo, hi int
	fmt.Sscanf(spec, "%d-%d", &lo, &hi)
	held := 0
	for p := lo; p <= hi; p++ {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			break
		}
		if syscall.Bind(fd, &syscall.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}) != nil || syscall.Listen(fd, 1) != nil {
			syscall.Close(fd)
			continue
		}
		held++
	}
	fmt.Printf("HOLDING %d\n", held)
	io.Copy(io.Discard, os.Stdin)
}

// Another local user holding every free port of 127.0.0.1 makes a start
// fail with an error that says so, and costs nothing else: the template
// (not at fault) stays, and the next start after the attack is warm. The
// template used to be thrown away and rebuilt, which failed too.
func TestPortExhaustionKeepsTheTemplate(t *testing.T) {
	if !runInOwnNetns(t) {
		return
	}
	rangeFile := "/proc/sys/net/ipv4/ip_local_port_range"
	if err := os.WriteFile(rangeFile, []byte(fmt.Sprintf("%d %d", attackPortLo, attackPortHi)), 0o644); err != nil {
		t.Fatal(err)
	}
	uid, gid := attackerIdentity(t)
	base := attackBase(t)
	templates := t.TempDir()
	cfg := Config{TemplateDir: templates, WorkDir: t.TempDir()}
	startSandbox(t, cfg).Stop(context.Background())
	before := templateFolders(t, templates)
	if len(before) != 1 {
		t.Fatalf("templates after the first start: %v", before)
	}

	holder := exec.Command(filepath.Join(base, "attacker"), "-test.run=^TestHelperHoldPorts$")
	holder.Env = []string{holdPortsEnv + fmt.Sprintf("=%d-%d", attackPortLo, attackPortHi), "PATH=/usr/bin:/bin"}
	holder.Dir = "/"
	holder.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	release, _ := holder.StdinPipe()
	stdout, _ := holder.StdoutPipe()
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer release.Close()
	var held int
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		if _, err := fmt.Sscanf(sc.Text(), "HOLDING %d", &held); err == nil {
			break
		}
	}
	t.Logf("the attacker holds %d of the %d ports", held, attackPortHi-attackPortLo+1)

	began := time.Now()
	sb, err := Start(context.Background(), cfg)
	if err == nil {
		sb.Stop(context.Background())
		t.Fatal("a start with every port taken succeeded")
	}
	t.Logf("the start under attack, after %v: %v", time.Since(began).Round(time.Millisecond), err)
	if KindOf(err) != KindResource || !strings.Contains(err.Error(), "port") || !strings.Contains(err.Error(), "taken") {
		t.Errorf("the error does not say the ports are taken (kind %v): %v", KindOf(err), err)
	}
	if after := templateFolders(t, templates); !reflect.DeepEqual(after, before) {
		t.Errorf("the template changed after a start that failed for want of a port: %v, was %v", after, before)
	}

	release.Close()
	holder.Wait()
	began = time.Now()
	sb = startSandbox(t, cfg)
	took := time.Since(began)
	t.Logf("the next start after the attack: %v, warm %v, ready at %v", took.Round(time.Millisecond), sb.timing.Warm, sb.timing.Ready.Round(time.Millisecond))
	// Warm says it resumed, not that it did not build what it resumed.
	if after := templateFolders(t, templates); !sb.timing.Warm || !reflect.DeepEqual(after, before) {
		t.Errorf("the next start after the attack (%v) built the template again: warm %v, templates %v, were %v", took, sb.timing.Warm, after, before)
	}
	if r := run(t, sb, ExecRequest{Command: "echo fine"}); string(r.Stdout) != "fine\n" {
		t.Fatalf("after the attack: %+v", r)
	}
}

// A port forward whose host port another process listens on fails the
// start at once with an error that names the port, and the template (not
// at fault) stays. It used to be tried three times, then the template was
// thrown away and rebuilt, and the start failed all the same.
func TestTakenForwardPortKeepsTheTemplate(t *testing.T) {
	templates := t.TempDir()
	startSandbox(t, Config{TemplateDir: templates}).Stop(context.Background())
	before := templateFolders(t, templates)
	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	port := squatter.Addr().(*net.TCPAddr).Port
	began := time.Now()
	sb, err := Start(context.Background(), Config{TemplateDir: templates, PortForwards: []PortForward{{Host: port, Guest: 8000}}})
	if err == nil {
		sb.Stop(context.Background())
		t.Fatal("a start forwarding a taken port succeeded")
	}
	t.Logf("after %v: %v", time.Since(began).Round(time.Millisecond), err)
	if KindOf(err) != KindResource || !strings.Contains(err.Error(), fmt.Sprintf("port %d", port)) || !strings.Contains(err.Error(), "taken") {
		t.Errorf("the error does not say that port %d is taken (kind %v): %v", port, KindOf(err), err)
	}
	if after := templateFolders(t, templates); !reflect.DeepEqual(after, before) {
		t.Errorf("the template changed after a start whose forward's port was taken: %v, was %v", after, before)
	}
}

// TestHelperColdBuild starts a cold template build in coldBuildEnv's folder
// (other settings than its template's), for TestKilledBuildIsSweptByAnyStart
// to kill.
func TestHelperColdBuild(t *testing.T) {
	base := os.Getenv(coldBuildEnv)
	if base == "" {
		t.Skip("run by TestKilledBuildIsSweptByAnyStart")
	}
	Start(context.Background(), Config{WorkDir: base + "/work", TemplateDir: base + "/templates", MemoryMiB: DefaultMemoryMiB + 128})
}

// A process killed while it built a template leaves its half-built
// template (as big as the guest's RAM in use); the next start in the same
// folder removes it, also when that start builds nothing (its template
// exists). It used to be removed only by the next build.
func TestKilledBuildIsSweptByAnyStart(t *testing.T) {
	old := unlockedGrace
	unlockedGrace = 0 // the build folder is a few seconds old
	defer func() { unlockedGrace = old }()
	base := t.TempDir()
	cfg := Config{WorkDir: base + "/work", TemplateDir: base + "/templates"}
	startSandbox(t, cfg).Stop(context.Background())
	built := templatesIn(t, cfg.TemplateDir)[0]

	child := exec.Command(os.Args[0], "-test.run=^TestHelperColdBuild$")
	child.Env = append(os.Environ(), coldBuildEnv+"="+base)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// Proof that the build is under way: its folder, its QEMU, and guest
	// RAM written into the folder.
	builds := func() []string {
		b, _ := filepath.Glob(filepath.Join(base, "templates", "*"+buildSuffix+"*"))
		return b
	}
	underway := func() bool {
		for _, b := range builds() {
			var st syscall.Stat_t
			if syscall.Stat(filepath.Join(b, templateRAM), &st) == nil && st.Blocks*512 > 16<<20 && len(qemusMentioning(b)) > 0 {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(2 * time.Minute); !underway(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			child.Process.Kill()
			child.Wait()
			t.Fatalf("the cold build did not get under way: %v", builds())
		}
	}
	killWithItsQEMUs(t, child, base)
	left := builds()
	if len(left) != 1 {
		t.Fatalf("the killed build left %v", left)
	}
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(left[0], templateRAM), &st)
	t.Logf("the killed build left %s (%d MiB)", filepath.Base(left[0]), st.Blocks*512>>20)

	sb := startSandbox(t, cfg)
	if now := templatesIn(t, cfg.TemplateDir); !sb.timing.Warm || len(now) != 1 || !now[0].Created.Equal(built.Created) {
		t.Fatal("the start after the killed build built a template: its own should have been there")
	}
	if left := builds(); len(left) > 0 {
		t.Fatalf("a start left the killed build behind: %v", left)
	}
}

// A template whose state does not load (its files as it recorded them,
// but not a state QEMU can resume) is still thrown away and rebuilt.
func TestTemplateThatDoesNotResumeIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	startSandbox(t, Config{TemplateDir: dir}).Stop(context.Background())
	tpl := templatesIn(t, dir)[0]
	state := filepath.Join(tpl.dir, templateState)
	if err := os.WriteFile(state, []byte("not a migration stream"), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if tpl.StateSHA256, err = fileSHA256(state); err != nil {
		t.Fatal(err)
	}
	if tpl.Files[templateState], err = stampOf(state); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(tpl)
	if err := os.WriteFile(filepath.Join(tpl.dir, templateMeta), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTemplate(tpl.dir, tpl.Key); err != nil {
		t.Fatalf("the doctored template is not taken as valid: %v", err)
	}
	sb := startSandbox(t, Config{TemplateDir: dir})
	if r := run(t, sb, ExecRequest{Command: "echo fine"}); string(r.Stdout) != "fine\n" {
		t.Fatalf("%+v", r)
	}
	if rebuilt := templatesIn(t, dir)[0]; !rebuilt.Created.After(tpl.Created) {
		t.Fatal("a template whose state does not load was kept")
	}
}

// killWithItsQEMUs kills the process cmd (SIGKILL) and checks that the
// QEMU processes it started (their command lines mention s) die with it
// within 5 s; those left are killed and the test fails.
func killWithItsQEMUs(t *testing.T, cmd *exec.Cmd, s string) {
	t.Helper()
	cmd.Process.Kill()
	cmd.Wait()
	for i := 0; i < 100 && len(qemusMentioning(s)) > 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if pids := qemusMentioning(s); len(pids) > 0 {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		t.Fatalf("QEMU outlived the killed process: %v", pids)
	}
}

// smallDisk mounts a tmpfs of size on a new folder for the test.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a small tmpfs: it needs root (make test runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "qs-test-full", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file in dir until its disk is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatal(err)
			}
			return
		}
	}
}

// saysDiskFull checks that err is a resource error that names the folder
// whose disk is full.
func saysDiskFull(t *testing.T, what string, err error, folder string) {
	t.Helper()
	msg := fmt.Sprint(err)
	if KindOf(err) != KindResource || !strings.Contains(msg, "full") || !strings.Contains(msg, folder) {
		t.Errorf("%s: the error does not say that the disk holding %s is full (kind %v): %v", what, folder, KindOf(err), err)
	}
}

// A full disk on the host says so, where it used to be "the agent did not
// answer in time" (QEMU paused the VM on the write error) or "QEMU exited
// before the agent was ready" (the template's RAM file could not grow).
func TestHostDiskFullIsNamed(t *testing.T) {
	t.Run("work folder", func(t *testing.T) {
		work := smallDisk(t, "64m")
		sb := startSandbox(t, Config{WorkDir: work})
		fill(t, work)
		began := time.Now()
		_, err := sb.Execute(context.Background(), ExecRequest{Command: "head -c 50000000 /dev/urandom > /root/big; sync", Timeout: 3 * time.Second})
		t.Logf("a write to the guest's disk, after %v: %v", time.Since(began).Round(time.Millisecond), err)
		saysDiskFull(t, "the call that wrote", err, work)
		began = time.Now()
		_, err = sb.Execute(context.Background(), ExecRequest{Command: "echo hi", Timeout: time.Second})
		took := time.Since(began)
		t.Logf("the next call, after %v: %v", took.Round(time.Millisecond), err)
		saysDiskFull(t, "the next call", err, work)
		// QEMU is asked why the VM is silent while the call waits
		// (pauseProbeEvery), not only once it gave up (its timeout
		// and transportMargin: 16 s).
		if took > 10*time.Second {
			t.Errorf("the next call ended after %v: the paused VM was not noticed while it waited", took)
		}
		gone(t, sb)
	})
	t.Run("template folder", func(t *testing.T) {
		templates := smallDisk(t, "48m")
		began := time.Now()
		sb, err := Start(context.Background(), Config{TemplateDir: templates})
		if err == nil {
			sb.Stop(context.Background())
			t.Fatal("a template built on a 48 MiB disk")
		}
		t.Logf("the start, after %v: %v", time.Since(began).Round(time.Millisecond), err)
		saysDiskFull(t, "the start", err, templates)
		if builds, _ := filepath.Glob(filepath.Join(templates, "*"+buildSuffix+"*")); len(builds) > 0 {
			t.Errorf("the failed build was left: %v", builds)
		}
	})
}
