// Package protocol holds the wire format shared by the guest agent (server)
// and the engine (client). The agent speaks two dialects of it:
//
//   - Quicksand's, to any client that does not send ExtensionsHeader:
//     exactly the fields and events Quicksand's own agent sends (its
//     published clients reject anything more), its stdin streaming, its user
//     endpoints, over HTTP or over its virtio-serial port (serial.go).
//   - Ours, to clients that send ExtensionsHeader (our engine): the same
//     plus timed_out, exact bytes for output that is not UTF-8, truncation
//     flags, the output channel, and 400s for requests that cannot start.
//
// docs/protocol.md lists what differs between the two on purpose.
package protocol

// Endpoints served by the guest agent.
const (
	PathAuthenticate  = "/authenticate"
	PathPing          = "/ping"
	PathExecute       = "/execute"
	PathExecuteStream = "/execute_stream"
	// PathStdin feeds a streaming command's stdin (StdinRequest).
	PathStdin = "/stdin"
	// PathCancel kills a streaming command by its stdin id (CancelRequest).
	PathCancel = "/cancel"
	// PathCreateUser and PathDeleteUser manage guest accounts (UserRequest).
	PathCreateUser = "/create_user"
	PathDeleteUser = "/delete_user"
	// PathResume is this project's extension: the host tells an agent that
	// its VM was resumed from a snapshot (see ResumeRequest).
	PathResume = "/resume"
	// File operations, this project's extension (docs/protocol.md, "Files"):
	// a file's bytes go as the raw body of PathFileWrite and PathFileRead, a
	// tree's as a tar stream in PathTreeWrite and PathTreeRead, the rest as
	// a FileOp.
	PathFileWrite = "/files/write"
	PathFileRead  = "/files/read"
	PathTreeWrite = "/files/untar"
	PathTreeRead  = "/files/tar"
	PathFileOp    = "/files/op"

	// PathMountConnect turns its connection into a mount's 9P transport
	// (101 Switching Protocols, Upgrade: MountUpgrade), held under ?id until
	// PathMount names it; the host serves the folder on its end.
	PathMountConnect = "/mounts/connect"
	// PathMount mounts a connection made by PathMountConnect (MountRequest).
	PathMount = "/mounts/add"
	// PathUnmount unmounts a guest path (UnmountRequest).
	PathUnmount = "/mounts/remove"
)

// Background processes (docs/protocol.md, "Processes"): started by one call,
// they outlive it and the connection; their output is kept in the guest
// (the last ProcessOutputKept bytes) for whoever attaches.
const (
	// PathProcesses: POST starts one (ProcessRequest → ProcessStarted), GET
	// lists those that run (ProcessList).
	PathProcesses = "/processes"
	// PathProcessOutput?id=&from= streams the output from byte from (0:
	// the start, as far as it is kept) as events, then the exit event.
	PathProcessOutput = "/processes/output"
	// PathProcessStdin?id=[&close=1]: the raw body goes to the process's
	// stdin (then it is closed, with close).
	PathProcessStdin = "/processes/stdin"
	// PathProcessSignal: ProcessSignal.
	PathProcessSignal = "/processes/signal"
	// PathProcessResize: ProcessResize (processes on a terminal only).
	PathProcessResize = "/processes/resize"
)

// ProcessOutputKept is how many bytes of a process's output (both streams
// together) the guest keeps for attaching; older output is dropped, and an
// attach from the start is told how much with an EventDropped first.
const ProcessOutputKept = 4 << 20

// EventDropped opens a process's output stream when output from before the
// requested offset was no longer kept: Dropped says how many bytes.
const EventDropped = "dropped"

// ProcessRequest is the body of POST PathProcesses.
type ProcessRequest struct {
	Command string            `json:"command"`
	Cwd     string            `json:"cwd,omitempty"`
	Shell   string            `json:"shell,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	User    string            `json:"user,omitempty"`
	// PTY runs the process on a pseudo-terminal of that size: stdout and
	// stderr are one stream (stdout), and stdin is the terminal's input.
	PTY *TerminalSize `json:"pty,omitempty"`
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Rows int `json:"rows"`
	Cols int `json:"cols"`
}

// ProcessStarted answers POST PathProcesses.
type ProcessStarted struct {
	ID  string `json:"id"`
	PID int    `json:"pid"`
}

// ProcessInfo describes a process in ProcessList.
type ProcessInfo struct {
	ID      string `json:"id"`
	PID     int    `json:"pid"`
	Command string `json:"command"`
	PTY     bool   `json:"pty,omitempty"`
}

// ProcessList answers GET PathProcesses: the processes that still run.
type ProcessList struct {
	Processes []ProcessInfo `json:"processes"`
}

// ProcessSignal is the body of PathProcessSignal: Signal (1 to 64) goes to
// the process's whole process group.
type ProcessSignal struct {
	ID     string `json:"id"`
	Signal int    `json:"signal"`
}

// ProcessResize is the body of PathProcessResize.
type ProcessResize struct {
	ID string `json:"id"`
	TerminalSize
}

// MountUpgrade is the protocol a mount's connection switches to.
const MountUpgrade = "9p2000.L"

// MountMessageSize is the 9P msize a mount uses: the largest message the
// host's side takes.
const MountMessageSize = 512 << 10

// MountRequest is the body of PathMount.
type MountRequest struct {
	// ID names the connection PathMountConnect holds.
	ID   string `json:"id"`
	Path string `json:"path"`
	// ReadOnly mounts read-only in the guest too (the host enforces it
	// whatever the guest does).
	ReadOnly bool `json:"readonly,omitempty"`
}

// UnmountRequest is the body of PathUnmount.
type UnmountRequest struct {
	Path string `json:"path"`
	// Force cuts the mount off without a word to the host: after a revert
	// its connection belongs to a state that is gone.
	Force bool `json:"force,omitempty"`
}

// ExtensionsHeader, sent with value "1", asks the agent for our dialect
// (see the package comment). Clients that do not send it get answers shaped
// exactly as Quicksand's agent shapes them.
const ExtensionsHeader = "X-Quicksand-Go"

// CapabilityStdinStreaming is announced by /authenticate: the agent takes
// stdin_id on /execute_stream and serves /stdin and /cancel.
const CapabilityStdinStreaming = "stdin_streaming"

// CapabilitySealed is announced by /authenticate: the agent ties its token
// to the QEMU that handed it over (its fw_cfg file FwCfgToken). Resumed in
// another QEMU, it refuses everything but a /resume whose bearer token is
// the one in the new QEMU's fw_cfg, so a VM resumed from a template or a
// save accepts nothing from whoever read the old token from guest RAM. The
// engine makes templates and saves only of agents that announce it.
const CapabilitySealed = "sealed_by_qemu"

// AgentPortName is the virtio-serial port on which the agent also serves
// Quicksand's framed transport (4-byte big-endian length, then JSON).
const AgentPortName = "quicksand.agent.0"

// MuxPortName is the virtio-serial port on which the agent serves its
// HTTP API over internal/mux streams: the engine's transport beside the
// port forward, with no guest network stack on the way (issue 31).
const MuxPortName = "quicksand.mux"

// CapabilityMux is announced by /authenticate: the agent serves its API on
// MuxPortName when the VM has that port.
const CapabilityMux = "mux_port"

// Kernel command line keys the agent reads its settings from. Our engine
// puts only the port there: the command line of QEMU is readable by every
// local user, so the token goes in FwCfgToken instead. The agent still
// reads CmdlineToken, for engines that use it (Quicksand's).
const (
	CmdlineToken = "quicksand_token"
	CmdlinePort  = "quicksand_port"
)

// FwCfgToken is the name of the QEMU firmware config file that carries the
// agent's token (QEMU's -fw_cfg name=...,file=...; in the guest
// /sys/firmware/qemu_fw_cfg/by_name/<name>/raw, readable by root only).
const FwCfgToken = "opt/quicksand/token"

// ReadyLine is printed by the agent on the console, alone on a line, once it
// listens. The host watches the serial console for it.
const ReadyLine = "QUICKSAND_AGENT_READY"

// InitStartedLine is printed on the console by the initrd's /init as its
// first act (build/init): the kernel has booted. The host times boot
// phases by it.
const InitStartedLine = "quicksand-init: started"

// DefaultTimeoutSeconds is the command timeout when a request gives none.
const DefaultTimeoutSeconds = 30

// DefaultMaxOutput is the default cap on the bytes /execute keeps per
// stream: in the guest when the output comes in the answer (the agent
// lowers it to fit guest memory), on the host when it comes over the output
// channel.
const DefaultMaxOutput = 256 << 20

// ExecRequest is the body of /execute and /execute_stream. Unknown fields are
// ignored so that newer clients can talk to older agents.
type ExecRequest struct {
	Command string `json:"command"`
	// Timeout in seconds; nil or 0 means DefaultTimeoutSeconds.
	Timeout *float64          `json:"timeout,omitempty"`
	Cwd     string            `json:"cwd,omitempty"`
	Shell   string            `json:"shell,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// User, if set, runs the command as this guest user (a name or a
	// numeric uid) with its groups, HOME, USER and LOGNAME; a user the
	// guest does not know is a 400, never a run as root.
	User  string `json:"user,omitempty"`
	Stdin string `json:"stdin,omitempty"`
	// StdinB64 is stdin as base64, for input that is not text. It wins over Stdin.
	StdinB64 string `json:"stdin_b64,omitempty"`
	// MaxOutput caps the bytes /execute keeps per stream (0: the agent's
	// default). /execute_stream never buffers, so it ignores the cap.
	MaxOutput int64 `json:"max_output,omitempty"`
	// OutputChannel, when not 0, asks the agent to send the output over the
	// output channel (frame.go) under this call id, if it can. The answer
	// says whether it did (ChannelBytes).
	OutputChannel uint64 `json:"output_channel,omitempty"`
	// StdinID, on /execute_stream, keeps the command's stdin open to
	// /stdin calls that name this id; the stream starts with a ready event
	// once they may begin (Quicksand's stdin streaming).
	StdinID string `json:"stdin_id,omitempty"`
	// Exclusive refuses every other command (503) while this one runs, as
	// Quicksand's agent does for the sync before a save.
	Exclusive bool `json:"exclusive,omitempty"`
}

// ExecResult is the body /execute answers with.
//
// Stdout and Stderr are always valid UTF-8 text (invalid bytes replaced by
// U+FFFD) for clients that only know text. When a stream was not valid UTF-8,
// its exact bytes are also given in StdoutB64/StderrB64 (standard base64);
// a client that wants bytes prefers those fields when present.
type ExecResult struct {
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	ExitCode        int    `json:"exit_code"`
	TimedOut        bool   `json:"timed_out"`
	StdoutB64       string `json:"stdout_b64,omitempty"`
	StderrB64       string `json:"stderr_b64,omitempty"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`
	// ChannelBytes is set when the output went over the output channel.
	ChannelBytes *ChannelCounts `json:"channel_bytes,omitempty"`
}

// Event types on /execute_stream.
const (
	EventStdout = "stdout"
	EventStderr = "stderr"
	EventExit   = "exit"
	// EventError ends a stream that failed after it began (for example the
	// agent could not read the command's output). Its Detail says why.
	EventError = "error"
	// EventReady opens a stream that has a stdin id: /stdin may start.
	EventReady = "ready"
)

// Event is the JSON data of one Server-Sent Event on /execute_stream.
//
// The seed protocol names the discriminator "type"; Quicksand's own agent
// writes "stream". The agent writes "type" in our dialect and "stream" in
// Quicksand's; readers accept either.
type Event struct {
	Type   string `json:"type,omitempty"`
	Stream string `json:"stream,omitempty"`
	// Data is the chunk as text. A chunk that is not valid UTF-8 also carries
	// its exact bytes in DataB64.
	Data     string `json:"data,omitempty"`
	DataB64  string `json:"data_b64,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// Dropped, on EventDropped, is how many bytes of output were no longer
	// kept.
	Dropped int64  `json:"dropped,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// ChannelBytes, on the exit event, is set when the output went over the
	// output channel.
	ChannelBytes *ChannelCounts `json:"channel_bytes,omitempty"`
}

// Kind returns the event's discriminator, whichever field carried it.
func (e *Event) Kind() string {
	if e.Type != "" {
		return e.Type
	}
	return e.Stream
}

// ErrorBody is the body of every 4xx/5xx answer.
type ErrorBody struct {
	Detail string `json:"detail"`
}

// PingResult is the body /ping answers with.
type PingResult struct {
	Pong bool `json:"pong"`
	Pid  int  `json:"pid"`
}

// ResumeRequest is the body of /resume, sent with the current token right
// after a VM is resumed from a template, a checkpoint or a save. The agent
// takes Token as its only token from then on (the old one is refused), sets
// the guest's clock, and mixes Seed into the kernel's RNG and reseeds it,
// so that sandboxes resumed from one snapshot share neither secrets, clock
// nor random numbers.
type ResumeRequest struct {
	Token        string `json:"token"`
	SeedB64      string `json:"seed_b64"`
	TimeUnixNano int64  `json:"time_unix_nano"`
	// ChannelSync, when not 0, asks the agent to write a sync frame with
	// this nonce on the output channel (frame.go) before it answers.
	ChannelSync uint64 `json:"channel_sync,omitempty"`
}

// ResumeResult says what /resume changed. Clock and RNG are left alone when
// the agent does not run as a VM's init (tests on the host).
type ResumeResult struct {
	Resumed  bool `json:"resumed"`
	ClockSet bool `json:"clock_set"`
	Reseeded bool `json:"reseeded"`
	// ChannelSynced says the sync frame asked for was written.
	ChannelSynced bool `json:"channel_synced,omitempty"`
}

// AuthRequest is the body of /authenticate.
type AuthRequest struct {
	Token string `json:"token"`
}

// AuthResult is the body /authenticate answers with on success.
type AuthResult struct {
	Authenticated bool     `json:"authenticated"`
	Capabilities  []string `json:"capabilities,omitempty"`
}

// StdinRequest is the body of /stdin: a piece of input (Data, base64) or
// the end of it (EOF).
type StdinRequest struct {
	StdinID string `json:"stdin_id"`
	Data    string `json:"data,omitempty"`
	EOF     bool   `json:"eof,omitempty"`
}

// StdinResult says whether the command's stdin is now closed: after EOF,
// or because the command ended or closed it (further input is dropped).
type StdinResult struct {
	Closed bool `json:"closed"`
}

// CancelRequest is the body of /cancel.
type CancelRequest struct {
	StdinID string `json:"stdin_id"`
}

// CancelResult says whether a running command was found and killed.
type CancelResult struct {
	Cancelled bool `json:"cancelled"`
}

// UserRequest is the body of /create_user and /delete_user.
type UserRequest struct {
	Name string `json:"name"`
	// RemoveHome, on delete, also removes the user's home folder.
	RemoveHome bool `json:"remove_home,omitempty"`
}

// UserCreated is the body /create_user answers with.
type UserCreated struct {
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	Home string `json:"home"`
}

// UserDeleted is the body /delete_user answers with.
type UserDeleted struct {
	Removed bool `json:"removed"`
}

// FileOp is the body of PathFileOp.
type FileOp struct {
	// Op is one of "stat", "list", "mkdir", "remove", "rename".
	Op   string `json:"op"`
	Path string `json:"path"`
	// Dest is rename's new path.
	Dest string `json:"dest,omitempty"`
	// Parents: mkdir makes missing parents too (and an existing folder is
	// no error).
	Parents bool `json:"parents,omitempty"`
	// Recursive: remove takes a folder with everything in it.
	Recursive bool `json:"recursive,omitempty"`
	// Mode is mkdir's permission bits (default 0755).
	Mode uint32 `json:"mode,omitempty"`
	// User, if set, does the operation as this guest user: its permissions
	// apply, and what it makes belongs to it.
	User string `json:"user,omitempty"`
}

// FileInfo describes one file ("stat", and each entry of "list").
type FileInfo struct {
	Name string `json:"name"`
	// Type is "file", "dir", "symlink" or "other".
	Type    string `json:"type"`
	Size    int64  `json:"size"`
	Mode    uint32 `json:"mode"` // permission bits (and setuid, setgid, sticky)
	MtimeNs int64  `json:"mtime_ns"`
	// Target is a symlink's target.
	Target string `json:"target,omitempty"`
}

// FileOpResult answers PathFileOp: Info for "stat" (nil when the path does
// not exist), Entries for "list".
type FileOpResult struct {
	Info    *FileInfo  `json:"info,omitempty"`
	Entries []FileInfo `json:"entries,omitempty"`
}

// FileWritten answers PathFileWrite and PathTreeWrite.
type FileWritten struct {
	Bytes int64 `json:"bytes"`
}
