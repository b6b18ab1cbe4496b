package engine

// Unit tests of the remote client's codec and protocol handling: an
// httptest server stands in for the server's HTTP surface only to feed
// the client answers, honest and lying. The client against the real
// server and real VMs is tested with the server (server/).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// fakeServer answers the describe of sandbox "sb1" and whatever routes a
// test adds (Go 1.22 patterns, method included).
func fakeServer(t *testing.T, routes map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sandboxes/sb1", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(serverapi.Sandbox{ID: "sb1", Running: true, Arch: "x86_64", Accelerator: "tcg",
			Metadata: map[string]string{"job": "7"}, Created: time.Now().UTC().Format(time.RFC3339Nano)})
	})
	for p, h := range routes {
		mux.HandleFunc(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func connectFake(t *testing.T, srv *httptest.Server) *Sandbox {
	t.Helper()
	sb, err := Connect(context.Background(), "sb1", RemoteOptions{Server: srv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func writeEvent(w http.ResponseWriter, event, data string) {
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
	w.(http.Flusher).Flush()
}

func wantKind(t *testing.T, err error, kind Kind, inMsg string) {
	t.Helper()
	if KindOf(err) != kind {
		t.Fatalf("error %v: kind %v, want %v", err, KindOf(err), kind)
	}
	if !strings.Contains(err.Error(), inMsg) {
		t.Fatalf("error %q does not say %q", err, inMsg)
	}
}

func TestRemoteErrorDecoding(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"kind":    {404, `{"error":{"kind":"not_found","code":15,"message":"stat of /x: no such file"}}`},
		"running": {409, `{"error":{"kind":"not_running","code":6,"message":"the sandbox was stopped"}}`},
		"abi":     {500, `{"error":{"kind":"internal","code":12,"message":"oops"}}`},
		"text":    {503, "busy, come back later"},
		"empty":   {504, ""},
		"auth":    {401, `{"error":{"kind":"auth","code":7,"message":"no"}}`},
	}
	srv := fakeServer(t, map[string]http.HandlerFunc{
		"POST /v1/sandboxes/sb1/checkpoint": func(w http.ResponseWriter, r *http.Request) {
			var tag serverapi.Tag
			json.NewDecoder(r.Body).Decode(&tag)
			a := answers[tag.Tag]
			w.WriteHeader(a.status)
			w.Write([]byte(a.body))
		},
	})
	sb := connectFake(t, srv)
	ctx := context.Background()
	wantKind(t, sb.Checkpoint(ctx, "kind"), KindNotFound, "stat of /x: no such file")
	wantKind(t, sb.Checkpoint(ctx, "running"), KindNotRunning, "the sandbox was stopped")
	wantKind(t, sb.Checkpoint(ctx, "abi"), KindUnknown, "oops")
	wantKind(t, sb.Checkpoint(ctx, "text"), KindResource, "busy, come back later")
	wantKind(t, sb.Checkpoint(ctx, "empty"), KindBootTimeout, "504")
	wantKind(t, sb.Checkpoint(ctx, "auth"), KindAuth, "refused the API key")
}

func TestRemoteSendsTheKeyAndFallsBackToTheEnvironment(t *testing.T) {
	var got atomic.Value
	srv := fakeServer(t, map[string]http.HandlerFunc{
		"GET /v1/sandboxes": func(w http.ResponseWriter, r *http.Request) {
			got.Store(r.Header.Get("Authorization") + " " + strings.Join(r.URL.Query()["metadata"], ","))
			json.NewEncoder(w).Encode(serverapi.SandboxList{Sandboxes: []serverapi.Sandbox{{ID: "a", Running: true, Timeout: 300,
				Created: "2025-01-02T03:04:05Z", Metadata: map[string]string{"job": "7"}}}})
		},
	})
	ctx := context.Background()
	t.Setenv(EnvServer, srv.URL)
	t.Setenv(EnvAPIKey, "envkey")
	list, err := ListSandboxes(ctx, RemoteOptions{}, map[string]string{"job": "7", "a": "b=c"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Load() != "Bearer envkey a=b=c,job=7" {
		t.Fatalf("the server got %q", got.Load())
	}
	if len(list) != 1 || list[0].ID != "a" || list[0].IdleTimeout != 300*time.Second || list[0].Created.Year() != 2025 || list[0].Metadata["job"] != "7" {
		t.Fatalf("listed %+v", list)
	}
	// A server the caller names never gets the environment's key.
	if _, err := ListSandboxes(ctx, RemoteOptions{Server: srv.URL}, nil); err != nil {
		t.Fatal(err)
	}
	if got.Load() != " " {
		t.Fatalf("the named server got %q", got.Load())
	}
	// With the environment's server, a config is remote: local options
	// are refused by name.
	wantKind(t, Config{WorkDir: t.TempDir()}.Validate(), KindInvalidConfig, "work_dir")
	if _, err := NewPool(Config{}, 1); KindOf(err) != KindInvalidConfig {
		t.Fatalf("a local pool with $%s: %v", EnvServer, err)
	}
}

func TestRemoteConfigValidate(t *testing.T) {
	t.Setenv(EnvServer, "")
	t.Setenv(EnvAPIKey, "")
	srv := "http://127.0.0.1:7070"
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{APIKey: "k"}, "config field api_key: an API key needs a server"},
		{Config{IdleTimeout: time.Minute}, "config field idle_timeout"},
		{Config{Server: "ftp://x"}, "config field server"},
		{Config{Server: "http://10.1.2.3:7070"}, "unencrypted"},
		{Config{Server: "https://u:p@host:1"}, "credentials go in api_key"},
		{Config{Server: "unix:"}, "names no socket"},
		{Config{Server: srv, APIKey: "a b"}, "printable ASCII"},
		{Config{Server: srv, ImageDirs: []string{"/x"}}, "config field image_dirs: not allowed with a server"},
		{Config{Server: srv, QEMUPath: "/q"}, "qemu_path"},
		{Config{Server: srv, TemplateDir: "/t"}, "template_dir"},
		{Config{Server: srv, ExtraQEMUArgs: []string{"-x"}}, "extra_qemu_args"},
		{Config{Server: srv, ExtraKernelArgs: []string{"x"}}, "extra_kernel_args"},
		{Config{Server: srv, PortForwards: []PortForward{{1, 2}}}, "port_forwards"},
		{Config{Server: srv, Network: NetworkFull, AllowHostLoopback: true}, "allow_host_loopback"},
		{Config{Server: srv, Accel: AccelKVM}, "config field accel"},
		{Config{Server: srv, Image: "./img"}, "config field image"},
		{Config{Server: srv, MemoryMiB: 1}, "config field memory"},
		{Config{Server: srv, Metadata: map[string]string{"a=b": "c"}}, "config field metadata"},
		{Config{Server: srv, Mounts: []Mount{{HostPath: "rel", GuestPath: "/g"}}}, "mounts[0]"},
	} {
		wantKind(t, c.cfg.Validate(), KindInvalidConfig, c.want)
	}
	for _, ok := range []Config{
		{Server: srv, APIKey: "k", Metadata: map[string]string{"a": "b"}, IdleTimeout: -1, Accel: AccelAuto},
		{Server: "https://example.test:7070/prefix/"},
		{Server: "http://[::1]:7070"},
		{Server: "unix:/run/quicksand.sock", Mounts: []Mount{{HostPath: "/srv/data", GuestPath: "/data"}}},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

func TestRemoteCreateBody(t *testing.T) {
	never := Config{MemoryMiB: 1024, BootTimeout: 90 * time.Second, IdleTimeout: -1, Metadata: map[string]string{"a": "b"},
		Mounts: []Mount{{HostPath: "/h", GuestPath: "/g", ReadOnly: true}}}.createBody()
	raw, _ := json.Marshal(never)
	if string(raw) != `{"memory":1024,"boot_timeout":90,"mounts":[{"host":"/h","guest":"/g","readonly":true}],"metadata":{"a":"b"},"timeout":0}` {
		t.Fatalf("create body %s", raw)
	}
	if b := (Config{}).createBody(); b.Timeout != nil || b.Memory != nil {
		t.Fatalf("a default config sends %+v", b)
	}
	if b := (Config{IdleTimeout: 90 * time.Second}).createBody(); b.Timeout == nil || *b.Timeout != 90 {
		t.Fatalf("an idle timeout of 90 s sends %+v", b.Timeout)
	}
}

func TestRemoteTransportAndCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	_, err = Connect(context.Background(), "sb1", RemoteOptions{Server: dead})
	wantKind(t, err, KindTransport, dead)

	hung := make(chan struct{})
	srv := fakeServer(t, map[string]http.HandlerFunc{
		"POST /v1/sandboxes/sb1/execute": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-hung:
			}
		},
	})
	defer close(hung)
	sb := connectFake(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = sb.Execute(ctx, ExecRequest{Command: "true"})
	wantKind(t, err, KindCancelled, `executing "true"`)

	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err = Connect(context.Background(), "sb1", RemoteOptions{Server: "unix:" + sock})
	wantKind(t, err, KindTransport, sock)
}

func TestRemoteExecuteWholeAndStream(t *testing.T) {
	var gotReq atomic.Value
	srv := fakeServer(t, map[string]http.HandlerFunc{
		"POST /v1/sandboxes/sb1/execute": func(w http.ResponseWriter, r *http.Request) {
			var req serverapi.ExecRequest
			json.NewDecoder(r.Body).Decode(&req)
			gotReq.Store(req)
			json.NewEncoder(w).Encode(serverapi.ExecResult{Stdout: "héllo", Stderr: "\ufffd", StderrB64: "/w==", ExitCode: 3})
		},
		"POST /v1/sandboxes/sb1/execute/stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			writeEvent(w, "stdout", `one `)
			writeEvent(w, "stderr_b64", `/w==`)
			writeEvent(w, "stdout", `two`)
			writeEvent(w, "exit", `{"exit_code":0,"timed_out":false,"duration":0.1}`)
		},
	})
	sb := connectFake(t, srv)
	ctx := context.Background()
	if sb.ID() != "sb1" || sb.Arch() != "x86_64" || sb.Accelerator() != AccelTCG || sb.Metadata()["job"] != "7" || sb.Token() != "" || sb.PID() != 0 {
		t.Fatalf("described as %q %q %q %v", sb.ID(), sb.Arch(), sb.Accelerator(), sb.Metadata())
	}
	var heldOut, heldErr []byte
	res, err := sb.Execute(ctx, ExecRequest{Command: "c", Stdin: []byte{0xff, 'a'}, MaxOutput: 4, Timeout: 5 * time.Second,
		OutputMemory: func(o, e int) ([]byte, []byte) {
			heldOut, heldErr = make([]byte, o), make([]byte, e)
			return heldOut, heldErr
		}})
	if err != nil {
		t.Fatal(err)
	}
	req := gotReq.Load().(serverapi.ExecRequest)
	if req.StdinB64 != "/2E=" || req.Stdin != "" || req.MaxOutput != 4 || req.Timeout != 5 {
		t.Fatalf("the server got %+v", req)
	}
	// "héllo" held to 4 bytes: "hél" (never half a character).
	if string(res.Stdout) != "hél" || !res.StdoutTruncated || !bytes.Equal(res.Stderr, []byte{0xff}) || res.ExitCode != 3 || &res.Stdout[0] != &heldOut[0] {
		t.Fatalf("result %q %v %q %d", res.Stdout, res.StdoutTruncated, res.Stderr, res.ExitCode)
	}

	var seen []string
	res, err = sb.Execute(ctx, ExecRequest{Command: "c", OnOutput: func(s Stream, p []byte) error {
		seen = append(seen, fmt.Sprintf("%v:%q", s, p))
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, " ") != `stdout:"one " stderr:"\xff" stdout:"two"` || string(res.Stdout) != "one two" || string(res.Stderr) != "\xff" {
		t.Fatalf("chunks %v, result %q %q", seen, res.Stdout, res.Stderr)
	}
}

// A server that lies gets a clear error, never a hang or a crash.
func TestRemoteStreamFromALyingServer(t *testing.T) {
	srv := fakeServer(t, map[string]http.HandlerFunc{
		"POST /v1/sandboxes/sb1/execute/stream": func(w http.ResponseWriter, r *http.Request) {
			var req serverapi.ExecRequest
			json.NewDecoder(r.Body).Decode(&req)
			w.Header().Set("Content-Type", "text/event-stream")
			switch req.Command {
			case "huge":
				fmt.Fprint(w, "event: stdout\ndata: ")
				chunk := strings.Repeat("a", 1<<20)
				for i := 0; i < 20 && r.Context().Err() == nil; i++ {
					fmt.Fprint(w, chunk)
				}
			case "nob64":
				writeEvent(w, "stdout_b64", `!!`)
			case "noexit":
				writeEvent(w, "stdout", `x`)
			case "error":
				writeEvent(w, "error", `{"error":{"kind":"resource","code":14,"message":"the guest ran out of memory"}}`)
			case "inner":
				writeEvent(w, "error", `{"kind":"bad_request","code":9,"message":"no such user"}`)
			case "badexit":
				writeEvent(w, "exit", `{"exit_code":"zero"}`)
			}
		},
	})
	sb := connectFake(t, srv)
	for cmd, want := range map[string]struct {
		kind Kind
		msg  string
	}{
		"huge":    {KindTransport, "reading the server's event stream"},
		"nob64":   {KindTransport, "base64"},
		"noexit":  {KindTransport, "ended without an exit"},
		"error":   {KindResource, "the guest ran out of memory"},
		"inner":   {KindBadRequest, "no such user"},
		"badexit": {KindTransport, "not a result"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := sb.Execute(ctx, ExecRequest{Command: cmd, OnOutput: func(Stream, []byte) error { return nil }})
		cancel()
		if err == nil {
			t.Fatalf("%s: no error", cmd)
		}
		if KindOf(err) != want.kind || !strings.Contains(err.Error(), want.msg) {
			t.Errorf("%s: %v (kind %v), want %v saying %q", cmd, err, KindOf(err), want.kind, want.msg)
		}
	}
}

func TestRemoteCallbackErrorAbandonsTheStream(t *testing.T) {
	gone := make(chan struct{})
	srv := fakeServer(t, map[string]http.HandlerFunc{
		"POST /v1/sandboxes/sb1/execute/stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for {
				writeEvent(w, "stdout", `tick`)
				select {
				case <-r.Context().Done():
					close(gone)
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		},
	})
	sb := connectFake(t, srv)
	mine := errors.New("the caller had enough")
	calls := 0
	_, err := sb.Execute(context.Background(), ExecRequest{Command: "yes", OnOutput: func(Stream, []byte) error {
		calls++
		return mine
	}})
	if err != mine || calls != 1 {
		t.Fatalf("got %v after %d calls, want the callback's own error after 1", err, calls)
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's stream was not abandoned")
	}
}

func TestRemoteFilesAndStop(t *testing.T) {
	srv := fakeServer(t, map[string]http.HandlerFunc{
		"POST /v1/sandboxes/sb1/files/op": func(w http.ResponseWriter, r *http.Request) {
			var op serverapi.FileOp
			json.NewDecoder(r.Body).Decode(&op)
			switch op.Path {
			case "/missing":
				w.WriteHeader(404)
				fmt.Fprint(w, `{"error":{"kind":"not_found","code":15,"message":"stat of /missing: no such file or folder"}}`)
			case "/evil":
				fmt.Fprint(w, `{"entries":[{"name":"../../etc","type":"dir"}]}`)
			default:
				fmt.Fprintf(w, `{"info":{"name":"f","type":"file","size":3,"mode":420}}`)
			}
		},
		"GET /v1/sandboxes/sb1/files": func(w http.ResponseWriter, r *http.Request) {
			// No length said, and more than was asked for.
			w.(http.Flusher).Flush()
			fmt.Fprint(w, strings.Repeat("x", 100))
		},
		"DELETE /v1/sandboxes/sb1": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
	})
	sb := connectFake(t, srv)
	ctx := context.Background()
	info, err := sb.Stat(ctx, "/dir/f", FileOptions{})
	if err != nil || info.Size != 3 || info.Mode != 0o644 || info.Type != "file" {
		t.Fatalf("stat %+v %v", info, err)
	}
	_, err = sb.Stat(ctx, "/missing", FileOptions{})
	wantKind(t, err, KindNotFound, "/missing")
	if ok, err := sb.Exists(ctx, "/missing", FileOptions{}); ok || err != nil {
		t.Fatalf("exists %v %v", ok, err)
	}
	_, err = sb.ListDir(ctx, "/evil", FileOptions{})
	wantKind(t, err, KindTransport, "impossible file")

	var buf bytes.Buffer
	_, err = sb.ReadFile(ctx, "/big", &buf, FileOptions{MaxSize: 10})
	wantKind(t, err, KindBadRequest, "max_size")
	if buf.Len() > 10 {
		t.Fatalf("%d bytes reached the writer past a limit of 10", buf.Len())
	}

	wantKind(t, func() error { _, err := sb.Mount(ctx, Mount{}); return err }(), KindBadRequest, "not available on a server's sandbox")
	if err := sb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sb.Stop(ctx); err != nil {
		t.Fatalf("a second stop: %v", err)
	}
	sb.Wait() // returns at once after Stop
	if sb.IsRunning() {
		t.Fatal("running after Stop")
	}
	_, err = sb.Execute(ctx, ExecRequest{Command: "true"})
	wantKind(t, err, KindNotRunning, "stopped")
	if err := (&Sandbox{cfg: Config{}}).SetIdleTimeout(ctx, time.Minute); KindOf(err) != KindBadRequest {
		t.Fatalf("a local idle timeout: %v", err)
	}
}

func TestRemoteProcessesAndTrees(t *testing.T) {
	var got []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); got = append(got, s); mu.Unlock() }
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello"), 0o600)
	srv := fakeServer(t, map[string]http.HandlerFunc{
		"POST /v1/sandboxes/sb1/processes": func(w http.ResponseWriter, r *http.Request) {
			var req serverapi.ProcessRequest
			json.NewDecoder(r.Body).Decode(&req)
			note(fmt.Sprintf("start %s pty=%v", req.Command, req.PTY != nil && req.PTY.Rows == 24))
			w.WriteHeader(201)
			fmt.Fprint(w, `{"id":"p1","pid":42,"command":"cat","pty":true}`)
		},
		"POST /v1/sandboxes/sb1/processes/{p}/stdin": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			note("stdin " + r.PathValue("p") + " " + string(b))
			w.WriteHeader(204)
		},
		"DELETE /v1/sandboxes/sb1/processes/{p}/stdin": func(w http.ResponseWriter, r *http.Request) { note("close"); w.WriteHeader(204) },
		"POST /v1/sandboxes/sb1/processes/{p}/signal": func(w http.ResponseWriter, r *http.Request) {
			var s serverapi.Signal
			json.NewDecoder(r.Body).Decode(&s)
			note(fmt.Sprintf("signal %d", s.Signal))
			w.WriteHeader(204)
		},
		"GET /v1/sandboxes/sb1/processes/{p}/output": func(w http.ResponseWriter, r *http.Request) {
			note("attach max=" + r.URL.Query().Get("max_output"))
			writeEvent(w, "stdout", `out`)
			writeEvent(w, "exit", `{"exit_code":137,"dropped":5}`)
		},
		"GET /v1/sandboxes/sb1/tree": func(w http.ResponseWriter, r *http.Request) {
			io.Copy(w, packTree(src))
		},
		"PUT /v1/sandboxes/sb1/tree": func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			note(fmt.Sprintf("tree %s %v", r.URL.Query().Get("path"), n > 0))
			w.WriteHeader(204)
		},
	})
	sb := connectFake(t, srv)
	ctx := context.Background()
	p, err := sb.StartProcess(ctx, ProcessRequest{Command: "cat", PTY: &TerminalSize{Rows: 24, Cols: 80}})
	if err != nil || p.ID != "p1" || p.PID != 42 {
		t.Fatalf("started %+v %v", p, err)
	}
	for _, err := range []error{p.Write(ctx, []byte("hi")), p.CloseStdin(ctx), p.Kill(ctx)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := p.Attach(ctx, 7, nil)
	if err != nil || string(res.Stdout) != "out" || res.ExitCode != 137 || res.Dropped != 5 {
		t.Fatalf("attach %+v %v", res, err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := sb.Download(ctx, "/src", dst, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(b) != "hello" {
		t.Fatalf("downloaded %q", b)
	}
	if err := sb.Upload(ctx, src, "/up", FileOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "start cat pty=true|stdin p1 hi|close|signal 9|attach max=7|tree /up true"
	if strings.Join(got, "|") != want {
		t.Fatalf("the server saw %q, want %q", strings.Join(got, "|"), want)
	}
}
