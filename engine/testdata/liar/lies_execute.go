package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Lies about commands: the answer to POST /execute (JSON) and the events
// of POST /execute_stream (the real ones are guest-agent/execute.go). The
// over-cap lies send four times the max_output the host asked for, in
// the answer itself (never over the output channel).
func init() {
	asked := func(r *http.Request) int64 {
		var req protocol.ExecRequest
		json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req)
		if req.MaxOutput <= 0 {
			return protocol.DefaultMaxOutput
		}
		return req.MaxOutput
	}
	lies["execute-over-cap"] = lie{protocol.PathExecute, func(w http.ResponseWriter, r *http.Request, _ []string) {
		n := 4 * asked(r)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(protocol.ExecResult{Stdout: strings.Repeat("o", int(n)), Stderr: strings.Repeat("e", int(n))})
	}}
	lies["execute-stream-over-cap"] = lie{protocol.PathExecuteStream, func(w http.ResponseWriter, r *http.Request, _ []string) {
		n := 4 * asked(r)
		w.Header().Set("Content-Type", "text/event-stream")
		for sent := int64(0); sent < n; sent += 1000 {
			fmt.Fprintf(w, "data: {\"stream\":\"stdout\",\"data\":%q}\n\n", strings.Repeat("o", 1000))
		}
		fmt.Fprint(w, "data: {\"type\":\"exit\",\"exit_code\":0}\n\n")
	}}
	// An answer without end.
	lies["execute-endless"] = lie{protocol.PathExecute, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"stdout":"`)
		chunk := strings.Repeat("o", 64<<10)
		for {
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
		}
	}}
	lies["execute-junk"] = lie{protocol.PathExecute, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		fmt.Fprint(w, `{"stdout":"ok","exit_code":"zero"`)
	}}
	lies["execute-stream-junk"] = lie{protocol.PathExecuteStream, func(w http.ResponseWriter, _ *http.Request, _ []string) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"stream\":\"stdout\",\"data\":\"ok\"}\n\ndata: [1,2\n\n")
	}}
}
