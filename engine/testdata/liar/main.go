// Command liar is a hostile guest's agent, for tests (engine/hostile_test.go
// builds it and starts it in a real sandbox as guest root). It takes the
// real agent's place on its port (takeover.go) with the real token, so the
// host trusts it, and lies on the route its scenario names (lies_*.go);
// every other request it passes to a copy of the real agent that it runs
// on a loopback port of the guest, so the test can still run commands and
// check the guest while a lie is told.
//
// Its own routes, which need the token like every other:
//
//	GET  /ping            {"pong":true,"pid":<the liar's>,"liar":"<scenario name>"}
//	POST /liar/scenario   the body is the new scenario (as in the file)
//
// A scenario is text: its first line names a lie (a key of lies), the
// lines after it are that lie's arguments. An unknown name lies nowhere.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// controlPath sets the scenario while the liar runs.
const controlPath = "/liar/scenario"

// lie is the liar's answer to one route, in the scenario that names it.
type lie struct {
	route  string // the URL path it answers (internal/protocol)
	answer func(w http.ResponseWriter, r *http.Request, args []string)
}

// lies are the scenarios, by name: each lies_*.go adds its own in init.
var lies = map[string]lie{}

// eventLie answers route with an event stream that send writes.
func eventLie(route string, send func(w http.ResponseWriter, flush func() error)) lie {
	return lie{route, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		w.Header().Set("Content-Type", "text/event-stream")
		send(w, http.NewResponseController(w).Flush)
	}}
}

// endlessEvents writes the event format (one %q verb for a 32 KiB chunk)
// until the reader goes away.
func endlessEvents(format string) func(w http.ResponseWriter, flush func() error) {
	chunk := strings.Repeat("y", 32<<10)
	return func(w http.ResponseWriter, flush func() error) {
		for {
			if _, err := fmt.Fprintf(w, format, chunk); err != nil {
				return
			}
			flush()
		}
	}
}

// silentEvents holds the stream open and sends nothing.
func silentEvents(w http.ResponseWriter, flush func() error) {
	flush()
	<-make(chan struct{})
}

// realAgent passes a request on to the real agent behind the liar (for a
// lie that changes a request rather than its answer).
var realAgent http.Handler

type liar struct {
	mu       sync.Mutex
	scenario []string // name, then arguments
	backend  *httputil.ReverseProxy
}

func main() {
	scenarioFile := flag.String("scenario-file", "/run/liar/scenario", "file holding the first scenario")
	flag.Parse()
	raw, err := os.ReadFile(*scenarioFile)
	if err != nil {
		fail("reading the scenario: %v", err)
	}
	l := &liar{}
	l.set(string(raw))
	port, err := agentPort()
	if err != nil {
		fail("%v", err)
	}
	backend, err := startBackend()
	if err != nil {
		fail("starting the real agent behind the liar: %v", err)
	}
	l.backend = httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: backend})
	l.backend.FlushInterval = -1 // streams (events, process output) as they come
	realAgent = l.backend
	ln, muxPort, err := takeOver(port)
	if err != nil {
		fail("taking the agent's port: %v", err)
	}
	srv := &http.Server{Handler: l}
	if muxPort != nil {
		go l.serveMux(srv, muxPort)
	}
	fmt.Printf("liar: serving port %d as %q, the real agent behind on %s\n", port, l.name(), backend)
	err = srv.Serve(ln)
	fail("serving: %v", err)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "liar: "+format+"\n", args...)
	os.Exit(1)
}

func (l *liar) set(scenario string) {
	lines := strings.Split(strings.TrimRight(scenario, "\n"), "\n")
	l.mu.Lock()
	l.scenario = lines
	l.mu.Unlock()
}

func (l *liar) current() (string, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.scenario[0], l.scenario[1:]
}

func (l *liar) name() string { n, _ := l.current(); return n }

func (l *liar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != protocol.PathAuthenticate && !authorized(r) {
		w.Header().Set("Connection", "close")
		http.Error(w, `{"detail":"missing or wrong token"}`, http.StatusUnauthorized)
		return
	}
	name, args := l.current()
	switch {
	case r.URL.Path == protocol.PathPing:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"pong": true, "pid": os.Getpid(), "liar": name})
	case r.URL.Path == controlPath:
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		l.set(string(raw))
		fmt.Printf("liar: now %q\n", l.name())
		w.Write([]byte("{}"))
	case lies[name].route == r.URL.Path:
		fmt.Printf("liar: %s %s: lying (%s)\n", r.Method, r.URL, name)
		lies[name].answer(w, r, args)
	default:
		l.backend.ServeHTTP(w, r)
	}
}

// fwCfgTokenFile is where the guest reads the token its QEMU handed over.
const fwCfgTokenFile = "/sys/firmware/qemu_fw_cfg/by_name/" + protocol.FwCfgToken + "/raw"

// token is the one the real agent accepts now: kept in its token state
// (guest-agent/settings.go), or fw_cfg's while it is sealed.
func token() string {
	for _, p := range []string{"/run/quicksand/token", fwCfgTokenFile} {
		raw, _ := os.ReadFile(p)
		if t := strings.TrimSpace(string(raw)); len(t) >= 16 {
			return t
		}
	}
	return ""
}

func authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	t := token()
	return ok && t != "" && got == t
}

// agentPort is the agent's port in the guest, from the kernel command line.
func agentPort() (int, error) {
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return 0, err
	}
	for _, word := range strings.Fields(string(raw)) {
		if v, ok := strings.CutPrefix(word, protocol.CmdlinePort+"="); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("no %s= on the kernel command line", protocol.CmdlinePort)
}

// startBackend runs the real agent (init's binary) as a plain server on a
// loopback port, with the token it keeps, and waits until it listens.
func startBackend() (string, error) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := probe.Addr().String()
	probe.Close()
	_, port, _ := net.SplitHostPort(addr)
	// fw_cfg's token file as well: the agent accepts its token only while
	// that file holds what it held when the token was taken
	// (guest-agent/seal.go), and outside init it has no default path.
	cmd := exec.Command("/proc/1/exe", "-listen", "127.0.0.1", "-port", port,
		"-token-state", "/run/quicksand/token", "-fwcfg-token", fwCfgTokenFile, "-cmdline", "/proc/cmdline")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("it did not listen on %s within 10 s", addr)
}
