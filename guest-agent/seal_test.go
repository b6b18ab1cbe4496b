package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// An agent whose fw_cfg token file holds something else than when it took
// its token (its VM was resumed in another QEMU, from a template or a save)
// is sealed: it refuses its old token on every route, and takes /resume
// only from the holder of the token now in fw_cfg; an agent server that
// restarts while sealed is still sealed. In the same QEMU (a revert, a
// pool's rekey) nothing changes.
func TestSealedAgentTakesOnlyTheNewQEMUsToken(t *testing.T) {
	dir := t.TempDir()
	cmdline, fwcfg, state := filepath.Join(dir, "cmdline"), filepath.Join(dir, "fwcfg"), filepath.Join(dir, "run", "token")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	os.WriteFile(cmdline, []byte(fmt.Sprintf("quicksand_port=%d\n", port)), 0o644)
	old, clone, stranger := strings.Repeat("o", 40), strings.Repeat("c", 40), strings.Repeat("s", 40)
	os.WriteFile(fwcfg, []byte(old), 0o600)
	start := func() *exec.Cmd {
		cmd := exec.Command(agentBin, "-listen", "127.0.0.1", "-cmdline", cmdline, "-fwcfg-token", fwcfg, "-token-state", state)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for i := 0; i < 500; i++ {
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				return cmd
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("agent did not listen")
		return nil
	}
	first := start()
	a := &agent{base: fmt.Sprintf("http://127.0.0.1:%d", port), token: old}
	if r := a.exec(t, map[string]any{"command": "echo before"}); r.Stdout != "before\n" {
		t.Fatalf("%+v", r)
	}
	refusesEverything := func(what string) {
		t.Helper()
		for _, path := range []string{protocol.PathExecute, protocol.PathPing, protocol.PathFileOp, protocol.PathProcesses} {
			if status, _ := a.post(t, path, old, map[string]any{"command": "true"}); status != http.StatusUnauthorized {
				t.Fatalf("%s: %s with the old token: %d", what, path, status)
			}
		}
		if status, _ := a.post(t, protocol.PathAuthenticate, "", map[string]any{"token": old}); status != http.StatusUnauthorized {
			t.Fatalf("%s: /authenticate with the old token: %d", what, status)
		}
	}
	seed := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	// A rekey in the same QEMU (a pool's) keeps it unsealed.
	pooled := strings.Repeat("p", 40)
	if status, body := a.post(t, protocol.PathResume, old, map[string]any{"token": pooled, "seed_b64": seed}); status != http.StatusOK {
		t.Fatalf("a rekey in the same QEMU: %d %s", status, body)
	}
	a.checkSwitchedTo(t, pooled)
	old, a.token = pooled, pooled
	// The VM is now resumed in another QEMU, whose fw_cfg holds the clone's
	// token; no connection comes along (slirp's host sockets stay with the
	// old QEMU).
	os.WriteFile(fwcfg, []byte(clone), 0o600)
	http.DefaultClient.CloseIdleConnections()
	refusesEverything("resumed elsewhere")
	first.Process.Kill()
	first.Wait()
	start()
	refusesEverything("sealed, after a restart")
	for _, tok := range []string{old, stranger} {
		if status, _ := a.post(t, protocol.PathResume, tok, map[string]any{"token": stranger, "seed_b64": seed}); status != http.StatusUnauthorized {
			t.Fatalf("resume of a sealed agent with %s…: %d", tok[:1], status)
		}
	}
	if status, body := a.post(t, protocol.PathResume, clone, map[string]any{"token": clone, "seed_b64": seed}); status != http.StatusOK {
		t.Fatalf("resume with the new QEMU's token: %d %s", status, body)
	}
	a.checkSwitchedTo(t, clone)
	if status, _ := a.post(t, protocol.PathExecute, stranger, map[string]any{"command": "true"}); status != http.StatusUnauthorized {
		t.Fatalf("a stranger's token: %d", status)
	}
}
