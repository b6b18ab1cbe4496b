package engine

// A client written from the seed document alone
// (running-commands-under-the-hood): it knows that /execute answers
// {"stdout", "exit_code"} and that /execute_stream sends Server-Sent Events
// `data: {"type": "stdout", "data": ...}` ending with
// `data: {"type": "exit", "exit_code": 0}`, and nothing of our protocol
// package, our dialect header or Quicksand's "stream" key. It talks raw
// HTTP to a real VM's agent through its port forward. Quicksand's own
// client is run beside it in interop_test.go.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// seedClient is the seed document's client: a base URL and the token.
type seedClient struct {
	base, token string
	http        *http.Client
}

func (c seedClient) post(t *testing.T, path string, body any) *http.Response {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, c.base+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("POST %s: status %d", path, resp.StatusCode)
	}
	return resp
}

// stream runs a command as the seed's streaming call does, reading each
// `data:` line's "type", and returns what the callbacks would have seen.
func (c seedClient) stream(t *testing.T, command string) (stdout, stderr string, exitCode int, kinds []string) {
	t.Helper()
	resp := c.post(t, "/execute_stream", map[string]any{"command": command})
	defer resp.Body.Close()
	exitCode = -1000 // no exit event
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Type     string `json:"type"`
			Data     string `json:"data"`
			ExitCode *int   `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("an event that is not JSON: %q: %v", line, err)
		}
		kinds = append(kinds, ev.Type)
		switch ev.Type {
		case "stdout":
			stdout += ev.Data
		case "stderr":
			stderr += ev.Data
		case "exit":
			if ev.ExitCode == nil {
				t.Fatalf("an exit event without exit_code: %q", line)
			}
			return stdout, stderr, *ev.ExitCode, kinds
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return stdout, stderr, exitCode, kinds
}

func TestSeedClientStreamsAndExecutes(t *testing.T) {
	sb := sharedSandbox(t)
	c := seedClient{base: "http://" + sb.AgentAddr(), token: sb.Token(), http: &http.Client{Timeout: time.Minute}}

	stdout, stderr, code, kinds := c.stream(t, "echo Reading package lists...; echo oops >&2; echo done; exit 3")
	if stdout != "Reading package lists...\ndone\n" || stderr != "oops\n" || code != 3 {
		t.Fatalf("stream: stdout %q, stderr %q, exit %d (event types %q); want the output and exit 3", stdout, stderr, code, kinds)
	}
	if kinds[len(kinds)-1] != "exit" {
		t.Fatalf("event types %q: the stream must end with exit", kinds)
	}

	resp := c.post(t, "/execute", map[string]any{"command": "ls /"})
	defer resp.Body.Close()
	var res struct {
		Stdout   string `json:"stdout"`
		ExitCode *int   `json:"exit_code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("/execute: %v", err)
	}
	if res.ExitCode == nil || *res.ExitCode != 0 || !strings.Contains(res.Stdout, "bin\n") {
		t.Fatalf("/execute ls /: %+v", res)
	}
}
