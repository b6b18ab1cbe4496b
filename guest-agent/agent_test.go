package main

// These tests build the real agent binary and talk to it over HTTP on the
// host's loopback, as the engine does through QEMU's port forward.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	sse "github.com/tmaxmax/go-sse"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agent-test")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "quicksand-agent")
	build := exec.Command("go", "build", "-o", agentBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the agent: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type agent struct {
	base  string
	token string
}

// startAgent runs the agent binary on a free loopback port and waits for its
// ready line.
func startAgent(t *testing.T, extra ...string) *agent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tok := make([]byte, 16)
	rand.Read(tok)
	token := hex.EncodeToString(tok)

	args := append([]string{"-listen", "127.0.0.1", "-port", strconv.Itoa(port), "-token", token}, extra...)
	cmd := exec.Command(agentBin, args...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), protocol.ReadyLine) {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("agent exited before its ready line")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ready line within 10 s")
	}
	return &agent{base: fmt.Sprintf("http://127.0.0.1:%d", port), token: token}
}

func (a *agent) post(t *testing.T, path, token string, body any) (int, []byte) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	return a.send(t, http.MethodPost, path, token, raw)
}

// send makes one request in our dialect with token ("": none) and returns
// its answer.
func (a *agent) send(t *testing.T, method, pathAndQuery, token string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, a.base+pathAndQuery, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set(protocol.ExtensionsHeader, "1") // our dialect; quicksand_test.go tests the other
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (a *agent) exec(t *testing.T, req map[string]any) protocol.ExecResult {
	t.Helper()
	status, body := a.post(t, protocol.PathExecute, a.token, req)
	if status != http.StatusOK {
		t.Fatalf("execute %v: status %d: %s", req, status, body)
	}
	var res protocol.ExecResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("execute answer %q: %v", body, err)
	}
	return res
}

type timedEvent struct {
	protocol.Event
	at time.Time
}

func (a *agent) stream(t *testing.T, req map[string]any) []timedEvent {
	t.Helper()
	raw, _ := json.Marshal(req)
	hreq, _ := http.NewRequest(http.MethodPost, a.base+protocol.PathExecuteStream, bytes.NewReader(raw))
	hreq.Header.Set("Authorization", "Bearer "+a.token)
	hreq.Header.Set(protocol.ExtensionsHeader, "1")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	var events []timedEvent
	for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			t.Fatal(err)
		}
		var e protocol.Event
		if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
			t.Fatalf("event %q: %v", ev.Data, err)
		}
		events = append(events, timedEvent{e, time.Now()})
	}
	return events
}

func joinStream(t *testing.T, events []timedEvent, kind string) []byte {
	var out []byte
	for _, e := range events {
		if e.Kind() == kind {
			p, err := protocol.DecodeChunk(e.Data, e.DataB64)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p...)
		}
	}
	return out
}

func TestAuth(t *testing.T) {
	a := startAgent(t)
	marker := filepath.Join(t.TempDir(), "ran")
	cmd := map[string]any{"command": "touch " + marker}
	for _, tok := range []string{"", "wrong", a.token + "x"} {
		for _, path := range []string{protocol.PathExecute, protocol.PathExecuteStream, protocol.PathMountConnect, protocol.PathMount, protocol.PathUnmount} {
			status, body := a.post(t, path, tok, cmd)
			if status != http.StatusUnauthorized || !strings.Contains(string(body), `"detail"`) {
				t.Errorf("token %q on %s: status %d body %s", tok, path, status, body)
			}
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a command ran without the right token")
	}
	req, _ := http.NewRequest(http.MethodGet, a.base+protocol.PathPing, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("ping without token: %d", resp.StatusCode)
	}

	if status, body := a.post(t, protocol.PathAuthenticate, "", map[string]string{"token": a.token}); status != 200 || !strings.Contains(string(body), `"authenticated":true`) {
		t.Errorf("authenticate with the right token: %d %s", status, body)
	}
	if status, _ := a.post(t, protocol.PathAuthenticate, "", map[string]string{"token": "nope"}); status != http.StatusUnauthorized {
		t.Errorf("authenticate with a wrong token: %d", status)
	}
}

func TestPing(t *testing.T) {
	a := startAgent(t)
	req, _ := http.NewRequest(http.MethodGet, a.base+protocol.PathPing, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p protocol.PingResult
	json.NewDecoder(resp.Body).Decode(&p)
	if !p.Pong || p.Pid <= 0 {
		t.Fatalf("ping answered %+v", p)
	}
}

func TestBadRequests(t *testing.T) {
	a := startAgent(t)
	cases := []struct {
		name   string
		path   string
		body   string
		status int
		detail string
	}{
		{"not json", protocol.PathExecute, "{nope", 400, "malformed"},
		{"no command", protocol.PathExecute, `{"cwd":"/"}`, 400, "command is required"},
		{"timeout as string", protocol.PathExecute, `{"command":"true","timeout":"x"}`, 400, `"timeout"`},
		{"env not a map", protocol.PathExecuteStream, `{"command":"true","env":[1]}`, 400, `"env"`},
		{"negative timeout", protocol.PathExecute, `{"command":"true","timeout":-1}`, 400, "negative"},
		{"missing cwd", protocol.PathExecute, `{"command":"true","cwd":"/no/such/dir"}`, 400, "no such file"},
		{"missing cwd stream", protocol.PathExecuteStream, `{"command":"true","cwd":"/no/such/dir"}`, 400, "no such file"},
		{"missing shell", protocol.PathExecute, `{"command":"true","shell":"/no/shell"}`, 400, "shell"},
		{"unknown path", "/nope", `{}`, 404, "no such endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := a.post(t, c.path, a.token, c.body)
			var eb protocol.ErrorBody
			json.Unmarshal(body, &eb)
			if status != c.status || !strings.Contains(eb.Detail, c.detail) {
				t.Fatalf("status %d detail %q; want %d with %q", status, eb.Detail, c.status, c.detail)
			}
		})
	}
}

func TestExecuteBasics(t *testing.T) {
	a := startAgent(t)
	dir := t.TempDir()
	cases := []struct {
		name   string
		req    map[string]any
		stdout string
		stderr string
		code   int
	}{
		{"echo", map[string]any{"command": "echo hello"}, "hello\n", "", 0},
		{"exit code", map[string]any{"command": "exit 3"}, "", "", 3},
		{"stderr", map[string]any{"command": "echo oops >&2; exit 1"}, "", "oops\n", 1},
		{"cwd", map[string]any{"command": "pwd", "cwd": dir}, dir + "\n", "", 0},
		{"env", map[string]any{"command": `echo "$A-$B"`, "env": map[string]string{"A": "1", "B": "two words"}}, "1-two words\n", "", 0},
		{"stdin", map[string]any{"command": "cat; echo", "stdin": "from stdin"}, "from stdin\n", "", 0},
		{"stdin b64", map[string]any{"command": "od -An -tx1", "stdin_b64": "AP8="}, " 00 ff\n", "", 0},
		{"shell", map[string]any{"command": "echo $0", "shell": "/bin/bash"}, "/bin/bash\n", "", 0},
		{"script", map[string]any{"command": "for i in 1 2 3; do\n  echo line $i\ndone"}, "line 1\nline 2\nline 3\n", "", 0},
		{"killed by signal", map[string]any{"command": "kill -TERM $$"}, "", "", 128 + int(syscall.SIGTERM)},
		// Simple commands are exec'd without the shell (direct.go).
		{"direct", map[string]any{"command": "cat", "stdin": "in"}, "in", "", 0},
		{"direct exit code", map[string]any{"command": "false"}, "", "", 1},
		{"direct relative to cwd", map[string]any{"command": "./hello.sh", "cwd": dir}, "from a script\n", "", 0},
		{"script without #! falls back", map[string]any{"command": "./plain.sh x", "cwd": dir}, "plain x\n", "", 0},
	}
	os.WriteFile(filepath.Join(dir, "hello.sh"), []byte("#!/bin/sh\necho from a script\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "plain.sh"), []byte("echo plain $1\n"), 0o755)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.exec(t, c.req)
			if r.Stdout != c.stdout || r.Stderr != c.stderr || r.ExitCode != c.code || r.TimedOut {
				t.Fatalf("got %+v; want stdout %q stderr %q code %d", r, c.stdout, c.stderr, c.code)
			}
		})
	}
}

// A program that is not there gets the shell's answer, as before.
func TestMissingProgramAnswersLikeTheShell(t *testing.T) {
	a := startAgent(t)
	r := a.exec(t, map[string]any{"command": "no-such-program-xyz"})
	if r.ExitCode != 127 || !strings.Contains(r.Stderr, "no-such-program-xyz") || !strings.Contains(r.Stderr, "not found") {
		t.Fatalf("got %+v", r)
	}
}

func pidAlive(pid int) bool {
	// A killed process may linger as a zombie of the test's process tree;
	// only a process in state other than Z counts as running.
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestTimeoutKillsTheProcessTree(t *testing.T) {
	a := startAgent(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	for _, path := range []string{protocol.PathExecute, protocol.PathExecuteStream} {
		t.Run(path, func(t *testing.T) {
			req := map[string]any{
				"command": fmt.Sprintf("echo before; (sleep 300; echo never) & echo $! > %s; sleep 300", pidFile),
				"timeout": 0.5,
			}
			var stdout string
			var code int
			var timedOut bool
			if path == protocol.PathExecute {
				r := a.exec(t, req)
				stdout, code, timedOut = r.Stdout, r.ExitCode, r.TimedOut
			} else {
				evs := a.stream(t, req)
				stdout = string(joinStream(t, evs, protocol.EventStdout))
				last := evs[len(evs)-1]
				if last.Kind() != protocol.EventExit || last.ExitCode == nil {
					t.Fatalf("last event %+v", last)
				}
				code, timedOut = *last.ExitCode, last.TimedOut
			}
			if stdout != "before\n" || code != -1 || !timedOut {
				t.Fatalf("stdout %q code %d timed out %v", stdout, code, timedOut)
			}
			raw, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
			deadline := time.Now().Add(2 * time.Second)
			for pidAlive(pid) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if pidAlive(pid) {
				t.Fatalf("background child %d still runs after the timeout", pid)
			}
		})
	}
}

func TestBackgroundProcessDoesNotHoldTheCall(t *testing.T) {
	a := startAgent(t)
	start := time.Now()
	r := a.exec(t, map[string]any{"command": "sleep 30 & echo started", "timeout": 20})
	if r.Stdout != "started\n" || r.ExitCode != 0 {
		t.Fatalf("got %+v", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the call waited %v for a background process", d)
	}
}

func TestStreamingChunksArriveBeforeExit(t *testing.T) {
	a := startAgent(t)
	evs := a.stream(t, map[string]any{"command": "printf abc; sleep 1; printf def >&2; sleep 1; printf ghi"})
	if len(evs) < 4 {
		t.Fatalf("events %+v", evs)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind()+":"+e.Data)
	}
	want := []string{"stdout:abc", "stderr:def", "stdout:ghi", "exit:"}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	// Output without a newline must not wait for the command to end.
	if gap := evs[3].at.Sub(evs[0].at); gap < 1500*time.Millisecond {
		t.Fatalf("first chunk arrived only %v before the exit event", gap)
	}
}

func TestBinaryOutputSurvives(t *testing.T) {
	a := startAgent(t)
	want := make([]byte, 256)
	for i := range want {
		want[i] = byte(i)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "bytes")
	os.WriteFile(file, want, 0o644)
	req := map[string]any{"command": "cat " + file + "; cat " + file + " >&2"}

	r := a.exec(t, req)
	for name, pair := range map[string][2]string{"stdout": {r.Stdout, r.StdoutB64}, "stderr": {r.Stderr, r.StderrB64}} {
		got, err := protocol.DecodeChunk(pair[0], pair[1])
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("execute %s: got %x (%v)", name, got, err)
		}
	}
	evs := a.stream(t, req)
	if got := joinStream(t, evs, protocol.EventStdout); !bytes.Equal(got, want) {
		t.Errorf("stream stdout: got %x", got)
	}
	if got := joinStream(t, evs, protocol.EventStderr); !bytes.Equal(got, want) {
		t.Errorf("stream stderr: got %x", got)
	}
	// Valid UTF-8 split across writes stays text, with no base64 copy.
	r = a.exec(t, map[string]any{"command": `printf '\342\202'; sleep 0.2; printf '\254 done'`})
	if r.Stdout != "€ done" || r.StdoutB64 != "" {
		t.Errorf("split euro sign: %+v", r)
	}
}

func TestConcurrentRequestsRunAtOnce(t *testing.T) {
	a := startAgent(t)
	dir := t.TempDir()
	const n = 8
	// Each command waits until all n have started: this only finishes if the
	// agent runs them at the same time.
	var wg sync.WaitGroup
	results := make([]protocol.ExecResult, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = a.exec(t, map[string]any{
				"command": fmt.Sprintf(`touch %s/%d; while [ $(ls %s | wc -l) -lt %d ]; do sleep 0.05; done; echo $$ %d`, dir, i, dir, n, i),
				"timeout": 20,
			})
		}()
	}
	wg.Wait()
	pids := map[string]bool{}
	for i, r := range results {
		f := strings.Fields(r.Stdout)
		if r.TimedOut || len(f) != 2 || f[1] != strconv.Itoa(i) {
			t.Fatalf("request %d: %+v", i, r)
		}
		pids[f[0]] = true
	}
	if len(pids) != n {
		t.Fatalf("%d distinct shells for %d requests", len(pids), n)
	}
}

func TestLargeOutput(t *testing.T) {
	a := startAgent(t)
	const size = 64 << 20
	status, body := a.post(t, protocol.PathExecute, a.token, map[string]any{"command": fmt.Sprintf("head -c %d /dev/zero | tr '\\0' a", size), "timeout": 60})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	var r protocol.ExecResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Stdout) != size || r.StdoutTruncated || strings.Trim(r.Stdout, "a") != "" {
		t.Fatalf("got %d bytes, truncated %v", len(r.Stdout), r.StdoutTruncated)
	}
	r = a.exec(t, map[string]any{"command": "head -c 100000 /dev/zero | tr '\\0' b", "max_output": 1000})
	if len(r.Stdout) != 1000 || !r.StdoutTruncated || r.ExitCode != 0 {
		t.Fatalf("capped: %d bytes, truncated %v, exit %d", len(r.Stdout), r.StdoutTruncated, r.ExitCode)
	}
}

func TestMissingTokenIsAClearError(t *testing.T) {
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmdline, []byte("root=/dev/vda quicksand_port=1234\n"), 0o644)
	out, err := exec.Command(agentBin, "-cmdline", cmdline).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitBadSettings {
		t.Fatalf("exit %v, want %d", err, exitBadSettings)
	}
	if !strings.Contains(string(out), "quicksand_token") {
		t.Fatalf("message %q does not name the missing key", out)
	}
}

func TestSettingsFromCmdline(t *testing.T) {
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmdline, []byte("console=ttyS0 quicksand_token=tok quicksand_port=4321\n"), 0o644)
	s, err := loadSettings([]string{"-cmdline", cmdline}, false)
	if err != nil || s.token != "tok" || s.port != 4321 {
		t.Fatalf("%+v %v", s, err)
	}
	os.WriteFile(cmdline, []byte("quicksand_token=tok quicksand_port=nope\n"), 0o644)
	if _, err := loadSettings([]string{"-cmdline", cmdline}, false); err == nil {
		t.Fatal("a bad port was accepted")
	}
}

func TestResumeRotatesTheToken(t *testing.T) {
	a := startAgent(t)
	newToken := strings.Repeat("n", 40)
	seed := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes
	bad := []map[string]any{
		{"token": "short", "seed_b64": seed},
		{"token": newToken, "seed_b64": "AAEC"},
		{"token": newToken},
	}
	for _, body := range bad {
		if status, _ := a.post(t, protocol.PathResume, a.token, body); status != http.StatusBadRequest {
			t.Fatalf("%v: status %d", body, status)
		}
	}
	if status, _ := a.post(t, protocol.PathResume, "wrong", map[string]any{"token": newToken, "seed_b64": seed}); status != http.StatusUnauthorized {
		t.Fatalf("resume with a wrong token: %d", status)
	}
	// Nothing above changed the token.
	if r := a.exec(t, map[string]any{"command": "echo still"}); r.Stdout != "still\n" {
		t.Fatalf("%+v", r)
	}
	status, body := a.post(t, protocol.PathResume, a.token, map[string]any{"token": newToken, "seed_b64": seed, "time_unix_nano": time.Now().UnixNano()})
	var res protocol.ResumeResult
	json.Unmarshal(body, &res)
	if status != 200 || !res.Resumed || res.ClockSet || res.Reseeded {
		t.Fatalf("resume: %d %s (a host agent must not touch the clock or RNG)", status, body)
	}
	a.checkSwitchedTo(t, newToken)
}

// checkSwitchedTo checks that the agent refuses the token it had and takes
// newToken, which it then uses.
func (a *agent) checkSwitchedTo(t *testing.T, newToken string) {
	t.Helper()
	if status, _ := a.post(t, protocol.PathExecute, a.token, map[string]any{"command": "true"}); status != http.StatusUnauthorized {
		t.Fatalf("the old token still works: %d", status)
	}
	a.token = newToken
	if r := a.exec(t, map[string]any{"command": "echo new"}); r.Stdout != "new\n" {
		t.Fatalf("%+v", r)
	}
}

// The token comes from the state file of this boot before fw_cfg, and from
// fw_cfg before the kernel command line; whatever is taken is kept in the
// state file, owner-only.
func TestTokenSources(t *testing.T) {
	dir := t.TempDir()
	cmdline, fwcfg, state := filepath.Join(dir, "cmdline"), filepath.Join(dir, "fwcfg"), filepath.Join(dir, "run", "token")
	os.WriteFile(cmdline, []byte("quicksand_token=fromcmdline quicksand_port=4321\n"), 0o644)
	load := func() settings {
		t.Helper()
		s, err := loadSettings([]string{"-cmdline", cmdline, "-fwcfg-token", fwcfg, "-token-state", state}, false)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := load(); s.token != "fromcmdline" {
		t.Fatalf("without fw_cfg: %q", s.token)
	}
	os.Remove(state)
	os.WriteFile(fwcfg, []byte("fromfwcfg"), 0o600)
	if s := load(); s.token != "fromfwcfg" {
		t.Fatalf("with fw_cfg: %q", s.token)
	}
	os.WriteFile(fwcfg, []byte("changed"), 0o600)
	if s := load(); s.token != "fromfwcfg" {
		t.Fatalf("a restarted agent took %q instead of the token it kept", s.token)
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	if fi, _ := os.Stat(filepath.Dir(state)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("state folder mode %v", fi.Mode())
	}
}

// After /resume, a restarted agent server accepts the new token, not the
// one its VM booted with (a warm clone used to fall back to its template's).
func TestRestartKeepsTheResumedToken(t *testing.T) {
	dir := t.TempDir()
	cmdline, state := filepath.Join(dir, "cmdline"), filepath.Join(dir, "token")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	os.WriteFile(cmdline, []byte(fmt.Sprintf("quicksand_token=%s quicksand_port=%d\n", strings.Repeat("b", 40), port)), 0o644)
	start := func() *exec.Cmd {
		cmd := exec.Command(agentBin, "-listen", "127.0.0.1", "-cmdline", cmdline, "-token-state", state)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	a := &agent{base: fmt.Sprintf("http://127.0.0.1:%d", port), token: strings.Repeat("b", 40)}
	waitUp := func() {
		t.Helper()
		for i := 0; i < 500; i++ {
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("agent did not listen")
	}
	first := start()
	waitUp()
	newToken := strings.Repeat("n", 40)
	seed := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	if status, body := a.post(t, protocol.PathResume, a.token, map[string]any{"token": newToken, "seed_b64": seed}); status != 200 {
		t.Fatalf("resume: %d %s", status, body)
	}
	first.Process.Kill()
	first.Wait()
	start()
	waitUp()
	a.checkSwitchedTo(t, newToken) // not back to the boot token
}

// Resumes at once (a retry the host sent while its earlier try still ran)
// each either take the new token or are refused because the old one is no
// longer taken, never fail: the agent keeps the token one resume at a time.
// Without that, two wrote token.new and renamed it together, and one
// answered 500 (a clone's start then blamed its template).
func TestResumesAtOnceNeverFail(t *testing.T) {
	a := startAgent(t, "-token-state", filepath.Join(t.TempDir(), "state", "token"))
	seed := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	const rounds, tries = 8, 32
	for round := 0; round < rounds; round++ {
		newToken := strings.Repeat(string(rune('a'+round)), 40)
		statuses := make(chan string, tries)
		var wg sync.WaitGroup
		for i := 0; i < tries; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, body := a.post(t, protocol.PathResume, a.token, map[string]any{"token": newToken, "seed_b64": seed})
				statuses <- fmt.Sprintf("%d %s", status, body)
			}()
		}
		wg.Wait()
		close(statuses)
		took := 0
		for s := range statuses {
			switch {
			case strings.HasPrefix(s, "200 "):
				took++
			case !strings.HasPrefix(s, "401 "):
				t.Errorf("round %d, one of %d resumes at once: %s", round, tries, s)
			}
		}
		if took == 0 {
			t.Fatalf("round %d: none of %d resumes at once took the token", round, tries)
		}
		a.checkSwitchedTo(t, newToken)
	}
}

// Connections that never finish their headers, or the body of a call
// anyone may make, are closed after the header timeout: other local users
// can reach the agent's port forward and must not hold connections open.
func TestHalfOpenConnectionsAreClosed(t *testing.T) {
	a := startAgent(t, "-header-timeout", "1s")
	addr := strings.TrimPrefix(a.base, "http://")
	opened := time.Now()
	var conns []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i%2 == 1 {
			// Headers of a call that needs no token, and a body that never comes.
			fmt.Fprintf(c, "POST /authenticate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
		} else {
			fmt.Fprintf(c, "GET /ping HTTP/1.1\r\n") // headers never finished
		}
		conns = append(conns, c)
	}
	buf := make([]byte, 4096)
	// Closed by the 1 s timeout, not a later one (the default is 10 s,
	// TestDefaultHeaderTimeoutIsTheDocumentedOne): 3 s of slack for
	// opening 200 connections on a loaded machine.
	closedBy := opened.Add(4 * time.Second)
	for i, c := range conns {
		c.SetReadDeadline(closedBy)
		for {
			_, err := c.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("connection %d still open: %v", i, err)
			}
		}
	}
	// The agent still serves.
	if r := a.exec(t, map[string]any{"command": "echo fine"}); r.Stdout != "fine\n" {
		t.Fatalf("%+v", r)
	}
}

// A command asked to run as a user runs as that user, with its groups and
// home, on both endpoints and whether or not it goes through the shell; an
// unknown user is refused, never run as root. (The agent runs as root in
// these tests, as in the guest.)
func TestUserField(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root, as the agent has in the guest (CI runs as root)")
	}
	a := startAgent(t)
	for _, who := range []string{"nobody", "65534"} {
		for _, cmd := range []string{"id", "id; echo $HOME $USER"} { // direct exec, then the shell
			r := a.exec(t, map[string]any{"command": cmd, "user": who})
			if !strings.HasPrefix(r.Stdout, "uid=65534(nobody)") || strings.Contains(r.Stdout, "(root)") {
				t.Fatalf("%s as %s: %+v", cmd, who, r)
			}
		}
	}
	r := a.exec(t, map[string]any{"command": "echo $HOME $USER $LOGNAME", "user": "nobody", "env": map[string]string{"HOME": "/tmp"}})
	if r.Stdout != "/tmp nobody nobody\n" {
		t.Fatalf("env of nobody: %q", r.Stdout)
	}
	if r := a.exec(t, map[string]any{"command": "head -c1 /etc/shadow", "user": "nobody"}); r.ExitCode == 0 {
		t.Fatalf("nobody read /etc/shadow: %+v", r)
	}
	for _, path := range []string{protocol.PathExecute, protocol.PathExecuteStream} {
		status, body := a.post(t, path, a.token, map[string]any{"command": "id", "user": "no-such-user"})
		if status != http.StatusBadRequest || !strings.Contains(string(body), "no such user") {
			t.Fatalf("%s with an unknown user: %d %s", path, status, body)
		}
	}
	if r := a.exec(t, map[string]any{"command": "id -u"}); r.Stdout != "0\n" {
		t.Fatalf("without user: %q", r.Stdout)
	}
}

// Without the right token nothing touches a file: no write, no tree, no
// operation, no read of a file the agent's user can read.
func TestFileEndpointsNeedTheToken(t *testing.T) {
	a := startAgent(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "written")
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cret"), 0o600)
	q := "?path=" + target
	for _, tok := range []string{"", "wrong"} {
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPost, protocol.PathFileWrite + q, "data"},
			{http.MethodPost, protocol.PathTreeWrite + q, ""},
			{http.MethodPost, protocol.PathFileOp, `{"op":"mkdir","path":"` + target + `"}`},
			{http.MethodGet, protocol.PathFileRead + "?path=" + secret, ""},
			{http.MethodGet, protocol.PathTreeRead + "?path=" + dir, ""},
		} {
			req, _ := http.NewRequest(c.method, a.base+c.path, strings.NewReader(c.body))
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "s3cret") {
				t.Errorf("token %q on %s %s: status %d body %q", tok, c.method, c.path, resp.StatusCode, body)
			}
		}
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("a file was made without the right token")
	}
}
