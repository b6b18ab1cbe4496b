package engine

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Programs under testdata/ that tests run inside a guest as its hostile
// root (a liar in the agent's place, a sender of raw frames): built once
// per test binary, package and guest architecture, static (CGO_ENABLED=0).
var guestPrograms struct {
	mu    sync.Mutex
	built map[string][]byte
}

// guestProgram builds the package pkg (e.g. "./testdata/rawsyn") for the
// image architecture arch (x86_64, arm64) and returns the binary.
func guestProgram(t *testing.T, pkg, arch string) []byte {
	t.Helper()
	guestPrograms.mu.Lock()
	defer guestPrograms.mu.Unlock()
	key := pkg + " " + arch
	if bin, ok := guestPrograms.built[key]; ok {
		return bin
	}
	goarch := map[string]string{"x86_64": "amd64", "arm64": "arm64"}[arch]
	if goarch == "" {
		t.Fatalf("no guest program for the architecture %q", arch)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, msg)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if guestPrograms.built == nil {
		guestPrograms.built = map[string][]byte{}
	}
	guestPrograms.built[key] = bin
	return bin
}

// putGuestProgram builds pkg for sb's guest and writes it to path there,
// executable by root only.
func putGuestProgram(t *testing.T, sb *Sandbox, pkg, path string) {
	t.Helper()
	bin := guestProgram(t, pkg, sb.img.Manifest.Arch)
	if _, err := sb.WriteFile(context.Background(), path, bytes.NewReader(bin), FileOptions{Mode: 0o700}); err != nil {
		t.Fatalf("putting %s in the guest: %v", pkg, err)
	}
}

// streaming is req with OnOutput calling fn, which cannot fail.
func streaming(req ExecRequest, fn func(Stream, []byte)) ExecRequest {
	req.OnOutput = func(s Stream, p []byte) error { fn(s, p); return nil }
	return req
}
