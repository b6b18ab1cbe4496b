package main

// Quicksand's dialect, as its clients get it when they do not ask for ours
// (no protocol.ExtensionsHeader), over HTTP and the framed transport. The
// same is tested with Quicksand's own client in a VM in
// engine/interop_test.go; these pin the exact shapes on the host.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// quicksandPost posts without our dialect's header, as their client does.
func (a *agent) quicksandPost(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, a.base+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil && resp.StatusCode == http.StatusOK {
		t.Fatalf("%s answered %q: %v", path, data, err)
	}
	return resp.StatusCode, out
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestQuicksandDialectExecute(t *testing.T) {
	a := startAgent(t)
	cases := []struct {
		name   string
		req    map[string]any
		stdout string
		stderr string
		code   float64
	}{
		{"output", map[string]any{"command": "echo out; echo err >&2; exit 3"}, "out\n", "err\n", 3},
		{"not utf-8 becomes U+FFFD", map[string]any{"command": `printf 'a\377b'`}, "a\ufffdb", "", 0},
		{"missing cwd is a result", map[string]any{"command": "true", "cwd": "/no/such/dir"}, "", `cwd "/no/such/dir": no such file or directory`, -1},
		{"missing shell is a result", map[string]any{"command": "true", "shell": "/no/shell"}, "", `shell "/no/shell"`, -1},
		{"timeout is said on stderr", map[string]any{"command": "echo before; sleep 5", "timeout": 0.5}, "before\n", "Command timed out after 0.5 seconds", -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, res := a.quicksandPost(t, protocol.PathExecute, c.req)
			if status != http.StatusOK {
				t.Fatalf("status %d: %v", status, res)
			}
			if got := keys(res); !reflect.DeepEqual(got, []string{"exit_code", "stderr", "stdout"}) {
				t.Fatalf("fields %v: Quicksand's clients take exactly stdout, stderr, exit_code", got)
			}
			if res["stdout"] != c.stdout || !strings.Contains(res["stderr"].(string), c.stderr) || res["exit_code"] != c.code {
				t.Fatalf("got %v; want stdout %q, stderr with %q, exit %v", res, c.stdout, c.stderr, c.code)
			}
		})
	}
	if status, res := a.quicksandPost(t, protocol.PathExecute, map[string]any{"command": "id", "user": "no-such-user"}); status != http.StatusBadRequest {
		t.Fatalf("an unknown user: status %d %v; want 400, never a run as root", status, res)
	}
	if status, res := a.quicksandPost(t, protocol.PathAuthenticate, map[string]any{"token": a.token}); status != http.StatusOK ||
		!reflect.DeepEqual(res["capabilities"], []any{protocol.CapabilityStdinStreaming, protocol.CapabilitySealed, protocol.CapabilityMux}) {
		t.Fatalf("authenticate: %d %v", status, res)
	}
}

// quicksandStream reads /execute_stream without our header, each event as
// the raw JSON object.
func (a *agent) quicksandStream(t *testing.T, req map[string]any) []map[string]any {
	t.Helper()
	raw, _ := json.Marshal(req)
	hreq, _ := http.NewRequest(http.MethodPost, a.base+protocol.PathExecuteStream, bytes.NewReader(raw))
	hreq.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var events []map[string]any
	for ev, err := range sse.Read(resp.Body, nil) {
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
			t.Fatal(err)
		}
		events = append(events, m)
	}
	return events
}

func TestQuicksandDialectStream(t *testing.T) {
	a := startAgent(t)
	events := a.quicksandStream(t, map[string]any{"command": "echo out; exit 2"})
	// Each event names its kind twice: "stream" for Quicksand's clients,
	// "type" for clients written from the seed document.
	want := []map[string]any{{"type": "stdout", "stream": "stdout", "data": "out\n"}, {"type": "exit", "stream": "exit", "exit_code": float64(2)}}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	events = a.quicksandStream(t, map[string]any{"command": "sleep 5", "timeout": 0.3})
	want = []map[string]any{{"type": "stderr", "stream": "stderr", "data": "Command timed out after 0.3 seconds\n"}, {"type": "exit", "stream": "exit", "exit_code": float64(-1)}}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("timeout events %v, want %v", events, want)
	}
	events = a.quicksandStream(t, map[string]any{"command": "true", "cwd": "/no/such/dir"})
	if len(events) != 2 || events[0]["stream"] != "stderr" || events[1]["exit_code"] != float64(-1) {
		t.Fatalf("a missing cwd: events %v; want a stderr event and exit -1", events)
	}
}

// Streaming stdin: the ready event, pieces in order, EOF, and /stdin after
// the command ended.
func TestQuicksandStdinStreaming(t *testing.T) {
	a := startAgent(t)
	done := make(chan []map[string]any)
	go func() { done <- a.quicksandStream(t, map[string]any{"command": "cat", "stdin_id": "s1"}) }()
	send := func(body map[string]any) map[string]any {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, res := a.quicksandPost(t, protocol.PathStdin, body)
			if status != http.StatusOK {
				t.Fatalf("stdin %v: %d %v", body, status, res)
			}
			// Before the command registered, the id answers closed: wait for it.
			if res["closed"] == false || body["eof"] == true || time.Now().After(deadline) {
				return res
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, piece := range []string{"b25lIA==", "dHdvIA=="} { // "one ", "two "
		if res := send(map[string]any{"stdin_id": "s1", "data": piece}); res["closed"] != false {
			t.Fatalf("a piece answered %v", res)
		}
	}
	if res := send(map[string]any{"stdin_id": "s1", "eof": true}); res["closed"] != true {
		t.Fatalf("eof answered %v", res)
	}
	events := <-done
	if len(events) < 3 || !reflect.DeepEqual(events[0], map[string]any{"type": "ready", "stream": "ready"}) {
		t.Fatalf("events %v: the stream must open with ready", events)
	}
	var out string
	for _, e := range events[1 : len(events)-1] {
		out += e["data"].(string)
	}
	if out != "one two " || events[len(events)-1]["exit_code"] != float64(0) {
		t.Fatalf("events %v", events)
	}
	if _, res := a.quicksandPost(t, protocol.PathStdin, map[string]any{"stdin_id": "s1", "data": "eA=="}); res["closed"] != true {
		t.Fatalf("stdin after the command ended: %v", res)
	}
	if _, res := a.quicksandPost(t, protocol.PathCancel, map[string]any{"stdin_id": "s1"}); res["cancelled"] != false {
		t.Fatalf("cancel after the command ended: %v", res)
	}
}

func TestQuicksandExclusive(t *testing.T) {
	a := startAgent(t)
	done := make(chan int)
	go func() {
		status, _ := a.quicksandPost(t, protocol.PathExecute, map[string]any{"command": "sleep 1", "exclusive": true})
		done <- status
	}()
	refused := false
	for deadline := time.Now().Add(5 * time.Second); !refused && time.Now().Before(deadline); {
		status, _ := a.quicksandPost(t, protocol.PathExecute, map[string]any{"command": "true"})
		refused = status == http.StatusServiceUnavailable
		time.Sleep(10 * time.Millisecond)
	}
	if status := <-done; status != http.StatusOK || !refused {
		t.Fatalf("exclusive command: %d; another refused meanwhile: %v", status, refused)
	}
	if status, _ := a.quicksandPost(t, protocol.PathExecute, map[string]any{"command": "true"}); status != http.StatusOK {
		t.Fatalf("after the exclusive command: %d", status)
	}
}

// The framed transport, over the unix socket the agent serves it on for
// tests (in a VM: the quicksand.agent.0 port).
func TestQuicksandFrames(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	a := startAgent(t, "-serial-socket", sock)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	call := func(frame map[string]any) {
		raw, _ := json.Marshal(frame)
		c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(raw))))
		c.Write(raw)
	}
	next := func() map[string]any {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(c, raw); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(raw, &m)
		return m
	}
	call(map[string]any{"id": 1, "method": "execute", "params": map[string]any{"command": "true"}})
	if m := next(); m["error"] == nil {
		t.Fatalf("before authenticating: %v", m)
	}
	call(map[string]any{"id": 2, "method": "authenticate", "params": map[string]any{"token": "wrong"}})
	if m := next(); m["result"].(map[string]any)["authenticated"] != false {
		t.Fatalf("a wrong token: %v", m)
	}
	call(map[string]any{"id": 3, "method": "authenticate", "params": map[string]any{"token": a.token}})
	if m := next(); m["result"].(map[string]any)["authenticated"] != true {
		t.Fatalf("the right token: %v", m)
	}
	call(map[string]any{"id": 4, "method": "execute", "params": map[string]any{"command": "echo hi; exit 5"}})
	if m := next(); !reflect.DeepEqual(m, map[string]any{"id": float64(4), "result": map[string]any{"stdout": "hi\n", "stderr": "", "exit_code": float64(5)}}) {
		t.Fatalf("execute: %v", m)
	}
	call(map[string]any{"id": 5, "method": "execute_stream", "params": map[string]any{"command": "echo a"}})
	for _, want := range []map[string]any{{"id": float64(5), "type": "stdout", "stream": "stdout", "data": "a\n"}, {"id": float64(5), "type": "exit", "stream": "exit", "exit_code": float64(0)}} {
		if m := next(); !reflect.DeepEqual(m, want) {
			t.Fatalf("stream: %v, want %v", m, want)
		}
	}
	call(map[string]any{"id": 6, "method": "execute", "params": map[string]any{"command": "id", "user": "no-such-user"}})
	if m := next(); m["error"] == nil || !strings.Contains(m["error"].(map[string]any)["message"].(string), "no such user") {
		t.Fatalf("an unknown user: %v", m)
	}
	call(map[string]any{"id": 7, "method": "nope"})
	if m := next(); m["error"] == nil {
		t.Fatalf("an unknown method: %v", m)
	}
}

// A stream that fails after it began: Quicksand's clients read "error",
// the seed's read "type".
func TestQuicksandErrorEvent(t *testing.T) {
	var got map[string]any
	if err := json.Unmarshal(encodeEvent(protocol.Event{Type: protocol.EventError, Detail: "lost"}, false), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "error", "error": map[string]any{"message": "lost"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("error event %v, want %v", got, want)
	}
}
