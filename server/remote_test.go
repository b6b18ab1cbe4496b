package server

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// The engine's own Sandbox, made remote by Config.Server, against the
// real server: the same methods, results and error kinds as a local one.
func TestTheEnginesClientOnTheServer(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	remote := engine.RemoteOptions{Server: s.base, APIKey: keyA}
	sb, err := engine.Start(ctx, engine.Config{Server: s.base, APIKey: keyA, Metadata: map[string]string{"suite": "remote"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop(ctx)
	if !strings.HasPrefix(sb.ID(), "sb-") || sb.Metadata()["suite"] != "remote" || !sb.IsRunning() {
		t.Fatalf("id %q, metadata %v", sb.ID(), sb.Metadata())
	}

	var streamed bytes.Buffer
	res, err := sb.Execute(ctx, engine.ExecRequest{Command: "printf 'a\\377'; echo e >&2; exit 2", OnOutput: func(s engine.Stream, p []byte) error {
		if s == engine.Stdout {
			streamed.Write(p)
		}
		return nil
	}})
	if err != nil || string(res.Stdout) != "a\xff" || string(res.Stderr) != "e\n" || res.ExitCode != 2 || streamed.String() != "a\xff" {
		t.Fatalf("execute: %+v %v (streamed %q)", res, err, streamed.String())
	}
	stop := errors.New("enough")
	if _, err := sb.Execute(ctx, engine.ExecRequest{Command: "yes", OnOutput: func(engine.Stream, []byte) error { return stop }}); err != stop {
		t.Fatalf("a callback's error ends the call with it: %v", err)
	}
	if _, err := sb.Execute(ctx, engine.ExecRequest{Command: "true", Cwd: "/nonexistent"}); !errors.Is(err, engine.ErrBadRequest) {
		t.Fatalf("a missing cwd: %v", err)
	}

	// Files and trees, both ways, as a guest user too.
	if _, err := sb.WriteFile(ctx, "/tmp/r", strings.NewReader("remote"), engine.FileOptions{Mode: 0o640, User: "nobody"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := sb.Stat(ctx, "/tmp/r", engine.FileOptions{}); err != nil || fi.Size != 6 || fi.Mode != 0o640 {
		t.Fatalf("stat: %+v %v", fi, err)
	}
	if _, err := sb.Stat(ctx, "/tmp/none", engine.FileOptions{}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("stat of a missing path: %v", err)
	}
	host := t.TempDir()
	os.MkdirAll(filepath.Join(host, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(host, "tree", "sub", "f"), []byte("deep"), 0o600)
	if err := sb.Upload(ctx, filepath.Join(host, "tree"), "/tmp/tree", engine.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sb.Download(ctx, "/tmp/tree", filepath.Join(host, "back"), engine.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(host, "back", "sub", "f")); err != nil || string(b) != "deep" {
		t.Fatalf("the tree came back with %q, %v", b, err)
	}

	// A background process, driven from a second handle made by id.
	p, err := sb.StartProcess(ctx, engine.ProcessRequest{Command: "read x; echo got $x"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := engine.Connect(ctx, sb.ID(), remote)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Process(p.ID).Write(ctx, []byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	ar, err := again.Process(p.ID).Wait(ctx)
	if err != nil || string(ar.Stdout) != "got hi\n" {
		t.Fatalf("wait: %+v %v", ar, err)
	}
	if _, err := again.Process("no-such").Attach(ctx, 0, nil); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("attach to an unknown process: %v", err)
	}

	// Found by its labels, and only by its own tenant.
	list, err := engine.ListSandboxes(ctx, remote, map[string]string{"suite": "remote"})
	if err != nil || len(list) != 1 || list[0].ID != sb.ID() {
		t.Fatalf("list: %+v %v", list, err)
	}
	other := engine.RemoteOptions{Server: s.base, APIKey: keyB}
	if _, err := engine.Connect(ctx, sb.ID(), other); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("another tenant connects: %v", err)
	}
	if _, err := engine.Connect(ctx, sb.ID(), engine.RemoteOptions{Server: s.base, APIKey: wrongKey}); !errors.Is(err, engine.ErrAuth) {
		t.Fatalf("a wrong key: %v", err)
	}

	// A cancelled call is cancelled, and the sandbox goes on.
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = sb.Execute(cctx, engine.ExecRequest{Command: "sleep 30"})
	cancel()
	if !errors.Is(err, engine.ErrCancelled) {
		t.Fatalf("a cancelled execute: %v", err)
	}
	if r, err := again.Execute(ctx, engine.ExecRequest{Command: "echo still"}); err != nil || string(r.Stdout) != "still\n" {
		t.Fatalf("after a cancel: %+v %v", r, err)
	}

	if err := sb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := again.Execute(ctx, engine.ExecRequest{Command: "true"}); err == nil {
		t.Fatal("a stopped sandbox still runs commands")
	}
}

// A server that goes away is a transport error that names it.
func TestAServerGoneIsATransportError(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	sb, err := engine.Start(ctx, engine.Config{Server: s.base, APIKey: keyA})
	if err != nil {
		t.Fatal(err)
	}
	s.stop()
	_, err = sb.Execute(ctx, engine.ExecRequest{Command: "true"})
	if !errors.Is(err, engine.ErrTransport) && !errors.Is(err, engine.ErrNotRunning) {
		t.Fatalf("execute on a server that stopped: %v", err)
	}
	if !strings.Contains(err.Error(), strings.TrimPrefix(s.base, "http://")) {
		t.Errorf("the error does not name the server: %v", err)
	}
}
