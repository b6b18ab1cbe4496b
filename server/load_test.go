package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// Fifty clients at once, each its own connection to the server, each
// running a hundred commands on one of two sandboxes: every result is
// right and no call fails.
func TestFiftyClientsAtOnce(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 2; i++ {
		var sb api.Sandbox
		s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{}, &sb)
		ids = append(ids, sb.ID)
	}
	const clients, commands = 50, 100
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb, err := engine.Connect(ctx, ids[c%len(ids)], engine.RemoteOptions{Server: s.base, APIKey: keyA})
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < commands; i++ {
				want := fmt.Sprintf("%d-%d", c, i)
				r, err := sb.Execute(ctx, engine.ExecRequest{Command: "echo " + want})
				if err != nil || strings.TrimSpace(string(r.Stdout)) != want {
					errs <- fmt.Errorf("client %d, command %d: %v %+v", c, i, err, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	took := time.Since(began)
	t.Logf("%d commands from %d clients in %v: %.0f a second", clients*commands, clients, took.Round(time.Millisecond), float64(clients*commands)/took.Seconds())
}

// A client that sends its request slowly, or never reads its answer,
// holds its own connection, never the server: others are answered
// meanwhile, and the slow ones are cut off.
func TestSlowClientsHoldOnlyThemselves(t *testing.T) {
	s := startServer(t)
	addr := strings.TrimPrefix(s.base, "http://")
	// Headers that never end: the server hangs up after its header
	// timeout (10 s), and answers others all along.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /v1/capacity HTTP/1.1\r\nHost: x\r\n")
	for i := 0; i < 3; i++ {
		s.must(http.StatusOK, "GET", "/v1/capacity", keyA, nil, nil)
	}
	slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	began := time.Now()
	line, _ := bufio.NewReader(slow).ReadString('\n')
	if waited := time.Since(began); waited > 25*time.Second || strings.Contains(line, "200") {
		t.Fatalf("a request whose headers never end: %q after %v", line, waited)
	}

	// A stream nobody reads: the command is held back (the agent's
	// channel pushes back), the server's memory is not the buffer, and
	// another client's calls go on.
	var sb api.Sandbox
	s.must(http.StatusCreated, "POST", "/v1/sandboxes", keyA, map[string]any{}, &sb)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"command":"yes abcdefghijklmnopqrstuvwxyz | head -c 2000000000"}`
	fmt.Fprintf(c, "POST /v1/sandboxes/%s/execute/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", sb.ID, keyA, len(body), body)
	time.Sleep(2 * time.Second) // the command runs and fills what the pipes hold
	var r api.ExecResult
	s.must(http.StatusOK, "POST", "/v1/sandboxes/"+sb.ID+"/execute", keyA, map[string]any{"command": "echo meanwhile"}, &r)
	if r.Stdout != "meanwhile\n" {
		t.Fatalf("another call meanwhile: %+v", r)
	}
	if rss := serverRSS(t, s); rss > 400<<20 {
		t.Fatalf("the server holds %d MiB for a stream nobody reads", rss>>20)
	}
}

// serverRSS is the server process's resident memory in bytes.
func serverRSS(t *testing.T, s *testServer) int64 {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, _ := strconv.ParseInt(f[1], 10, 64)
			return kib << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
