package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// The code interpreter through quicksand serve: the engine's own Sandbox,
// made remote, on a real debian-python sandbox, does what a local one
// does (engine/code_test.go); the routes' wire is SSE of the agent's
// events; other tenants see nothing.
func TestCodeOverTheServer(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	sb, err := engine.Start(ctx, engine.Config{Server: s.base, APIKey: keyA, Image: "debian-python", MemoryMiB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop(ctx)
	run := func(t *testing.T, req engine.CodeRequest) *engine.Execution {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		ex, err := sb.RunCode(cctx, req)
		if err != nil {
			t.Fatalf("RunCode(%q): %v", req.Code, err)
		}
		return ex
	}
	in := func(t *testing.T, code string) *engine.Execution { return run(t, engine.CodeRequest{Code: code}) }

	t.Run("state", func(t *testing.T) {
		in(t, "x = 41")
		ex := in(t, "x + 1")
		if ex.Text() != "42" || ex.Error != nil || len(ex.Results) != 1 || !ex.Results[0].IsMainResult {
			t.Fatalf("x + 1: %+v", ex)
		}
		if again := in(t, "x"); again.ExecutionCount != ex.ExecutionCount+1 || ex.ExecutionCount == 0 {
			t.Errorf("execution count %d after %d", again.ExecutionCount, ex.ExecutionCount)
		}
	})
	t.Run("output in order", func(t *testing.T) {
		var seen []string
		ex := run(t, engine.CodeRequest{
			Code:     "import sys\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\nprint('three', flush=True)",
			OnStdout: func(s string) error { seen = append(seen, "out:"+s); return nil },
			OnStderr: func(s string) error { seen = append(seen, "err:"+s); return nil },
		})
		if got := strings.Join(seen, ""); got != "out:one\nerr:two\nout:three\n" {
			t.Errorf("callbacks saw %q", got)
		}
		if strings.Join(ex.Logs.Stdout, "") != "one\nthree\n" || strings.Join(ex.Logs.Stderr, "") != "two\n" {
			t.Errorf("logs: %+v", ex.Logs)
		}
	})
	t.Run("exception", func(t *testing.T) {
		var called *engine.CodeError
		ex := run(t, engine.CodeRequest{Code: "def f():\n    return 1 / 0\nf()",
			OnError: func(e engine.CodeError) error { called = &e; return nil }})
		if ex.Error == nil || ex.Error.Name != "ZeroDivisionError" || !strings.Contains(ex.Error.Traceback, "return 1 / 0") {
			t.Fatalf("error: %+v", ex.Error)
		}
		if called == nil || called.Name != "ZeroDivisionError" {
			t.Errorf("OnError: %+v", called)
		}
	})
	t.Run("chart", func(t *testing.T) {
		var onResult int
		ex := run(t, engine.CodeRequest{Code: "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()",
			OnResult: func(engine.CodeResult) error { onResult++; return nil }})
		var found bool
		for _, r := range ex.Results {
			if r.PNG == "" {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(r.PNG)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("the chart is not a PNG: %v", err)
			}
			if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
				t.Errorf("chart of %v", b)
			}
			if !strings.Contains(strings.Join(r.Formats(), ","), "png") {
				t.Errorf("formats %v", r.Formats())
			}
			found = true
		}
		if !found || onResult != len(ex.Results) {
			t.Fatalf("no PNG among %d results (OnResult called %d times, error %+v)", len(ex.Results), onResult, ex.Error)
		}
	})
	t.Run("timeout keeps the state", func(t *testing.T) {
		start := time.Now()
		ex := run(t, engine.CodeRequest{Code: "while True:\n    pass", Timeout: 2 * time.Second})
		if ex.Error == nil || ex.Error.Name != engine.CodeErrorTimeout {
			t.Fatalf("an endless loop with a 2 s timeout: %+v", ex.Error)
		}
		if took := time.Since(start); took > time.Minute {
			t.Errorf("took %v", took)
		}
		if ex := in(t, "x"); ex.Text() != "41" {
			t.Errorf("after the interrupt, x is %q (error %+v)", ex.Text(), ex.Error)
		}
	})
	t.Run("a callback's error ends the call", func(t *testing.T) {
		stop := errors.New("enough")
		_, err := sb.RunCode(ctx, engine.CodeRequest{Code: "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.05)",
			OnStdout: func(string) error { return stop }})
		if err != stop {
			t.Fatalf("RunCode returned %v, want the callback's error as it is", err)
		}
		if ex := in(t, "x"); ex.Text() != "41" {
			t.Errorf("after the callback's error, x is %q (error %+v)", ex.Text(), ex.Error)
		}
	})
	t.Run("a cancelled run ends and interrupts the cell", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var cancelled time.Time
		_, err := sb.RunCode(cctx, engine.CodeRequest{Code: "import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.05)",
			OnStdout: func(string) error {
				if cancelled.IsZero() {
					cancelled = time.Now().Add(time.Second)
					time.AfterFunc(time.Second, cancel)
				}
				return nil
			}})
		if !errors.Is(err, engine.ErrCancelled) {
			t.Fatalf("a cancelled run: %v", err)
		}
		if took := time.Since(cancelled); took > 10*time.Second {
			t.Errorf("the run ended %v after its cancel", took)
		}
		// The cell still running would hold the context: the next run
		// would wait for ever.
		began := time.Now()
		ex := run(t, engine.CodeRequest{Code: "x"})
		if ex.Text() != "41" {
			t.Errorf("after the cancel, x is %q (error %+v)", ex.Text(), ex.Error)
		}
		t.Logf("the next run answered in %v", time.Since(began))
	})
	t.Run("contexts", func(t *testing.T) {
		c, err := sb.CreateCodeContext(ctx, engine.CodeContextOptions{Language: engine.LanguagePython, Cwd: "/tmp"})
		if err != nil || c.ID == "" || c.Language != engine.LanguagePython || c.Cwd != "/tmp" || c.Default {
			t.Fatalf("created %+v, %v", c, err)
		}
		if ex := run(t, engine.CodeRequest{Context: c.ID, Code: "import os\ny = 1\nos.getcwd()"}); ex.Text() != "'/tmp'" {
			t.Errorf("in the new context: %q %+v", ex.Text(), ex.Error)
		}
		if ex := run(t, engine.CodeRequest{Context: c.ID, Code: "x"}); ex.Error == nil || ex.Error.Name != "NameError" {
			t.Errorf("x in another context: %+v", ex)
		}
		list, err := sb.CodeContexts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]engine.CodeContext{}
		for _, l := range list {
			ids[l.ID] = l
		}
		if _, ok := ids[c.ID]; !ok || len(list) != 2 {
			t.Errorf("listed %+v; want the default and %s", list, c.ID)
		}
		if err := sb.RestartCodeContext(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if ex := run(t, engine.CodeRequest{Context: c.ID, Code: "y"}); ex.Error == nil || ex.Error.Name != "NameError" {
			t.Errorf("after a restart: %+v", ex)
		}
		if err := sb.RemoveCodeContext(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if list, err := sb.CodeContexts(ctx); err != nil || len(list) != 1 || !list[0].Default {
			t.Errorf("after the remove: %+v %v", list, err)
		}
		if _, err := sb.RunCode(ctx, engine.CodeRequest{Context: c.ID, Code: "1"}); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("a run in a removed context: %v", err)
		}
		if err := sb.RemoveCodeContext(ctx, c.ID); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("removing it again: %v", err)
		}
		if err := sb.RestartCodeContext(ctx, "nope"); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("restarting an unknown context: %v", err)
		}

		b, err := sb.CreateCodeContext(ctx, engine.CodeContextOptions{Language: engine.LanguageBash})
		if err != nil {
			t.Fatal(err)
		}
		run(t, engine.CodeRequest{Context: b.ID, Code: "export A=shell"})
		if ex := run(t, engine.CodeRequest{Context: b.ID, Code: "echo $A"}); strings.Join(ex.Logs.Stdout, "") != "shell\n" {
			t.Errorf("a bash context's state: %+v", ex)
		}
		if err := sb.RemoveCodeContext(ctx, b.ID); err != nil {
			t.Error(err)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		if _, err := sb.RunCode(ctx, engine.CodeRequest{Code: "1", Language: "cobol"}); !errors.Is(err, engine.ErrBadRequest) || !strings.Contains(err.Error(), "cobol") {
			t.Errorf("an unknown language: %v", err)
		}
		if _, err := sb.RunCode(ctx, engine.CodeRequest{Code: "1", Timeout: -time.Second}); !errors.Is(err, engine.ErrBadRequest) {
			t.Errorf("a negative timeout: %v", err)
		}
		if _, err := sb.CreateCodeContext(ctx, engine.CodeContextOptions{Language: "cobol"}); !errors.Is(err, engine.ErrBadRequest) {
			t.Errorf("a context in an unknown language: %v", err)
		}
		if err := sb.RemoveCodeContext(ctx, ""); !errors.Is(err, engine.ErrBadRequest) {
			t.Errorf("removing the context with no id: %v", err)
		}
	})

	t.Run("the wire", func(t *testing.T) { codeWire(t, s, sb.ID()) })

	t.Run("other tenants", func(t *testing.T) {
		id := sb.ID()
		c, err := sb.CreateCodeContext(ctx, engine.CodeContextOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range []struct {
			method, path string
			body         any
		}{
			{"POST", api.PathCodeRun, api.CodeRunRequest{Code: "x"}},
			{"POST", api.PathCodeContexts, api.CodeContextOptions{}},
			{"GET", api.PathCodeContexts, nil},
			{"POST", api.PathCodeRestart, nil},
			{"DELETE", api.PathCodeContext, nil},
		} {
			path := strings.NewReplacer("{id}", id, "{context}", c.ID).Replace(rt.path)
			status, body := s.do(rt.method, path, keyB, rt.body)
			if status != http.StatusNotFound || !strings.Contains(string(body), `"kind":"not_found"`) || !strings.Contains(string(body), "no sandbox") {
				t.Errorf("%s %s with another tenant's key: %d %s", rt.method, rt.path, status, body)
			}
		}
		if _, err := engine.Connect(ctx, id, engine.RemoteOptions{Server: s.base, APIKey: keyB}); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("another tenant connects: %v", err)
		}
		// The owner's context went through all of that untouched.
		if ex := run(t, engine.CodeRequest{Context: c.ID, Code: "1 + 1"}); ex.Text() != "2" {
			t.Errorf("the owner's context after the stranger: %+v", ex)
		}
	})
}

// codeWire reads a run as a client without the engine does: Server-Sent
// Events whose data are the agent's events, ending with end; and a bad
// context is a status, before any stream.
func codeWire(t *testing.T, s *testServer, id string) {
	path := strings.Replace(api.PathCodeRun, "{id}", id, 1)
	status, body := s.do("POST", path, keyA, api.CodeRunRequest{Code: "print('hi')\n6 * 7"})
	if status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, status, body)
	}
	var events []api.CodeEvent
	for _, block := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		data, ok := strings.CutPrefix(block, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("an event that is not one data line: %q", block)
		}
		var ev api.CodeEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("%v in %q", err, data)
		}
		events = append(events, ev)
	}
	if len(events) != 3 || events[0].Type != "stdout" || events[0].Text != "hi\n" ||
		events[1].Type != "result" || events[1].Result.Data["text/plain"] != "42" || !events[1].Result.IsMainResult ||
		events[2].Type != "end" || events[2].ExecutionCount == 0 {
		t.Fatalf("events %s", body)
	}
	status, body = s.do("POST", path, keyA, api.CodeRunRequest{Code: "1", Context: "nope"})
	if status != http.StatusNotFound || !strings.Contains(string(body), `"kind":"not_found"`) {
		t.Errorf("a run in an unknown context: %d %s", status, body)
	}
	status, body = s.do("POST", path, keyA, map[string]any{"code": "1", "surprise": true})
	if status != http.StatusBadRequest {
		t.Errorf("a body with an unknown field: %d %s", status, body)
	}
}
