// Package serverapi holds what the server (server/) and its client (the
// engine's remote sandboxes) exchange: the routes and the JSON bodies of
// docs/server-openapi.yaml, written once for both sides.
package serverapi

import (
	"net/netip"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Version is the API's version, the first element of every path.
const Version = "v1"

// The routes, as net/http patterns (Go 1.22) without the method. The
// server registers them and a test checks them against the OpenAPI file.
const (
	PathHealth      = "/v1/health"
	PathCapacity    = "/v1/capacity"
	PathMetrics     = "/v1/metrics"
	PathSandboxes   = "/v1/sandboxes"
	PathSandbox     = "/v1/sandboxes/{id}"
	PathTimeout     = "/v1/sandboxes/{id}/timeout"
	PathExecute     = "/v1/sandboxes/{id}/execute"
	PathStream      = "/v1/sandboxes/{id}/execute/stream"
	PathFiles       = "/v1/sandboxes/{id}/files"
	PathFileOp      = "/v1/sandboxes/{id}/files/op"
	PathTree        = "/v1/sandboxes/{id}/tree"
	PathProcesses   = "/v1/sandboxes/{id}/processes"
	PathOutput      = "/v1/sandboxes/{id}/processes/{process}/output"
	PathStdin       = "/v1/sandboxes/{id}/processes/{process}/stdin"
	PathSignal      = "/v1/sandboxes/{id}/processes/{process}/signal"
	PathResize      = "/v1/sandboxes/{id}/processes/{process}/resize"
	PathCheckpoint  = "/v1/sandboxes/{id}/checkpoint"
	PathRevert      = "/v1/sandboxes/{id}/revert"
	PathSave        = "/v1/sandboxes/{id}/save"
	PathNetwork     = "/v1/sandboxes/{id}/network"
	DefaultListen   = "127.0.0.1:7070"
	DefaultIdleTime = 300 // seconds an idle sandbox lives unless its timeout says otherwise
)

// Error is every failure's body: {"error": {...}}.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody names the kind (snake_case) and its number, the C ABI's
// QS_ERR_* code, which the client turns back into the engine's Kind.
type ErrorBody struct {
	Kind    string `json:"kind"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Health answers PathHealth.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// Capacity answers PathCapacity.
type Capacity struct {
	Sandboxes       int    `json:"sandboxes"`
	MemoryTotal     int64  `json:"memory_total"`
	MemoryAvailable int64  `json:"memory_available"`
	Accelerator     string `json:"accelerator"`
}

// Mount is a host folder of the server's host, under one of its mount
// roots.
type Mount struct {
	Host     string `json:"host"`
	Guest    string `json:"guest"`
	ReadOnly bool   `json:"readonly,omitempty"`
}

// CreateSandbox is the body of a create. Memory is "512M", "2G" or MiB as
// a number (any JSON value: the server parses it as the engine does).
type CreateSandbox struct {
	Image       string            `json:"image,omitempty"`
	Memory      any               `json:"memory,omitempty"`
	CPUs        int               `json:"cpus,omitempty"`
	Network     string            `json:"network,omitempty"`
	ColdBoot    bool              `json:"cold_boot,omitempty"`
	BootTimeout float64           `json:"boot_timeout,omitempty"`
	Mounts      []Mount           `json:"mounts,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// NetworkPolicy narrows network "full" (then the default) to what it
	// allows.
	NetworkPolicy *NetworkPolicy `json:"network_policy,omitempty"`
	// Timeout is the idle time in seconds after which the server stops the
	// sandbox: nil for the server's default, 0 for never.
	Timeout *float64 `json:"timeout,omitempty"`
}

// Sandbox describes one sandbox (create, get, list, timeout).
type Sandbox struct {
	ID          string            `json:"id"`
	Metadata    map[string]string `json:"metadata"`
	Timeout     float64           `json:"timeout"`
	Image       string            `json:"image"`
	Arch        string            `json:"arch"`
	Accelerator string            `json:"accelerator"`
	Running     bool              `json:"running"`
	Created     string            `json:"created"`
	// Lost says why a sandbox is gone: the server could not keep it
	// across a restart (it had mounts, its save or resume failed). Only
	// get, list and delete take a lost sandbox.
	Lost string `json:"lost,omitempty"`
}

// SandboxList answers a list.
type SandboxList struct {
	Sandboxes []Sandbox `json:"sandboxes"`
}

// NetworkPolicy is a create's network_policy and the body of a PUT to
// PathNetwork (null there: none). Its fields are engine.NetworkPolicy's,
// in the same order and types, so that each converts to the other.
type NetworkPolicy struct {
	AllowOut []string                `json:"allow_out,omitempty"`
	DenyOut  []string                `json:"deny_out,omitempty"`
	Hosts    map[string][]netip.Addr `json:"hosts,omitempty"`
}

// NetworkStats answers a GET of PathNetwork: engine.NetworkStats.
type NetworkStats struct {
	Allowed      uint64 `json:"allowed"`
	Dropped      uint64 `json:"dropped"`
	NamesAllowed uint64 `json:"names_allowed"`
	NamesRefused uint64 `json:"names_refused"`
}

// SetTimeout is the body of PathTimeout.
type SetTimeout struct {
	Timeout float64 `json:"timeout"`
}

// ExecRequest is the body of PathExecute and PathStream.
type ExecRequest struct {
	Command   string            `json:"command"`
	Timeout   float64           `json:"timeout,omitempty"`
	Cwd       string            `json:"cwd,omitempty"`
	Shell     string            `json:"shell,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Stdin     string            `json:"stdin,omitempty"`
	StdinB64  string            `json:"stdin_b64,omitempty"`
	User      string            `json:"user,omitempty"`
	MaxOutput int64             `json:"max_output,omitempty"`
}

// ExecResult is a command's end: PathExecute's answer (with its output)
// and a stream's exit event (without).
type ExecResult struct {
	Stdout          string  `json:"stdout,omitempty"`
	StdoutB64       string  `json:"stdout_b64,omitempty"`
	Stderr          string  `json:"stderr,omitempty"`
	StderrB64       string  `json:"stderr_b64,omitempty"`
	ExitCode        int     `json:"exit_code"`
	TimedOut        bool    `json:"timed_out"`
	Duration        float64 `json:"duration"`
	StdoutTruncated bool    `json:"stdout_truncated,omitempty"`
	StderrTruncated bool    `json:"stderr_truncated,omitempty"`
	Dropped         int64   `json:"dropped,omitempty"`
}

// The events of a stream.
const (
	EventStdout = "stdout"
	EventStderr = "stderr"
	EventExit   = "exit"
	EventError  = "error"
)

// FileOp and FileOpResult are the agent's own (internal/protocol): the
// server hands the operation to the engine, whose answer it gives back in
// the same shape.
type (
	FileOp       = protocol.FileOp
	FileInfo     = protocol.FileInfo
	FileOpResult = protocol.FileOpResult
	FileWritten  = protocol.FileWritten
)

// The process bodies are the agent's own too: the server hands them to the
// engine and back in the same shapes.
type (
	ProcessRequest = protocol.ProcessRequest
	TerminalSize   = protocol.TerminalSize
	ProcessInfo    = protocol.ProcessInfo
	ProcessList    = protocol.ProcessList
)

// Signal is the body of PathSignal (PathResize's is a TerminalSize).
type Signal struct {
	Signal int `json:"signal"`
}

// Tag is the body of a checkpoint or revert.
type Tag struct {
	Tag string `json:"tag"`
}

// Name is the body of a save and its answer.
type Name struct {
	Name string `json:"name"`
}
