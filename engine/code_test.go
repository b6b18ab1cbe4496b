package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image/png"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The code interpreter on real VMs: debian-python's Jupyter kernel, and
// bash contexts in the default image.

var pythonShared struct {
	once sync.Once
	sb   *Sandbox
	err  error
}

// pythonSandbox is one debian-python sandbox for tests that use contexts
// of their own or leave nothing the others read (stopped by TestMain).
func pythonSandbox(t *testing.T) *Sandbox {
	t.Helper()
	pythonShared.once.Do(func() {
		pythonShared.sb, pythonShared.err = Start(context.Background(), Config{Image: "debian-python", MemoryMiB: 1024})
	})
	if pythonShared.err != nil {
		t.Fatalf("starting the debian-python sandbox: %v", pythonShared.err)
	}
	return pythonShared.sb
}

func stopPythonShared() {
	if pythonShared.sb != nil {
		pythonShared.sb.Stop(context.Background())
	}
}

func runCode(t *testing.T, sb *Sandbox, req CodeRequest) *Execution {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ex, err := sb.RunCode(ctx, req)
	if err != nil {
		t.Fatalf("RunCode(%q): %v", req.Code, err)
	}
	return ex
}

func newContext(t *testing.T, sb *Sandbox, lang string) CodeContext {
	t.Helper()
	c, err := sb.CreateCodeContext(context.Background(), CodeContextOptions{Language: lang})
	if err != nil {
		t.Fatalf("CreateCodeContext(%s): %v", lang, err)
	}
	t.Cleanup(func() { _ = sb.RemoveCodeContext(context.Background(), c.ID) })
	return c
}

func TestRunCodePython(t *testing.T) {
	t.Parallel() // a VM of its own, CPU-bound under emulation: two at once use both cores
	sb := pythonSandbox(t)
	c := newContext(t, sb, LanguagePython)
	in := func(code string) *Execution { return runCode(t, sb, CodeRequest{Code: code, Context: c.ID}) }

	t.Run("state", func(t *testing.T) {
		in("x = 41")
		ex := in("x + 1")
		if ex.Text() != "42" || ex.Error != nil || len(ex.Results) != 1 || !ex.Results[0].IsMainResult {
			t.Fatalf("x + 1: %+v", ex)
		}
		if again := in("x"); again.ExecutionCount != ex.ExecutionCount+1 {
			t.Errorf("execution count %d after %d", again.ExecutionCount, ex.ExecutionCount)
		}
	})
	t.Run("output in order", func(t *testing.T) {
		var seen []string
		ex := runCode(t, sb, CodeRequest{Context: c.ID,
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
		var called *CodeError
		ex := runCode(t, sb, CodeRequest{Context: c.ID, Code: "def f():\n    return 1 / 0\nf()",
			OnError: func(e CodeError) error { called = &e; return nil }})
		if ex.Error == nil || ex.Error.Name != "ZeroDivisionError" || !strings.Contains(ex.Error.Traceback, "return 1 / 0") {
			t.Fatalf("error: %+v", ex.Error)
		}
		if strings.Contains(ex.Error.Traceback, "\x1b[") {
			t.Errorf("the traceback has terminal colours: %q", ex.Error.Traceback)
		}
		if called == nil || called.Name != "ZeroDivisionError" {
			t.Errorf("OnError: %+v", called)
		}
	})
	t.Run("chart", func(t *testing.T) {
		ex := in("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()")
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
			found = true
		}
		if !found {
			t.Fatalf("no PNG among %d results (error %+v)", len(ex.Results), ex.Error)
		}
	})
	t.Run("dataframe", func(t *testing.T) {
		ex := in("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
		if ex.Error != nil || len(ex.Results) == 0 {
			t.Fatalf("%+v", ex)
		}
		r := ex.Results[0]
		if !strings.Contains(r.HTML, "<table") || r.Text == "" {
			t.Errorf("a DataFrame: html %q text %q", r.HTML, r.Text)
		}
		if f := strings.Join(r.Formats(), ","); !strings.Contains(f, "html") || !strings.Contains(f, "text") {
			t.Errorf("formats %s", f)
		}
	})
	t.Run("env", func(t *testing.T) {
		ex := runCode(t, sb, CodeRequest{Context: c.ID, Code: "import os\nos.environ.get('QS_GREETING')", Env: map[string]string{"QS_GREETING": "hi"}})
		if ex.Text() != "'hi'" {
			t.Errorf("with env: %q", ex.Text())
		}
		if ex := in("os.environ.get('QS_GREETING')"); ex.Text() != "" {
			t.Errorf("the next run still has it: %q", ex.Text())
		}
	})
	t.Run("timeout keeps the state", func(t *testing.T) {
		start := time.Now()
		ex := runCode(t, sb, CodeRequest{Context: c.ID, Code: "while True:\n    pass", Timeout: 2 * time.Second})
		if ex.Error == nil || ex.Error.Name != CodeErrorTimeout {
			t.Fatalf("an endless loop with a 2 s timeout: %+v", ex.Error)
		}
		if took := time.Since(start); took > time.Minute {
			t.Errorf("took %v", took)
		}
		if ex := in("x"); ex.Text() != "41" {
			t.Errorf("after the interrupt, x is %q (error %+v)", ex.Text(), ex.Error)
		}
	})
	t.Run("contexts are separate", func(t *testing.T) {
		other := newContext(t, sb, LanguagePython)
		ex := runCode(t, sb, CodeRequest{Context: other.ID, Code: "x"})
		if ex.Error == nil || ex.Error.Name != "NameError" {
			t.Errorf("x in another context: %+v", ex)
		}
		list, err := sb.CodeContexts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, l := range list {
			ids[l.ID] = true
		}
		if !ids[c.ID] || !ids[other.ID] {
			t.Errorf("listed %+v", list)
		}
	})
	t.Run("a dead kernel", func(t *testing.T) {
		d := newContext(t, sb, LanguagePython)
		runCode(t, sb, CodeRequest{Context: d.ID, Code: "y = 1"})
		ex := runCode(t, sb, CodeRequest{Context: d.ID, Code: "import os\nos._exit(3)"})
		if ex.Error == nil || ex.Error.Name != CodeErrorKernelDied {
			t.Fatalf("a cell that ends its kernel: %+v", ex.Error)
		}
		ex = runCode(t, sb, CodeRequest{Context: d.ID, Code: "y"})
		if ex.Error == nil || ex.Error.Name != "NameError" {
			t.Errorf("the next run, in a fresh kernel: %+v", ex)
		}
	})
	t.Run("restart", func(t *testing.T) {
		r := newContext(t, sb, LanguagePython)
		runCode(t, sb, CodeRequest{Context: r.ID, Code: "z = 1"})
		if err := sb.RestartCodeContext(context.Background(), r.ID); err != nil {
			t.Fatal(err)
		}
		if ex := runCode(t, sb, CodeRequest{Context: r.ID, Code: "z"}); ex.Error == nil || ex.Error.Name != "NameError" {
			t.Errorf("after a restart: %+v", ex)
		}
	})
	t.Run("a callback's error", func(t *testing.T) {
		mine := errors.New("enough")
		_, err := sb.RunCode(context.Background(), CodeRequest{Context: c.ID, Code: "print('a', flush=True)\nimport time\ntime.sleep(600)",
			OnStdout: func(string) error { return mine }})
		if err != mine {
			t.Fatalf("a callback's error came back as %v", err)
		}
		// The cell was interrupted: the context answers at once.
		if ex := runCode(t, sb, CodeRequest{Context: c.ID, Code: "x", Timeout: time.Minute}); ex.Text() != "41" {
			t.Errorf("after the callback's error: %q %+v", ex.Text(), ex.Error)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		ctx := context.Background()
		if _, err := sb.RunCode(ctx, CodeRequest{Code: "1", Language: "cobol"}); KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "cobol") {
			t.Errorf("an unknown language: %v", err)
		}
		if _, err := sb.RunCode(ctx, CodeRequest{Code: "1", Context: "nope"}); KindOf(err) != KindNotFound {
			t.Errorf("an unknown context: %v", err)
		}
		if _, err := sb.RunCode(ctx, CodeRequest{Code: "1", Context: c.ID, Language: LanguageBash}); KindOf(err) != KindBadRequest {
			t.Errorf("a python context asked for bash: %v", err)
		}
		if err := sb.RemoveCodeContext(ctx, "nope"); KindOf(err) != KindNotFound {
			t.Errorf("removing an unknown context: %v", err)
		}
	})
}

// The default context of a warm-started debian-python sandbox is running
// before the first call (the template was taken with it), and its state
// follows checkpoints and saves.
func TestRunCodeFollowsSnapshots(t *testing.T) {
	t.Parallel() // a VM of its own, CPU-bound under emulation: two at once use both cores
	ctx := context.Background()
	sb := startSandbox(t, Config{Image: "debian-python", MemoryMiB: 1024})
	list, err := sb.CodeContexts(ctx)
	if err != nil || len(list) != 1 || !list[0].Default || list[0].Language != LanguagePython {
		t.Fatalf("a warm start's contexts: %+v %v; want the python default, running", list, err)
	}
	runCode(t, sb, CodeRequest{Code: "v = 'before'"})
	if err := sb.Checkpoint(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	runCode(t, sb, CodeRequest{Code: "v = 'after'"})
	if err := sb.Revert(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if ex := runCode(t, sb, CodeRequest{Code: "v"}); ex.Text() != "'before'" {
		t.Fatalf("after the revert: %q %+v", ex.Text(), ex.Error)
	}
	dir, err := sb.Save(ctx, filepath.Join(t.TempDir(), "save"))
	if err != nil {
		t.Fatal(err)
	}
	resumed := startSandbox(t, Config{Image: dir, MemoryMiB: 1024})
	if ex := runCode(t, resumed, CodeRequest{Code: "v"}); ex.Text() != "'before'" {
		t.Fatalf("in the resumed save: %q %+v", ex.Text(), ex.Error)
	}
}

func TestRunCodeBash(t *testing.T) {
	sb := sharedSandbox(t)
	c := newContext(t, sb, LanguageBash)
	in := func(code string) *Execution { return runCode(t, sb, CodeRequest{Code: code, Context: c.ID}) }
	in("cd /tmp && greeting=hello && shout() { echo \"${1^^}\"; }")
	ex := in("pwd; echo $greeting; shout quiet")
	if got := strings.Join(ex.Logs.Stdout, ""); got != "/tmp\nhello\nQUIET\n" || ex.Error != nil {
		t.Fatalf("the second cell: %q %+v", got, ex.Error)
	}
	ex = runCode(t, sb, CodeRequest{Code: "sleep 600", Context: c.ID, Timeout: time.Second})
	if ex.Error == nil || ex.Error.Name != CodeErrorTimeout {
		t.Fatalf("sleep 600 with a 1 s timeout: %+v", ex.Error)
	}
	if ex := in("echo $greeting in $PWD"); strings.Join(ex.Logs.Stdout, "") != "hello in /tmp\n" {
		t.Errorf("after the timeout: %+v", ex.Logs)
	}
	if ex := in("false"); ex.Error == nil || !strings.Contains(ex.Error.Value, "exit code 1") {
		t.Errorf("a failing cell: %+v", ex.Error)
	}
	if ex := runCode(t, sb, CodeRequest{Code: "echo $ONLY_NOW", Context: c.ID, Env: map[string]string{"ONLY_NOW": "set"}}); strings.Join(ex.Logs.Stdout, "") != "set\n" {
		t.Errorf("env: %+v", ex.Logs)
	}
	if ex := in("echo \"[$ONLY_NOW]\""); strings.Join(ex.Logs.Stdout, "") != "[]\n" {
		t.Errorf("env kept after its run: %+v", ex.Logs)
	}
	// The default image has no Python kernel: a clear error.
	_, err := sb.RunCode(context.Background(), CodeRequest{Code: "1 + 1"})
	if KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "debian-python") {
		t.Errorf("python in the default image: %v", err)
	}
}
