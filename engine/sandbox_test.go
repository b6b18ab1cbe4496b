package engine

// These tests boot real VMs from the debian image (`make image`): no mocks.
// One sandbox is shared by the tests whose commands leave no state behind;
// the others start their own.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
)

var shared struct {
	once sync.Once
	sb   *Sandbox
	err  error
}

func TestMain(m *testing.M) {
	if roots := os.Getenv(attackerEnv); roots != "" {
		os.Exit(attack(filepath.SplitList(roots)))
	}
	code := m.Run()
	if shared.sb != nil {
		shared.sb.Stop(context.Background())
	}
	stopPythonShared()
	os.Exit(code)
}

// sharedSandbox is one debian sandbox for tests that leave no state behind.
func sharedSandbox(t *testing.T) *Sandbox {
	t.Helper()
	shared.once.Do(func() {
		shared.sb, shared.err = Start(context.Background(), Config{})
	})
	if shared.err != nil {
		t.Fatalf("starting the shared sandbox: %v", shared.err)
	}
	return shared.sb
}

// startSandbox starts a sandbox of the test's own, stopped at its end.
func startSandbox(t *testing.T, cfg Config) *Sandbox {
	t.Helper()
	sb, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { sb.Stop(context.Background()) })
	return sb
}

func run(t *testing.T, sb *Sandbox, req ExecRequest) *ExecResult {
	t.Helper()
	res, err := sb.Execute(context.Background(), req)
	if err != nil {
		t.Fatalf("Execute(%q): %v", req.Command, err)
	}
	return res
}

func TestExecuteBasics(t *testing.T) {
	sb := sharedSandbox(t)
	cases := []struct {
		name           string
		req            ExecRequest
		stdout, stderr string
		code           int
	}{
		{"echo", ExecRequest{Command: "echo hello"}, "hello\n", "", 0},
		{"exit code", ExecRequest{Command: "exit 42"}, "", "", 42},
		{"stderr", ExecRequest{Command: "echo bad >&2; false"}, "", "bad\n", 1},
		{"cwd", ExecRequest{Command: "pwd", Cwd: "/usr/lib"}, "/usr/lib\n", "", 0},
		{"env", ExecRequest{Command: `echo "$GREETING, $NAME"`, Env: map[string]string{"GREETING": "hi", "NAME": "vm"}}, "hi, vm\n", "", 0},
		{"stdin", ExecRequest{Command: "tr a-z A-Z", Stdin: []byte("shout\n")}, "SHOUT\n", "", 0},
		{"script", ExecRequest{Command: "set -e\nx=0\nfor i in 1 2 3; do x=$((x+i)); done\necho sum=$x\n"}, "sum=6\n", "", 0},
		{"guest tools", ExecRequest{Command: "python3 -c 'print(6*7)'"}, "42\n", "", 0},
		{"bash", ExecRequest{Command: "echo ${BASH_VERSION:+bash}", Shell: "/bin/bash"}, "bash\n", "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, sb, c.req)
			if string(r.Stdout) != c.stdout || string(r.Stderr) != c.stderr || r.ExitCode != c.code || r.TimedOut {
				t.Fatalf("got stdout %q stderr %q code %d timedout %v; want %q %q %d",
					r.Stdout, r.Stderr, r.ExitCode, r.TimedOut, c.stdout, c.stderr, c.code)
			}
		})
	}
}

func TestBadRequestsAreErrors(t *testing.T) {
	sb := sharedSandbox(t)
	_, err := sb.Execute(context.Background(), ExecRequest{Command: "true", Cwd: "/no/such/dir"})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "/no/such/dir") {
		t.Fatalf("missing cwd: %v", err)
	}
	if _, err := sb.Execute(context.Background(), ExecRequest{}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("empty command: %v", err)
	}
}

func TestTimeoutKillsTheProcessTree(t *testing.T) {
	sb := sharedSandbox(t)
	r := run(t, sb, ExecRequest{
		Command: "echo started; sleep 300 & echo $! > /tmp/bg.pid; sh -c 'sleep 300'",
		Timeout: time.Second,
	})
	if !r.TimedOut || r.ExitCode != -1 || string(r.Stdout) != "started\n" {
		t.Fatalf("got %+v", r)
	}
	// Nothing of that command may still run in the guest.
	r = run(t, sb, ExecRequest{Command: "sleep 0.2; kill -0 $(cat /tmp/bg.pid) 2>/dev/null && echo alive; pgrep -x sleep || echo none"})
	if strings.TrimSpace(string(r.Stdout)) != "none" {
		t.Fatalf("left running: %q", r.Stdout)
	}
}

func TestStreamingOrderAndArrival(t *testing.T) {
	sb := sharedSandbox(t)
	type chunk struct {
		s  Stream
		p  string
		at time.Time
	}
	var got []chunk
	start := time.Now()
	res, err := sb.Execute(context.Background(), streaming(ExecRequest{
		Command: "printf 'one'; sleep 1; printf 'two' >&2; sleep 1; echo three",
	}, func(s Stream, p []byte) { got = append(got, chunk{s, string(p), time.Now()}) }))
	end := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, c := range got {
		seq = append(seq, fmt.Sprintf("%s:%s", c.s, c.p))
	}
	if strings.Join(seq, ",") != "stdout:one,stderr:two,stdout:three\n" {
		t.Fatalf("chunks %q", seq)
	}
	if got[0].at.Sub(start) > end.Sub(start)-1500*time.Millisecond {
		t.Fatalf("the first chunk (no newline) came %v after the start of a %v command", got[0].at.Sub(start), end.Sub(start))
	}
	if string(res.Stdout) != "onethree\n" || string(res.Stderr) != "two" || res.ExitCode != 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestBinaryOutputByteForByte(t *testing.T) {
	sb := sharedSandbox(t)
	r := run(t, sb, ExecRequest{Command: "head -c 300000 /dev/urandom > /tmp/rand && sha256sum /tmp/rand | cut -d' ' -f1"})
	want := strings.TrimSpace(string(r.Stdout))
	for _, streams := range []bool{false, true} {
		req := ExecRequest{Command: "cat /tmp/rand"}
		var res *ExecResult
		var err error
		var streamed []byte
		if streams {
			res, err = sb.Execute(context.Background(), streaming(req, func(_ Stream, p []byte) { streamed = append(streamed, p...) }))
		} else {
			res, err = sb.Execute(context.Background(), req)
		}
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(res.Stdout)
		if hex.EncodeToString(sum[:]) != want || len(res.Stdout) != 300000 {
			t.Fatalf("streaming=%v: %d bytes with a different sha256", streams, len(res.Stdout))
		}
		if streams && !bytes.Equal(streamed, res.Stdout) {
			t.Fatal("the chunks do not add up to the result")
		}
	}
	// And bytes in through stdin.
	in := []byte{0, 1, 2, 0xfe, 0xff, '\n'}
	r = run(t, sb, ExecRequest{Command: "od -An -tx1", Stdin: in})
	if strings.TrimSpace(string(r.Stdout)) != "00 01 02 fe ff 0a" {
		t.Fatalf("stdin bytes arrived as %q", r.Stdout)
	}
}

func TestConcurrentExecutesOnOneSandbox(t *testing.T) {
	sb := sharedSandbox(t)
	const n = 8
	dir := fmt.Sprintf("/tmp/rendezvous-%d", time.Now().UnixNano())
	// Each command waits until all n have started: only concurrent
	// execution lets them finish before their timeout.
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]*ExecResult, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = sb.Execute(context.Background(), ExecRequest{
				Command: fmt.Sprintf("mkdir -p %s; touch %s/%d; while [ $(ls %s | wc -l) -lt %d ]; do sleep 0.1; done; echo %d", dir, dir, i, dir, n, i),
				Timeout: 60 * time.Second,
			})
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil || outs[i].TimedOut || strings.TrimSpace(string(outs[i].Stdout)) != strconv.Itoa(i) {
			t.Fatalf("execute %d: %v %+v", i, errs[i], outs[i])
		}
	}
}

func TestCancelAbortsTheCall(t *testing.T) {
	sb := sharedSandbox(t)
	run(t, sb, ExecRequest{Command: "rm -f /tmp/not-cancelled"})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := sb.Execute(ctx, ExecRequest{Command: "sleep 2; echo done > /tmp/not-cancelled", Timeout: time.Minute})
	if !errors.Is(err, ErrCancelled) {
		t.Fatalf("error %v, want cancelled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	// The command was killed in the guest: past its sleep, it wrote nothing.
	time.Sleep(3 * time.Second)
	if r := run(t, sb, ExecRequest{Command: "cat /tmp/not-cancelled 2>/dev/null || echo absent"}); string(r.Stdout) != "absent\n" {
		t.Fatalf("the cancelled command ran on: %q", r.Stdout)
	}
	// The sandbox is still fine afterwards.
	if r := run(t, sb, ExecRequest{Command: "echo ok"}); string(r.Stdout) != "ok\n" {
		t.Fatalf("after cancel: %+v", r)
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	sb := sharedSandbox(t)
	c := agent.New(sb.AgentAddr(), "not-the-token")
	defer c.Close()
	err := c.Ping(context.Background())
	var se *agent.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("ping with a wrong token: %v", err)
	}
}

func TestBootTimingAndAccelerator(t *testing.T) {
	sb := sharedSandbox(t)
	bt := sb.BootTiming()
	if !bt.Warm || !(0 < bt.QEMUStarted && bt.QEMUStarted < bt.AgentListening && bt.AgentListening <= bt.Ready) {
		t.Fatalf("warm start phases: %+v", bt)
	}
	cold := startSandbox(t, Config{ColdBoot: true})
	bt = cold.BootTiming()
	if bt.Warm || !(0 < bt.QEMUStarted && bt.QEMUStarted < bt.KernelBooted && bt.KernelBooted < bt.AgentListening && bt.AgentListening <= bt.Ready) {
		t.Fatalf("cold boot phases out of order: %+v", bt)
	}
	if a := sb.Accelerator(); a != AccelTCG && a != AccelKVM {
		t.Fatalf("accelerator %q", a)
	}
	log, err := sb.ConsoleLog()
	if err != nil || !bytes.Contains(log, []byte("QUICKSAND_AGENT_READY")) {
		t.Fatalf("console log %q, %v", log, err)
	}
}

func TestMissingImage(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(context.Background(), Config{Image: "no-such-image", ImageDirs: []string{dir}})
	if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "no-such-image") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %v; want image not found naming the image and %s", err, dir)
	}
	_, err = Start(context.Background(), Config{Image: filepath.Join(dir, "nope")})
	if !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("missing folder: %v", err)
	}
}

// A missing QEMU is a boot error that says what to install, and where.
func TestMissingQEMUSaysWhatToInstall(t *testing.T) {
	_, err := Start(context.Background(), Config{QEMUPath: "qemu-system-that-is-not-installed"})
	if !errors.Is(err, ErrBootFailed) {
		t.Fatalf("error %v, want a boot error", err)
	}
	for _, want := range []string{"apt install qemu-system-", "dnf install qemu-system-", "brew install qemu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

func TestBadConfigFailsBeforeQEMU(t *testing.T) {
	_, err := Start(context.Background(), Config{CPUs: 1000})
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "cpus") {
		t.Fatalf("error %v", err)
	}
}

func TestStopDuringExecuteAndAfter(t *testing.T) {
	sb := startSandbox(t, Config{})
	done := callInFlight(t, sb)
	workdir := sb.workdir.path
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ { // Stop twice at once
		wg.Add(1)
		go func() { defer wg.Done(); sb.Stop(context.Background()) }()
	}
	wg.Wait()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRunning) {
			t.Fatalf("execute during stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the execute did not return after Stop")
	}
	if err := sb.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if sb.IsRunning() {
		t.Fatal("IsRunning after Stop")
	}
	if _, err := sb.Execute(context.Background(), ExecRequest{Command: "true"}); !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("execute after stop: %v", err)
	}
	if _, err := os.Stat(workdir); !os.IsNotExist(err) {
		t.Fatalf("work folder %s still there: %v", workdir, err)
	}
	if syscall.Kill(sb.PID(), 0) == nil {
		t.Fatalf("QEMU %d still running", sb.PID())
	}
}

func TestQEMUKilledFromOutside(t *testing.T) {
	sb := startSandbox(t, Config{})
	done := callInFlight(t, sb)
	syscall.Kill(sb.PID(), syscall.SIGKILL)
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "QEMU exited") {
			t.Fatalf("execute when QEMU died: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the execute did not return when QEMU died")
	}
	start := time.Now()
	_, err := sb.Execute(context.Background(), ExecRequest{Command: "true"})
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "killed") || time.Since(start) > time.Second {
		t.Fatalf("later execute: %v after %v", err, time.Since(start))
	}
}

// Many commands at once on one sandbox, each on a new connection, all
// succeed. (Found by trying 128: about a third failed with "fork/exec
// /bin/sh: no such file or directory", a 400: the agent's sweep of
// left-over cgroups removed the empty cgroups of commands not yet cloned
// into them.)
func TestManyExecutesAtOnce(t *testing.T) {
	sb := startSandbox(t, Config{})
	const n = 128
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			r, err := sb.Execute(context.Background(), ExecRequest{Command: fmt.Sprintf("echo %d", i)})
			if err == nil && string(r.Stdout) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("command %d printed %q (result %+v)", i, r.Stdout, *r)
			}
			errs <- err
		}()
	}
	failed := 0
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			failed++
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d commands failed", failed, n)
	}
}

func TestThreeSandboxesAtOnce(t *testing.T) {
	var wg sync.WaitGroup
	sbs := make([]*Sandbox, 3)
	errs := make([]error, 3)
	for i := range sbs {
		wg.Add(1)
		go func() { defer wg.Done(); sbs[i], errs[i] = Start(context.Background(), Config{}) }()
	}
	wg.Wait()
	for i, sb := range sbs {
		if errs[i] != nil {
			t.Fatalf("sandbox %d: %v", i, errs[i])
		}
		t.Cleanup(func() { sb.Stop(context.Background()) })
	}
	// Each has its own disk: a file written in one is absent in the others.
	for i, sb := range sbs {
		run(t, sb, ExecRequest{Command: fmt.Sprintf("echo %d > /root/which", i)})
	}
	for i, sb := range sbs {
		if r := run(t, sb, ExecRequest{Command: "cat /root/which"}); strings.TrimSpace(string(r.Stdout)) != strconv.Itoa(i) {
			t.Fatalf("sandbox %d sees %q", i, r.Stdout)
		}
	}
}

// hostServer serves "hello from the host" on the host's loopback; the
// guest reaches it as 10.0.2.2:port when its network allows.
func hostServer(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("hello from the host"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// Restricted guests reach nothing; full ones reach the outside (here a
// test host of our own in a network namespace) but not the host's loopback
// services, by any of the addresses slirp maps there, unless allowed.
func TestNetworkModes(t *testing.T) {
	port := hostServer(t)
	outside := outsideHost(t)
	fetch := func(addr string) string { return fmt.Sprintf("curl -sS -m 3 http://%s/", addr) }
	toHost := []string{fmt.Sprintf("10.0.2.2:%d", port), fmt.Sprintf("10.0.2.255:%d", port), fmt.Sprintf("10.0.2.3:%d", port)}
	cases := []struct {
		name    string
		cfg     Config
		reaches map[string]bool
	}{
		{"restricted", Config{}, map[string]bool{outside: false, toHost[0]: false}},
		{"full", Config{Network: NetworkFull}, map[string]bool{outside: true, toHost[0]: false, toHost[1]: false, toHost[2]: false}},
		{"full with host loopback", Config{Network: NetworkFull, AllowHostLoopback: true}, map[string]bool{outside: true, toHost[0]: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sb := startSandbox(t, c.cfg)
			for addr, want := range c.reaches {
				r := run(t, sb, ExecRequest{Command: fetch(addr)})
				if got := r.ExitCode == 0; got != want {
					t.Errorf("%s: reached %v, want %v (%q %q)", addr, got, want, r.Stdout, r.Stderr)
				}
			}
			// The agent's own traffic passes the guard.
			if r := run(t, sb, ExecRequest{Command: "head -c 3000000 /dev/zero | od | tail -1"}); r.ExitCode != 0 {
				t.Errorf("%+v", r)
			}
		})
	}
}

// testNamespace makes a network namespace of the test's own, joined to
// this one by a veth pair (hostEnd here, nsEnd there; names made unique by
// the process), both removed when the test ends, and returns them with sh,
// which runs a command or fails the test. The caller gives the addresses.
func testNamespace(t *testing.T, nsPrefix, hostPrefix, nsEndPrefix string) (ns, hostEnd, nsEnd string, sh func(args ...string)) {
	t.Helper()
	id := strconv.Itoa(os.Getpid() % 100000)
	ns, hostEnd, nsEnd = nsPrefix+id, hostPrefix+id, nsEndPrefix+id
	sh = func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s (this test makes a network namespace: run it as root, as CI does)", args, err, out)
		}
	}
	exec.Command("ip", "netns", "del", ns).Run()
	sh("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh("ip", "link", "add", hostEnd, "type", "veth", "peer", "name", nsEnd, "netns", ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostEnd).Run() })
	return ns, hostEnd, nsEnd, sh
}

// outsideHost starts an HTTP server on a test host of our own: a network
// namespace joined to this one by a veth pair (198.18.0.0/30, a range kept
// for tests), so a guest can reach "the outside" without leaving this
// machine. It returns the server's address.
func outsideHost(t *testing.T) string {
	t.Helper()
	ns, hostEnd, nsEnd, sh := testNamespace(t, "qs-outside-", "qsh", "qsn")
	sh("ip", "addr", "add", "198.18.0.1/30", "dev", hostEnd)
	sh("ip", "link", "set", hostEnd, "up")
	sh("ip", "-n", ns, "addr", "add", "198.18.0.2/30", "dev", nsEnd)
	sh("ip", "-n", ns, "link", "set", nsEnd, "up")
	sh("ip", "-n", ns, "link", "set", "lo", "up")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello from outside"), 0o644)
	srv := exec.Command("ip", "netns", "exec", ns, "python3", "-m", "http.server", "--bind", "198.18.0.2", "--directory", dir, "8080")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", "198.18.0.2:8080", time.Second)
		if err == nil {
			c.Close()
			return "198.18.0.2:8080"
		}
		if i == 100 {
			t.Fatalf("the outside host's server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPortForwardToAGuestServer(t *testing.T) {
	hostPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	sb := startSandbox(t, Config{PortForwards: []PortForward{{Host: hostPort, Guest: 8000}}})
	run(t, sb, ExecRequest{Command: "mkdir -p /srv/www && echo 'served from the guest' > /srv/www/index.html && " +
		"cd /srv/www && (python3 -m http.server 8000 >/dev/null 2>&1 &)"})
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body := new(bytes.Buffer)
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && body.String() == "served from the guest\n" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer through the port forward: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestArm64Sandbox(t *testing.T) {
	sb := startSandbox(t, Config{Image: "debian-arm64"})
	r := run(t, sb, ExecRequest{Command: "uname -m; echo hi >&2"})
	if string(r.Stdout) != "aarch64\n" || string(r.Stderr) != "hi\n" {
		t.Fatalf("got %+v", r)
	}
	if sb.Arch() != "arm64" || sb.Accelerator() != AccelTCG {
		t.Fatalf("arch %s accel %s", sb.Arch(), sb.Accelerator())
	}
	// The output channel works on the virt machine's MMIO transport too.
	if ok, why := sb.OutputChannel(); !ok {
		t.Fatalf("no output channel: %v", why)
	}
	before := sb.channel.Received()
	if r := run(t, sb, ExecRequest{Command: "head -c 1000000 /dev/zero"}); len(r.Stdout) != 1000000 || sb.channel.Received()-before != 1000000 {
		t.Fatalf("%d bytes, %d over the channel", len(r.Stdout), sb.channel.Received()-before)
	}
}

func TestStartRemovesFoldersOfKilledProcesses(t *testing.T) {
	base := t.TempDir()
	stale := filepath.Join(base, "sb-killed")
	os.MkdirAll(stale, 0o700)
	os.WriteFile(filepath.Join(stale, lockName), nil, 0o600) // nobody holds its lock
	os.WriteFile(filepath.Join(stale, "overlay.qcow2"), []byte("left behind"), 0o600)
	old := time.Now().Add(-2 * unlockedGrace)
	os.Chtimes(stale, old, old)
	young := filepath.Join(base, "sb-being-made") // made, not yet locked
	os.MkdirAll(young, 0o700)
	sb := startSandbox(t, Config{WorkDir: base})
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("a folder being set up was swept: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the stale folder is still there: %v", err)
	}
	// The live sandbox's own folder is not swept by another start.
	other := startSandbox(t, Config{WorkDir: base})
	if _, err := os.Stat(sb.workdir.path); err != nil || other.workdir.path == sb.workdir.path {
		t.Fatalf("a live folder was swept: %v", err)
	}
}

// A timeout kills everything the command started, also what left its
// process group (setsid) and its parent; a fork bomb is held to its own
// process limit, so the sandbox goes on serving.
func TestTimeoutKillsWhatLeftTheGroup(t *testing.T) {
	sb := startSandbox(t, Config{})
	r := run(t, sb, ExecRequest{Command: "setsid sh -c 'while true; do sleep 1; done' & sleep 100", Timeout: 3 * time.Second})
	if !r.TimedOut {
		t.Fatalf("not timed out: %+v", r)
	}
	if r := run(t, sb, ExecRequest{Command: "pgrep -f 'while [t]rue' || echo none"}); string(r.Stdout) != "none\n" {
		t.Fatalf("the setsid loop outlived the timeout: %q", r.Stdout)
	}

	// A cancelled call too.
	cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
	if _, err := sb.Execute(cctx, ExecRequest{Command: "setsid sh -c 'while true; do sleep 1; done' & sleep 100"}); !errors.Is(err, ErrCancelled) {
		t.Fatalf("cancelled call: %v", err)
	}
	ccancel()
	time.Sleep(time.Second) // the agent learns of it when the connection drops
	if r := run(t, sb, ExecRequest{Command: "pgrep -f 'while [t]rue' || echo none"}); string(r.Stdout) != "none\n" {
		t.Fatalf("the setsid loop outlived the cancellation: %q", r.Stdout)
	}

	run(t, sb, ExecRequest{Command: "bomb(){ bomb|bomb & };bomb", Timeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := sb.Execute(ctx, ExecRequest{Command: "echo alive"})
	if err != nil || string(r.Stdout) != "alive\n" {
		t.Fatalf("after a fork bomb: %v %+v", err, r)
	}
	// What a command leaves running when it ends by itself stays.
	run(t, sb, ExecRequest{Command: "(sleep 555 >/dev/null 2>&1 &)"})
	// ... and is not killed with a later command that times out (a
	// cgroup is reused only once empty).
	for i := 0; i < 3; i++ {
		if r := run(t, sb, ExecRequest{Command: "sleep 10", Timeout: time.Second}); !r.TimedOut {
			t.Fatalf("%+v", r)
		}
	}
	if r := run(t, sb, ExecRequest{Command: "pgrep -f 'slee[p] 555' >/dev/null && echo running"}); string(r.Stdout) != "running\n" {
		t.Fatalf("a background process of a finished command: %q", r.Stdout)
	}
}

// A slow callback is back-pressure, not a slow agent: a command that ended
// long ago still succeeds when the caller's callbacks took longer than the
// command's timeout plus the transport margin.
func TestSlowCallbackDoesNotFailAFinishedCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 17 s")
	}
	sb := sharedSandbox(t)
	calls := 0
	// The callbacks together outlast the timeout (1 s) plus the 15 s
	// margin docs/reliability.md gives (TestQEMUStopped): the first alone
	// does. (6 s a callback did not: b and c often come as one chunk, and
	// two callbacks took 12 s.)
	const margin = 15 * time.Second
	start := time.Now()
	r, err := sb.Execute(context.Background(), streaming(ExecRequest{Command: "echo a; sleep 0.3; echo b; sleep 0.3; echo c", Timeout: time.Second}, func(Stream, []byte) {
		if calls++; calls == 1 {
			time.Sleep(time.Second + margin + time.Second)
		}
	}))
	if took := time.Since(start); took < time.Second+margin {
		t.Fatalf("the callbacks took %v, less than the timeout plus the margin", took)
	}
	// b and c may come as one chunk: they queued while the callback slept.
	if err != nil || string(r.Stdout) != "a\nb\nc\n" || r.ExitCode != 0 || calls < 2 || calls > 3 {
		t.Fatalf("%v %+v (%d calls)", err, r, calls)
	}
}
