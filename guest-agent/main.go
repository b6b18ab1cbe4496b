// Command quicksand-agent runs inside the guest VM and runs commands for the
// host over HTTP (JSON answers, or Server-Sent Events for streaming).
//
// Inside a VM it is started as PID 1 by the initrd: it then forks itself as
// the server and stays behind as init, reaping orphans and restarting the
// server should it die. On the host (tests), flags stand in for the kernel
// command line.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// exitBadSettings tells init not to restart the server: it would fail again.
const exitBadSettings = 2

// childEnv marks the server process that init forked.
const childEnv = "QUICKSAND_AGENT_CHILD"

func main() {
	if os.Getpid() == 1 && os.Getenv(childEnv) == "" {
		runInit()
		return
	}
	os.Exit(serve(os.Args[1:]))
}

func serve(args []string) int {
	guest := os.Getenv(childEnv) != ""
	s, err := loadSettings(args, guest)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand-agent: %v\n", err)
		return exitBadSettings
	}
	if guest {
		tuneForGuest(&s)
		tuneScheduler()
		warmResumeCodecs()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.listen, strconv.Itoa(s.port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand-agent: listening: %v\n", err)
		return 1
	}
	handler := newServer(s, guest)
	switch {
	case s.serialSocket != "":
		sln, err := net.Listen("unix", s.serialSocket)
		if err != nil {
			fmt.Fprintf(os.Stderr, "quicksand-agent: listening on %s: %v\n", s.serialSocket, err)
			return 1
		}
		go handler.serveFramesOn(sln)
	case guest:
		go handler.serveSerialPort()
	}
	// The host watches the console for this exact line.
	fmt.Printf("\n%s port=%d\n", protocol.ReadyLine, s.port)
	srv := &http.Server{
		Handler: handler,
		// Every local user on the host can open connections to the port
		// forward: one that never finishes its headers, or sits idle, must
		// not hold a connection for ever. Idle ones last longer than the
		// engine keeps them (90 s), so the engine closes first and never
		// sends a request on a connection the agent is closing.
		ReadHeaderTimeout: s.headerTimeout,
		IdleTimeout:       10 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       withConnSeal,
	}
	if guest {
		go serveMuxPort(srv)
	}
	err = srv.Serve(ln)
	fmt.Fprintf(os.Stderr, "quicksand-agent: serving: %v\n", err)
	return 1
}
