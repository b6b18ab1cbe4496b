package serverapi

import "github.com/quicksand-go/quicksand/internal/protocol"

// The code interpreter's routes (issue 29): runs in stateful code
// contexts, and the contexts themselves.
const (
	// PathCodeRun runs code (CodeRunRequest) and answers with its events
	// as Server-Sent Events.
	PathCodeRun = "/v1/sandboxes/{id}/code/run"
	// PathCodeContexts: POST creates a context (CodeContextOptions →
	// CodeContext), GET lists them (CodeContextList).
	PathCodeContexts = "/v1/sandboxes/{id}/code/contexts"
	// PathCodeContext: DELETE removes the context.
	PathCodeContext = "/v1/sandboxes/{id}/code/contexts/{context}"
	// PathCodeRestart gives the context fresh state.
	PathCodeRestart = "/v1/sandboxes/{id}/code/contexts/{context}/restart"
)

// A run's request, its events and a context are the agent's own shapes.
// The events above all: each is a CodeEvent's JSON, a result carrying its
// MIME bundle as Jupyter gives it, so that the engine's client decodes a
// server's run with the very code that decodes a local one (its result
// mapping, its callbacks and its caps): the two cannot drift apart, and
// curl users see Jupyter's bundle rather than a shape of this project's.
// A failure of the call itself, once the stream is open, is an event
// named EventError whose data is an Error, as in a command's stream; the
// code events have no SSE name (the code's own exception is a CodeEvent
// of type "error").
type (
	CodeRunRequest  = protocol.CodeRunRequest
	CodeEvent       = protocol.CodeEvent
	CodeResult      = protocol.CodeResult
	CodeError       = protocol.CodeError
	CodeContext     = protocol.CodeContext
	CodeContextList = protocol.CodeContextList
)

// CodeContextOptions is the body of a POST to PathCodeContexts: the
// engine's CodeContextOptions. (Not the agent's request, whose default
// flag is the engine's own business.)
type CodeContextOptions struct {
	Language string `json:"language,omitempty"`
	Cwd      string `json:"cwd,omitempty"`
}
