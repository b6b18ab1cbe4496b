package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// inFlight is a call sent in a goroutine of its own: what it got, and
// when.
type inFlight struct {
	status int
	body   string
	err    error
	ended  time.Time
}

// sendAsync posts body to path with key on s's current address and
// reports on the returned channel.
func (s *testServer) sendAsync(path, key string, body any) <-chan inFlight {
	out := make(chan inFlight, 1)
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.base+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+key)
	client := s.client
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			out <- inFlight{err: err, ended: time.Now()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- inFlight{status: resp.StatusCode, body: string(b), ended: time.Now()}
	}()
	return out
}

// A restart keeps a tenant's sandbox (its id, metadata, timeout, files in
// RAM and on disk; twice over), ends the calls in flight at once with an
// error that says why, keeps a sandbox it cannot save as lost until its
// tenant deletes it, shows another tenant none of it, and leaves the
// tenant's own saves alone.
func TestARestartKeepsSandboxes(t *testing.T) {
	shared := t.TempDir()
	s := startServer(t, "--mount-root", shared)
	var kept, mounted api.Sandbox
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{"memory": "512M", "timeout": 123,
		"metadata": map[string]string{"job": "r1"}}, &kept)
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{"memory": "512M",
		"metadata": map[string]string{"job": "r2"}, "mounts": []map[string]any{{"host": shared, "guest": "/mnt/shared"}}}, &mounted)
	keptPath, mountedPath := "/v1/sandboxes/"+kept.ID, "/v1/sandboxes/"+mounted.ID
	s.must(http.StatusOK, "POST", keptPath+"/execute", keyA, map[string]any{
		"command": "echo in-ram > /tmp/ram && echo on-disk > /root/disk && sync"}, nil)
	s.must(http.StatusOK, "POST", keptPath+"/save", keyA, map[string]any{"name": "mine"}, nil)
	tenantSaves, _ := filepath.Glob(filepath.Join(s.data, "tenants", "*", "saves", "mine"))
	if len(tenantSaves) != 1 {
		t.Fatalf("the tenant's save is not where it should be: %v", tenantSaves)
	}

	// Two calls in flight when SIGTERM comes: neither waits for its 30 s.
	whole := s.sendAsync(keptPath+"/execute", keyA, map[string]any{"command": "sleep 30"})
	streamed := s.sendAsync(keptPath+"/execute/stream", keyA, map[string]any{"command": "sleep 30"})
	time.Sleep(2 * time.Second)
	sigterm := time.Now()
	s.restart()
	for name, ch := range map[string]<-chan inFlight{"execute": whole, "execute/stream": streamed} {
		r := <-ch
		if took := r.ended.Sub(sigterm); took > 15*time.Second {
			t.Errorf("%s in flight ended %v after SIGTERM", name, took)
		}
		if r.err != nil || !strings.Contains(r.body, "the server is restarting") {
			t.Errorf("%s in flight got %d %q (%v), want an error saying the server is restarting", name, r.status, r.body, r.err)
		}
	}

	checkKept := func() {
		t.Helper()
		var got api.Sandbox
		s.must(http.StatusOK, "GET", keptPath, keyA, nil, &got)
		if got.ID != kept.ID || !got.Running || got.Lost != "" || got.Metadata["job"] != "r1" || got.Timeout != 123 || got.Created != kept.Created {
			t.Fatalf("after the restart: %+v, before: %+v", got, kept)
		}
		var r api.ExecResult
		s.must(http.StatusOK, "POST", keptPath+"/execute", keyA, map[string]any{"command": "cat /tmp/ram /root/disk"}, &r)
		if r.Stdout != "in-ram\non-disk\n" {
			t.Fatalf("the files after the restart: %q %q", r.Stdout, r.Stderr)
		}
	}
	checkLost := func() {
		t.Helper()
		var got api.Sandbox
		s.must(http.StatusOK, "GET", mountedPath, keyA, nil, &got)
		if got.Running || !strings.Contains(got.Lost, "a save cannot take a mount") || got.Metadata["job"] != "r2" {
			t.Fatalf("the sandbox with a mount after the restart: %+v", got)
		}
		status, body := s.do("POST", mountedPath+"/execute", keyA, map[string]any{"command": "true"})
		if status != http.StatusConflict || !strings.Contains(string(body), "not_running") || !strings.Contains(string(body), "a save cannot take a mount") {
			t.Fatalf("a call on a lost sandbox: %d %s", status, body)
		}
		var l api.SandboxList
		s.must(http.StatusOK, "GET", "/v1/sandboxes", keyA, nil, &l)
		if len(l.Sandboxes) != 2 {
			t.Fatalf("tenant A lists %+v", l)
		}
	}
	checkKept()
	checkLost()
	t.Run("another tenant sees none of it", func(t *testing.T) {
		var l api.SandboxList
		s.must(http.StatusOK, "GET", "/v1/sandboxes", keyB, nil, &l)
		if len(l.Sandboxes) != 0 {
			t.Fatalf("tenant B lists %+v", l)
		}
		for _, p := range []string{keptPath, mountedPath} {
			s.must(http.StatusNotFound, "GET", p, keyB, nil, nil)
			s.must(http.StatusNotFound, "DELETE", p, keyB, nil, nil)
		}
	})

	// Again: a resumed sandbox is saved from the save it was resumed from,
	// and the lost one stays lost.
	s.restart()
	checkKept()
	checkLost()
	if _, err := os.Stat(tenantSaves[0]); err != nil {
		t.Fatalf("the tenant's own save is gone: %v", err)
	}

	s.must(http.StatusNoContent, "DELETE", mountedPath, keyA, nil, nil)
	s.must(http.StatusNotFound, "GET", mountedPath, keyA, nil, nil)
	s.must(http.StatusNoContent, "DELETE", keptPath, keyA, nil, nil)
	left, _ := os.ReadDir(filepath.Join(s.data, "state"))
	if len(left) != 0 {
		t.Fatalf("the data folder keeps %v of deleted sandboxes", left)
	}
}

// A save that cannot be resumed is listed as lost, saying why; a server
// killed leaves nothing to resume, and its next start cleans up after it.
func TestWhatARestartCannotKeep(t *testing.T) {
	s := startServer(t)
	var broken, killed api.Sandbox
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{"metadata": map[string]string{"n": "1"}}, &broken)
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{}, &killed)
	s.stop()
	states, _ := filepath.Glob(filepath.Join(s.data, "state", broken.ID, "save-*", "state"))
	if len(states) != 1 {
		t.Fatalf("the save's state: %v", states)
	}
	f, err := os.OpenFile(states[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("garbage"))
	f.Close()
	s.launch()
	var got api.Sandbox
	s.must(http.StatusOK, "GET", "/v1/sandboxes/"+broken.ID, keyA, nil, &got)
	if got.Running || !strings.Contains(got.Lost, "could not be resumed") || !strings.Contains(got.Lost, "corrupt") || got.Metadata["n"] != "1" {
		t.Fatalf("a save that cannot be resumed: %+v", got)
	}
	s.must(http.StatusOK, "GET", "/v1/sandboxes/"+killed.ID, keyA, nil, &got)
	if !got.Running {
		t.Fatalf("resumed: %+v", got)
	}

	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.launch()
	s.must(http.StatusNotFound, "GET", "/v1/sandboxes/"+killed.ID, keyA, nil, nil)
	s.must(http.StatusOK, "GET", "/v1/sandboxes/"+broken.ID, keyA, nil, &got)
	if got.Lost == "" {
		t.Fatalf("after a kill, the lost one: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(s.data, "state", killed.ID)); !os.IsNotExist(err) {
		t.Fatalf("the killed server's sandbox left its folder: %v", err)
	}
	s.must(http.StatusNoContent, "DELETE", "/v1/sandboxes/"+broken.ID, keyA, nil, nil)
	if left, _ := os.ReadDir(filepath.Join(s.data, "state")); len(left) != 0 {
		t.Fatalf("left in the data folder: %v", left)
	}
}

// A stop that --stop-timeout leaves no time to save a sandbox in still
// exits at once, and records it lost.
func TestAStopOutOfTimeRecordsLost(t *testing.T) {
	s := startServer(t, "--stop-timeout", "0.001")
	var sb api.Sandbox
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{}, &sb)
	began := time.Now()
	s.restart()
	var got api.Sandbox
	s.must(http.StatusOK, "GET", "/v1/sandboxes/"+sb.ID, keyA, nil, &got)
	if got.Running || !strings.Contains(got.Lost, "ran out of time") {
		t.Fatalf("after a stop with no time: %+v", got)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("the restart took %v", took)
	}
}

// A restart with no sandboxes is nothing special.
func TestARestartWithNoSandboxes(t *testing.T) {
	s := startServer(t)
	s.restart()
	var l api.SandboxList
	s.must(http.StatusOK, "GET", "/v1/sandboxes", keyA, nil, &l)
	if len(l.Sandboxes) != 0 {
		t.Fatalf("after a restart with none: %+v", l)
	}
}

// QS_RESTART_BENCH=N measures a restart with N sandboxes of 512 MiB, each
// with a file written (and QS_RESTART_BENCH_FILL MiB of random bytes in its
// RAM, /dev/shm, which holds at most half the guest's RAM): how long the stop (SIGTERM to exit) and the start (to
// listening, every sandbox resumed) take, and the size of the saves.
func TestRestartTime(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("QS_RESTART_BENCH"))
	if n < 1 {
		t.Skip("QS_RESTART_BENCH=N measures a restart with N sandboxes")
	}
	fill, _ := strconv.Atoi(os.Getenv("QS_RESTART_BENCH_FILL"))
	s := startServer(t)
	ids := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := s.do("POST", "/v1/sandboxes", keyA, map[string]any{"memory": "512M"})
			var sb api.Sandbox
			if status != http.StatusCreated || json.Unmarshal(body, &sb) != nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%d %s", status, body))
				mu.Unlock()
				return
			}
			ids[i] = sb.ID
			s.do("POST", "/v1/sandboxes/"+sb.ID+"/execute", keyA, map[string]any{"command": fmt.Sprintf(
				"echo %s > /root/id && head -c %dM /dev/urandom > /dev/shm/fill", sb.ID, fill), "timeout": 300})
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("creates failed: %v", failed)
	}
	began := time.Now()
	s.stop()
	stopped := time.Since(began)
	var size int64
	filepath.Walk(filepath.Join(s.data, "state"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	if lost := strings.Count(s.log.String(), "lost=it"); lost > 0 {
		t.Errorf("%d sandboxes lost:\n%s", lost, s.log)
	}
	began = time.Now()
	s.launch()
	started := time.Since(began)
	for _, id := range ids {
		var r api.ExecResult
		s.must(http.StatusOK, "POST", "/v1/sandboxes/"+id+"/execute", keyA, map[string]any{"command": "cat /root/id"}, &r)
		if r.Stdout != id+"\n" {
			t.Errorf("%s after the restart: %q", id, r.Stdout)
		}
	}
	t.Logf("%d sandboxes of 512 MiB, %d MiB of RAM filled in each: stop (saving them) %v, saves %d MiB, start (resuming them) %v",
		n, fill, stopped, size>>20, started)
}
