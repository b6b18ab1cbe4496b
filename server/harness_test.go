package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run the server as users run it: the quicksand binary, a
// process of its own, booting real VMs.
var quicksandBin string

func TestMain(m *testing.M) {
	if sock := os.Getenv("QS_TEST_DIAL"); sock != "" {
		// Run as another user by TestUnixSocketIsTheOwnersOnly: say what
		// connecting to the socket gives.
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			fmt.Println("connected")
		} else {
			fmt.Println(err)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "quicksand-server-test-")
	if err != nil {
		panic(err)
	}
	quicksandBin = filepath.Join(dir, "quicksand")
	build := exec.Command("go", "build", "-o", quicksandBin, "../cmd/quicksand")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		panic("building quicksand: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Two tenants' keys, and a key of nobody's.
const (
	keyA     = "tenant-a-0123456789abcdef"
	keyB     = "tenant-b-0123456789abcdef"
	wrongKey = "tenant-x-0123456789abcdef"
)

// lockedLog is the server's log, written by the goroutine that reads it
// and read by the test.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) WriteString(s string) {
	l.mu.Lock()
	l.buf.WriteString(s)
	l.mu.Unlock()
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testServer is a running `quicksand serve`.
type testServer struct {
	t      *testing.T
	cmd    *exec.Cmd
	args   []string // the command line, the same for every restart
	base   string   // http://host:port, or http://unix for a socket
	client *http.Client
	log    *lockedLog
	data   string
}

// startServer runs quicksand serve with the two tenants' keys on
// 127.0.0.1:0 (or the --listen among args) and waits until it listens.
// It is stopped with SIGTERM when the test ends.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte("# the test's tenants\n"+keyA+"\n"+keyB+" # b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, log: &lockedLog{}, data: filepath.Join(dir, "data")}
	s.args = append([]string{"serve", "--keys", keys, "--data", s.data}, args...)
	if !strings.Contains(strings.Join(args, " "), "--listen") {
		s.args = append(s.args, "--listen", "127.0.0.1:0")
	}
	t.Cleanup(s.stop)
	s.launch()
	return s
}

// restart stops the server with SIGTERM and starts it again with the same
// keys, data folder and options (on a new port).
func (s *testServer) restart() {
	s.t.Helper()
	s.stop()
	s.log.WriteString("--- restarted ---\n")
	s.launch()
}

// launch starts the server's process and waits until it listens.
func (s *testServer) launch() {
	t := s.t
	t.Helper()
	s.cmd = exec.Command(quicksandBin, s.args...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		listening := regexp.MustCompile(`msg=serving address=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			s.log.WriteString(sc.Text() + "\n")
		}
	}()
	select {
	case a := <-addr:
		s.connectTo(a)
	case <-time.After(90 * time.Second):
		t.Fatalf("the server did not listen within 90 s:\n%s", s.log)
	}
}

func (s *testServer) connectTo(addr string) {
	if strings.HasPrefix(addr, "/") {
		s.base = "http://unix"
		s.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}}}
		return
	}
	s.base = "http://" + addr
	s.client = &http.Client{}
}

// stop sends SIGTERM and waits for the server to exit.
func (s *testServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			s.t.Errorf("the server exited with %v:\n%s", err, s.log)
		}
	case <-time.After(120 * time.Second):
		s.cmd.Process.Kill()
		s.t.Errorf("the server did not stop within 120 s of SIGTERM:\n%s", s.log)
	}
}

// do sends a request with key ("" for none) and a JSON body (nil for
// none; []byte as it is) and returns the status and the body.
func (s *testServer) do(method, path, key string, body any) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.base+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// must is do that fails the test unless the status is want, and decodes
// a JSON answer into v (if not nil).
func (s *testServer) must(want int, method, path, key string, body, v any) []byte {
	s.t.Helper()
	status, out := s.do(method, path, key, body)
	if status != want {
		s.t.Fatalf("%s %s: %d %s, want %d", method, path, status, out, want)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, path, err, out)
		}
	}
	return out
}
