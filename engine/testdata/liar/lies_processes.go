package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Lies about background processes: the event stream of their output (GET
// /processes/output, Server-Sent Events; the real one is
// guest-agent/processes.go) and their list (GET /processes).
func init() {
	events := func(send func(w http.ResponseWriter, flush func() error)) lie {
		return eventLie(protocol.PathProcessOutput, send)
	}
	chunk := strings.Repeat("y", 32<<10)
	// Output without end, and never an exit.
	lies["output-endless"] = events(endlessEvents("data: {\"stream\":\"stdout\",\"data\":%q}\n\n"))
	// No output and no exit: the stream stays open, silent.
	lies["output-silent"] = events(silentEvents)
	// An event that is not JSON.
	lies["output-malformed"] = events(func(w http.ResponseWriter, flush func() error) {
		fmt.Fprint(w, "data: {\"stream\":\"stdout\",\"data\":\"ok\"}\n\ndata: {\"stream\":\"stdout\",\"data\":\n\n")
	})
	// One event line without end (no newline ever comes).
	lies["output-long-line"] = events(func(w http.ResponseWriter, flush func() error) {
		fmt.Fprint(w, "data: {\"stream\":\"stdout\",\"data\":\"")
		for {
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
		}
	})
	// Events of another kind and for another process: what the host does
	// not know it must pass over or refuse, and an exit without a code.
	lies["output-foreign"] = events(func(w http.ResponseWriter, flush func() error) {
		fmt.Fprint(w, "data: {\"type\":\"dropped\",\"dropped\":-5}\n\n")
		fmt.Fprint(w, "data: {\"type\":\"started\",\"id\":\"another\",\"pid\":1}\n\n")
		fmt.Fprint(w, "data: {\"stream\":\"stdout\",\"id\":\"another\",\"data\":\"theirs\"}\n\n")
		fmt.Fprint(w, "data: {\"type\":\"exit\"}\n\n")
	})
	// A list without end.
	lies["processes-endless"] = lie{protocol.PathProcesses, func(w http.ResponseWriter, r *http.Request, _ []string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"processes":[`)
		for {
			if _, err := fmt.Fprintf(w, `{"id":"p","pid":1,"command":%q},`, chunk); err != nil {
				return
			}
		}
	}}
}
