package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Lies about a code run: its event stream (POST /code/run, Server-Sent
// Events; the real one is guest-agent/code.go) and the contexts' list.
func init() {
	events := func(send func(w http.ResponseWriter, flush func() error)) lie {
		return eventLie(protocol.PathCodeRun, send)
	}
	chunk := strings.Repeat("y", 32<<10)
	// Results without end, and never the end event.
	lies["code-endless"] = events(endlessEvents("data: {\"type\":\"result\",\"result\":{\"data\":{\"text/plain\":%q}}}\n\n"))
	// No event at all, the stream held open.
	lies["code-silent"] = events(silentEvents)
	// An event that is not JSON, after a good one.
	lies["code-malformed"] = events(func(w http.ResponseWriter, flush func() error) {
		fmt.Fprint(w, "data: {\"type\":\"stdout\",\"text\":\"ok\"}\n\ndata: {\"type\":\"result\",\"result\":\n\n")
	})
	// Events of the wrong shape: a result without its bundle, an error
	// without its body, a bundle whose formats are not text, an unknown
	// type; then the stream ends without the end event.
	lies["code-odd"] = events(func(w http.ResponseWriter, flush func() error) {
		fmt.Fprint(w, "data: {\"type\":\"result\"}\n\n")
		fmt.Fprint(w, "data: {\"type\":\"error\"}\n\n")
		fmt.Fprint(w, "data: {\"type\":\"result\",\"result\":{\"data\":{\"text/plain\":5,\"image/png\":[1,2],\"application/json\":{\"a\":1}}}}\n\n")
		fmt.Fprint(w, "data: {\"type\":\"exit\",\"exit_code\":0}\n\n")
	})
	// One event line without end.
	lies["code-long-line"] = events(func(w http.ResponseWriter, flush func() error) {
		fmt.Fprint(w, "data: {\"type\":\"stdout\",\"text\":\"")
		for {
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
		}
	})
	// A context list without end.
	lies["code-contexts-endless"] = lie{protocol.PathCodeContexts, func(w http.ResponseWriter, r *http.Request, _ []string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"contexts":[`)
		for {
			if _, err := fmt.Fprintf(w, `{"id":%q,"language":"python","cwd":"/"},`, chunk); err != nil {
				return
			}
		}
	}}
}
