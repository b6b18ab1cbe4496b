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
	"testing"
	"time"
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
