package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/quicksand-go/quicksand/internal/mux"
	"github.com/quicksand-go/quicksand/internal/protocol"
)

// The engine's own transport (issue 31): the same HTTP API, on streams of
// internal/mux over the virtio-serial port protocol.MuxPortName, so that
// the engine's calls pass no guest network stack. The HTTP server is the
// one that serves the port forward: the token check, the seal and every
// handler are the same on both. Each engine says hello first, which drops
// whatever streams a VM frozen and resumed under another engine had; a
// server that starts (the agent restarted) says so, which ends the calls
// the engine had on its predecessor.

// serveMuxPort serves srv on the port, if the VM has one.
func serveMuxPort(srv *http.Server) {
	f := openPort(protocol.MuxPortName)
	if f == nil {
		return
	}
	err := srv.Serve(mux.Server(mux.NewHostPort(f, protocol.MuxPortName)))
	fmt.Fprintf(os.Stderr, "quicksand-agent: serving %s: %v\n", protocol.MuxPortName, err)
}
