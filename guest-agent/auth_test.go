package main

// Every route that needs the token, taken from the agent's own route table
// (server.routes), refuses a request without it and with a wrong one, and
// nothing runs: a route added to the table is tested here without a word.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// attackBody is one request body that would do something on every route:
// run a command, write a file, make a user, feed or cancel the victims'
// stdin, signal their process, take the token over.
func attackBody(marker, procID string) []byte {
	raw, _ := json.Marshal(map[string]any{
		"command": "touch " + marker, "path": marker, "op": "mkdir",
		"stdin_id": "victim", "data": base64.StdEncoding.EncodeToString([]byte("injected")), "eof": true,
		"id": procID, "signal": 9, "rows": 1, "cols": 1,
		"name": "qsauthvictim", "token": "taken-over", "seed_b64": base64.StdEncoding.EncodeToString(make([]byte, 32)),
	})
	return raw
}

func TestEveryRouteRefusesAWrongToken(t *testing.T) {
	a := startAgent(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	procStdin := filepath.Join(dir, "proc-stdin")

	// The victims, started with the right token: a command reading
	// streamed stdin, and a background process reading its stdin.
	streamed := make(chan []map[string]any)
	go func() { streamed <- a.quicksandStream(t, map[string]any{"command": "cat", "stdin_id": "victim"}) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, res := a.quicksandPost(t, protocol.PathStdin, map[string]any{"stdin_id": "victim", "data": ""})
		if res["closed"] == false {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the streamed victim never took stdin")
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, body := a.post(t, protocol.PathProcesses, a.token, map[string]any{"command": "cat > " + procStdin})
	var proc protocol.ProcessStarted
	if status != http.StatusOK || json.Unmarshal(body, &proc) != nil {
		t.Fatalf("starting the background victim: %d %s", status, body)
	}

	// Only these routes are open to anyone; any other without auth is a
	// route the loop below would skip.
	open := map[string]bool{protocol.PathAuthenticate: true}
	for path, rt := range (&server{}).routes() {
		if !rt.auth && !open[path] {
			t.Errorf("%s is served without the token", path)
		}
	}

	query := "?" + url.Values{"path": {marker}, "id": {proc.ID}, "close": {"1"}}.Encode()
	tried := 0
	for path, rt := range (&server{}).routes() {
		if !rt.auth {
			continue
		}
		methods := []string{rt.method}
		if rt.method == "" {
			methods = []string{http.MethodGet, http.MethodPost}
		}
		for _, method := range methods {
			for _, tok := range []string{"", "wrong", a.token + "x", a.token[:len(a.token)-1]} {
				status, got := a.send(t, method, path+query, tok, attackBody(marker, proc.ID))
				if status != http.StatusUnauthorized || !strings.Contains(string(got), "missing or wrong token") {
					t.Errorf("%s %s with token %q: status %d, body %q; want 401", method, path, tok, status, got)
				}
				tried++
			}
		}
	}
	if tried == 0 {
		t.Fatal("the route table has no route that needs the token")
	}

	if _, err := os.Stat(marker); err == nil {
		t.Error("a command ran or a file was written without the right token")
	}
	if _, err := user.Lookup("qsauthvictim"); err == nil {
		t.Error("a user was made without the right token")
	}
	// The right token still works (no /resume took it over), and the
	// victims were neither fed nor cancelled nor signalled.
	status, body = a.send(t, http.MethodGet, protocol.PathProcesses, a.token, nil)
	if status != http.StatusOK || !strings.Contains(string(body), proc.ID) {
		t.Errorf("the background victim after the attacks: %d %s", status, body)
	}
	if data, _ := os.ReadFile(procStdin); len(data) != 0 {
		t.Errorf("the background victim's stdin got %q", data)
	}
	a.quicksandPost(t, protocol.PathStdin, map[string]any{"stdin_id": "victim", "data": base64.StdEncoding.EncodeToString([]byte("mine")), "eof": true})
	var out string
	events := <-streamed
	for _, ev := range events {
		if ev["stream"] == "stdout" {
			out += ev["data"].(string)
		}
	}
	if out != "mine" || events[len(events)-1]["exit_code"] != float64(0) {
		t.Errorf("the streamed victim: events %v; want only the right token's input and exit 0", events)
	}
}
