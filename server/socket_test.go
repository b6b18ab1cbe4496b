package server

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// On a Unix socket, only the server's user gets in: another local user
// is refused by the socket's mode before any key is asked, even in a
// folder everyone may enter.
func TestUnixSocketIsTheOwnersOnly(t *testing.T) {
	dir, err := os.MkdirTemp("", "qs-socket-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "qs.sock")
	s := startServer(t, "--listen", "unix:"+sock)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	s.must(http.StatusOK, "GET", "/v1/capacity", keyA, nil, nil)
	// nobody cannot even connect (this test's binary, copied where
	// nobody may run it, dials as nobody).
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dial")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	dial := exec.Command(bin)
	dial.Env = []string{"QS_TEST_DIAL=" + sock}
	dial.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := dial.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "permission denied") {
		t.Fatalf("nobody on the owner's socket: %v: %s", err, out)
	}
	// The same program as root connects: the refusal was the socket's.
	dial = exec.Command(bin)
	dial.Env = []string{"QS_TEST_DIAL=" + sock}
	if out, err := dial.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "connected" {
		t.Fatalf("root on its own socket: %v: %s", err, out)
	}
	// A second server on the same socket is refused while the first lives.
	keys := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keys, []byte(keyA+"\n"), 0o600)
	second := exec.Command(quicksandBin, "serve", "--listen", "unix:"+sock, "--keys", keys, "--data", t.TempDir())
	if out, err := second.CombinedOutput(); err == nil || !strings.Contains(string(out), "another server is listening there") {
		t.Fatalf("a second server: %v %s", err, out)
	}
}
