package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// outputWatch collects a process's output from an attach running beside the
// test, and waits for text in it.
type outputWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan *AttachResult
	err  error
}

func watch(t *testing.T, p *Process) *outputWatch {
	w := &outputWatch{done: make(chan *AttachResult, 1)}
	go func() {
		res, err := p.Attach(context.Background(), 0, func(_ Stream, b []byte) error {
			w.mu.Lock()
			w.buf.Write(b)
			w.mu.Unlock()
			return nil
		})
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		w.done <- res
	}()
	return w
}

func (w *outputWatch) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		got, err := w.buf.String(), w.err
		w.mu.Unlock()
		if strings.Contains(got, text) {
			return
		}
		if err != nil {
			t.Fatalf("waiting for %q: %v (output %q)", text, err, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Fatalf("no %q in %q after 30 s", text, w.buf.String())
}

func (w *outputWatch) result(t *testing.T) *AttachResult {
	t.Helper()
	select {
	case r := <-w.done:
		if r == nil {
			t.Fatalf("attach failed: %v", w.err)
		}
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the process did not end")
		return nil
	}
}

func startProcess(t *testing.T, sb *Sandbox, req ProcessRequest) *Process {
	t.Helper()
	p, err := sb.StartProcess(context.Background(), req)
	if err != nil {
		t.Fatalf("StartProcess(%q): %v", req.Command, err)
	}
	if p.ID == "" || p.PID <= 1 {
		t.Fatalf("process handle %+v", p)
	}
	return p
}

// A server started in the background answers through a port forward, and
// lives on after the call that started it; killing it ends it.
func TestBackgroundServerAnswersThroughAPortForward(t *testing.T) {
	ctx := context.Background()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	sb := startSandbox(t, Config{PortForwards: []PortForward{{Host: port, Guest: 8000}}})
	p := startProcess(t, sb, ProcessRequest{Command: "exec python3 -m http.server 8000 --directory /etc"})
	var body []byte
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/hostname", port))
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
	}
	if strings.TrimSpace(string(body)) != "quicksand" {
		t.Fatalf("the server answered %q", body)
	}
	list, err := sb.Processes(ctx)
	if err != nil || len(list) != 1 || list[0].ID != p.ID || list[0].PID != p.PID {
		t.Fatalf("Processes = %+v, %v", list, err)
	}
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := p.Wait(ctx)
	if err != nil || res.ExitCode != 128+9 {
		t.Fatalf("after kill: %+v, %v", res, err)
	}
	if !strings.Contains(string(res.Stderr), "GET /hostname") {
		t.Errorf("the server's log: %q", res.Stderr)
	}
	if list, _ := sb.Processes(ctx); len(list) != 0 {
		t.Fatalf("still listed after it ended: %+v", list)
	}
}

// A REPL driven over stdin; SIGTERM reaches a trap; a second call attached
// later sees the output from the start.
func TestREPLSignalsAndAttach(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	py := startProcess(t, sb, ProcessRequest{Command: "python3 -i -q"})
	w := watch(t, py)
	if err := py.Write(ctx, []byte("print(6*7)\n")); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "42\n")
	if err := py.CloseStdin(ctx); err != nil {
		t.Fatal(err)
	}
	if res := w.result(t); res.ExitCode != 0 || string(res.Stdout) != "42\n" {
		t.Fatalf("the REPL ended %+v", res)
	}
	if err := py.Write(ctx, []byte("x")); KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("writing to an exited process: %v", err)
	}

	trap := startProcess(t, sb, ProcessRequest{Command: "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.1; done"})
	tw := watch(t, trap)
	tw.waitFor(t, "ready")
	if err := trap.Signal(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if res := tw.result(t); res.ExitCode != 3 || string(res.Stdout) != "ready\ngot TERM\n" {
		t.Fatalf("after SIGTERM: %+v", res)
	}

	slow := startProcess(t, sb, ProcessRequest{Command: "echo one; echo err >&2; sleep 1; echo two"})
	time.Sleep(300 * time.Millisecond)
	res, err := sb.Process(slow.ID).Wait(ctx) // a handle made from the id alone
	if err != nil || string(res.Stdout) != "one\ntwo\n" || string(res.Stderr) != "err\n" || res.ExitCode != 0 || res.Dropped != 0 {
		t.Fatalf("a later attach: %+v, %v", res, err)
	}
	// Attaching to a process that ended still gives its output and code.
	if again, err := slow.Wait(ctx); err != nil || string(again.Stdout) != "one\ntwo\n" {
		t.Fatalf("attach after the end: %+v, %v", again, err)
	}
}

// A process on a terminal: it knows its size and follows a resize; ^C
// reaches it through the terminal.
func TestProcessOnATerminal(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	p := startProcess(t, sb, ProcessRequest{Command: "tty; stty size; read x; stty size; sleep 100", PTY: &TerminalSize{Rows: 24, Cols: 80}})
	w := watch(t, p)
	w.waitFor(t, "24 80")
	if err := p.Resize(ctx, 30, 100); err != nil {
		t.Fatal(err)
	}
	if err := p.Write(ctx, []byte("\n")); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "30 100")
	if err := p.Write(ctx, []byte{3}); err != nil { // ^C
		t.Fatal(err)
	}
	res := w.result(t)
	if res.ExitCode != 128+2 || !strings.Contains(string(res.Stdout), "/dev/pts/") || len(res.Stderr) != 0 {
		t.Fatalf("the terminal's process ended %+v (stdout %q)", res, res.Stdout)
	}
}

func TestProcessBadInput(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	if _, err := sb.Process("p-no-such").Wait(ctx); KindOf(err) != KindNotFound || !strings.Contains(err.Error(), "p-no-such") {
		t.Errorf("an unknown id: %v", err)
	}
	p := startProcess(t, sb, ProcessRequest{Command: "cat"})
	if err := p.CloseStdin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Write(ctx, []byte("late")); KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "closed") && !strings.Contains(err.Error(), "exited") {
		t.Errorf("stdin after close: %v", err)
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	q := startProcess(t, sb, ProcessRequest{Command: "sleep 100"})
	defer q.Kill(ctx)
	for _, sig := range []syscall.Signal{0, 65, -1} {
		if err := q.Signal(ctx, sig); KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("signal %d: %v", sig, err)
		}
	}
	if err := q.Resize(ctx, 24, 80); KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "no terminal") {
		t.Errorf("resize without a terminal: %v", err)
	}
	for _, req := range []ProcessRequest{
		{Command: ""},
		{Command: "true", Cwd: "/no/such"},
		{Command: "true", Shell: "/no/shell"},
		{Command: "true", User: "nobody-here"},
		{Command: "true", PTY: &TerminalSize{Rows: 0, Cols: 80}},
	} {
		if _, err := sb.StartProcess(ctx, req); KindOf(err) != KindBadRequest {
			t.Errorf("StartProcess(%+v): %v", req, err)
		}
	}
	// Output past what the guest keeps: the oldest goes, and an attach from
	// the start is told how much.
	big := startProcess(t, sb, ProcessRequest{Command: "head -c 6000000 /dev/zero | tr '\\0' a"})
	time.Sleep(2 * time.Second)
	res, err := big.Wait(ctx)
	if err != nil || res.Dropped == 0 || res.Dropped+int64(len(res.Stdout)) != 6000000 || len(res.Stdout) > 4<<20 {
		t.Fatalf("6 MB of output: dropped %d, kept %d, %v", res.Dropped, len(res.Stdout), err)
	}
}

// A revert brings back the processes of its checkpoint; a handle to one
// started after it fails with an error that says so.
func TestProcessesAcrossRevert(t *testing.T) {
	ctx := context.Background()
	sb := startSandbox(t, Config{})
	before := startProcess(t, sb, ProcessRequest{Command: "sleep 300"})
	if err := sb.Checkpoint(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	after := startProcess(t, sb, ProcessRequest{Command: "sleep 300"})
	if err := sb.Revert(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := after.Kill(ctx); KindOf(err) != KindNotFound || !strings.Contains(err.Error(), "revert") {
		t.Fatalf("a process the revert removed: %v", err)
	}
	list, err := sb.Processes(ctx)
	if err != nil || len(list) != 1 || list[0].ID != before.ID {
		t.Fatalf("after the revert: %+v, %v", list, err)
	}
	// A save takes running processes with it: the resumed sandbox has them,
	// under the same ids.
	dir, err := sb.Save(ctx, filepath.Join(t.TempDir(), "save"))
	if err != nil {
		t.Fatal(err)
	}
	resumed := startSandbox(t, Config{Image: dir})
	if list, err := resumed.Processes(ctx); err != nil || len(list) != 1 || list[0].ID != before.ID {
		t.Fatalf("in the resumed save: %+v, %v", list, err)
	}
	if err := before.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := before.Wait(ctx); err != nil || res.ExitCode != 137 {
		t.Fatalf("%+v, %v", res, err)
	}
}
