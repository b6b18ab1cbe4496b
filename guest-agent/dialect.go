package main

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// The agent answers each request in one of two dialects (see the protocol
// package): ours for clients that send protocol.ExtensionsHeader, and
// Quicksand's, field for field, for everyone else. Quicksand's published
// clients build their result types from exactly the fields its agent sends,
// so an extra field breaks them.

// extended reports whether the client asked for our dialect.
func extended(r *http.Request) bool { return r.Header.Get(protocol.ExtensionsHeader) == "1" }

// timeoutMessage is what Quicksand's agent puts on stderr when a command
// times out (its exit code is then -1, as ours is).
func timeoutMessage(c *command) string {
	return "Command timed out after " + strconv.FormatFloat(c.timeout.Seconds(), 'f', -1, 64) + " seconds"
}

// quicksandEvent is a stream event as Quicksand's agent writes it, plus
// the same name under "type": the seed document's format
// ({"type": "stdout", "data": ...}), which clients written from it read.
// Quicksand's clients read "stream" and ignore other keys in an event.
type quicksandEvent struct {
	Type     string  `json:"type"`
	Stream   string  `json:"stream"`
	Data     *string `json:"data,omitempty"`
	ExitCode *int    `json:"exit_code,omitempty"`
}

// encodeEvent writes ev in the request's dialect. In Quicksand's, bytes
// that are not UTF-8 arrive as U+FFFD (as from its agent), and an error
// after the stream began is the {"error": {"message"}} its clients read,
// with "type": "error" for a client of the seed's format.
func encodeEvent(ev protocol.Event, ext bool) []byte {
	var v any = ev
	if !ext {
		switch ev.Type {
		case protocol.EventError:
			v = map[string]any{"type": ev.Type, "error": map[string]string{"message": ev.Detail}}
		case protocol.EventStdout, protocol.EventStderr:
			v = quicksandEvent{Type: ev.Type, Stream: ev.Type, Data: &ev.Data}
		default:
			v = quicksandEvent{Type: ev.Type, Stream: ev.Type, ExitCode: ev.ExitCode}
		}
	}
	raw, _ := json.Marshal(v) // strings and ints cannot fail
	return raw
}
