package engine

// The hostile guest: root in the guest replaces its agent with a liar
// (testdata/liar), which answers the host with the right token and lies on
// one route at a time; the tests check each promise on the host's side.
//
//	l := startLiar(t, sb, "tree-symlink-dir", hostFolder) // lie, then its arguments
//	l.tell(t, "tree-devices")                              // another lie, same liar
//	l.tell(t, "none")                                      // honest everywhere
//	l.log(t)                                               // what the liar printed
//
// Routes without a lie go to a copy of the real agent that the liar runs,
// so Execute and the file calls keep working (as long as the lie is not
// on their route). A lie is a few lines in testdata/liar/lies_*.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// liar is a liar that took a sandbox's agent's place.
type liar struct {
	sb  *Sandbox
	pid int // in the guest
}

const liarDir = "/run/liar"

// startLiar uploads the liar into sb (a sandbox of the test's own: the liar
// stays until the VM stops), starts it as guest root telling lie (with
// its arguments), and returns once the liar, not the agent, answers the
// host's /ping with the sandbox's token.
func startLiar(t *testing.T, sb *Sandbox, lie string, args ...string) *liar {
	t.Helper()
	ctx := context.Background()
	bin := guestProgram(t, "./testdata/liar", sb.img.Manifest.Arch)
	if err := sb.MakeDir(ctx, liarDir, FileOptions{Parents: true, Mode: 0o700}); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"liar": bin, "scenario": []byte(scenario(lie, args))} {
		if _, err := sb.WriteFile(ctx, liarDir+"/"+name, bytes.NewReader(content), FileOptions{Mode: 0o700}); err != nil {
			t.Fatalf("putting the liar in the guest: %v", err)
		}
	}
	r := run(t, sb, ExecRequest{Command: "setsid " + liarDir + "/liar -scenario-file " + liarDir + "/scenario </dev/null >" + liarDir + "/log 2>&1 & echo $!"})
	l := &liar{sb: sb}
	fmt.Sscan(string(r.Stdout), &l.pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ping, err := l.ping(); err == nil && ping.Liar != "" {
			if ping.Pid != l.pid {
				t.Fatalf("a liar answers as pid %d, the one started is %d", ping.Pid, l.pid)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the liar did not take the agent's place within 30 s; its log:\n%s", l.log(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	sb.client.Close() // connections kept to the real agent are cut: forget them
	return l
}

func scenario(lie string, args []string) string {
	return strings.Join(append([]string{lie}, args...), "\n") + "\n"
}

type liarPing struct {
	Pid  int    `json:"pid"`
	Liar string `json:"liar"` // the lie it tells; empty from the real agent
}

// ping asks the sandbox's port who answers, with the sandbox's token.
func (l *liar) ping() (liarPing, error) {
	var p liarPing
	resp, err := l.call(http.MethodGet, protocol.PathPing, "")
	if err == nil {
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
	}
	return p, err
}

func (l *liar) call(method, path, body string) (*http.Response, error) {
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", l.sb.port, path), strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+l.sb.Token())
	client := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err == nil && resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err = fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return resp, err
}

// tell makes the liar tell another lie ("none": none).
func (l *liar) tell(t *testing.T, lie string, args ...string) {
	t.Helper()
	resp, err := l.call(http.MethodPost, "/liar/scenario", scenario(lie, args))
	if err != nil {
		t.Fatalf("telling the liar %q: %v", lie, err)
	}
	resp.Body.Close()
}

// log is what the liar printed (read through the real agent behind it).
func (l *liar) log(t *testing.T) string {
	r, err := l.sb.Execute(context.Background(), ExecRequest{Command: "cat " + liarDir + "/log"})
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return string(r.Stdout)
}

// Guest root takes the agent's mux port and sends junk on it: the engine
// drops the link and carries its calls over the port forward, in time.
func TestALyingAgentsMuxPort(t *testing.T) {
	t.Setenv(TransportEnv, "mux")
	sb := startSandbox(t, Config{})
	if err := sb.muxLink.Wait(context.Background()); err != nil {
		t.Fatalf("no mux link to begin with: %v", err)
	}
	l := startLiar(t, sb, "mux-junk")
	defer l.log(t)
	deadline := time.Now().Add(10 * time.Second)
	for sb.muxLink.Wait(context.Background()) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the engine kept a link that carries junk")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		r, err := sb.Execute(ctx, ExecRequest{Command: fmt.Sprintf("echo %d", i)})
		cancel()
		if err != nil || string(r.Stdout) != fmt.Sprintf("%d\n", i) {
			t.Fatalf("execute %d with junk on the mux port: %v %+v", i, err, r)
		}
	}
}
