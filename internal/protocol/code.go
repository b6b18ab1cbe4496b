package protocol

// The code interpreter (docs/protocol.md, "Code"): stateful code contexts in
// the guest, each a Jupyter kernel (Python, through ipykernel) or a shell
// whose variables, functions and working folder carry from one run to the
// next (bash). This project's extension; Quicksand's agent has none.
const (
	// PathCodeRun runs code in a context (CodeRunRequest) and streams
	// CodeEvents: output, results and an error as they come, then one
	// CodeEventEnd.
	PathCodeRun = "/code/run"
	// PathCodeContexts: POST creates a context (CodeContextRequest →
	// CodeContext), GET lists them (CodeContextList).
	PathCodeContexts = "/code/contexts"
	// PathCodeContextRestart: CodeContextID → CodeContext, with fresh state.
	PathCodeContextRestart = "/code/contexts/restart"
	// PathCodeContextRemove: CodeContextID; its kernel is stopped.
	PathCodeContextRemove = "/code/contexts/remove"
)

// Languages a code context may speak.
const (
	CodeLanguagePython = "python"
	CodeLanguageBash   = "bash"
)

// CodeContextRequest is the body of POST PathCodeContexts.
type CodeContextRequest struct {
	Language string `json:"language"`
	// Cwd is the context's first working folder ("": the agent's default).
	Cwd string `json:"cwd,omitempty"`
	// Default asks for the language's default context (made if there is
	// none yet, with Cwd ignored) and its kernel started, with the
	// libraries it has loaded in advance (numpy, pandas, matplotlib).
	Default bool `json:"default,omitempty"`
}

// CodeContext describes one context.
type CodeContext struct {
	ID       string `json:"id"`
	Language string `json:"language"`
	Cwd      string `json:"cwd"`
	// Default: the context a run without a context uses for its language.
	Default bool `json:"default,omitempty"`
}

// CodeContextList is the answer to GET PathCodeContexts.
type CodeContextList struct {
	Contexts []CodeContext `json:"contexts"`
}

// CodeContextID names a context in PathCodeContextRestart and
// PathCodeContextRemove.
type CodeContextID struct {
	ID string `json:"id"`
}

// CodeRunRequest is the body of PathCodeRun.
type CodeRunRequest struct {
	Code string `json:"code"`
	// Language picks the language's default context when Context is empty
	// ("": python). With Context set it must be empty or the context's.
	Language string `json:"language,omitempty"`
	Context  string `json:"context,omitempty"`
	// Env is set for this run only (Python: os.environ around the cell;
	// bash: exported for the run).
	Env map[string]string `json:"env,omitempty"`
	// Timeout in seconds (0: none); at the end the run is interrupted, the
	// context and its state stay, and the run ends with a CodeError named
	// CodeErrorTimeout.
	Timeout float64 `json:"timeout,omitempty"`
}

// CodeEvent types, in Type.
const (
	CodeEventStdout = "stdout"
	CodeEventStderr = "stderr"
	CodeEventResult = "result"
	CodeEventError  = "error"
	CodeEventEnd    = "end"
)

// CodeEvent is one event of a run.
type CodeEvent struct {
	Type string `json:"type"`
	// Text of a stdout or stderr event.
	Text string `json:"text,omitempty"`
	// Result of a result event.
	Result *CodeResult `json:"result,omitempty"`
	// Error of an error event.
	Error *CodeError `json:"error,omitempty"`
	// ExecutionCount, on the end event: the context's count of runs.
	ExecutionCount int `json:"execution_count,omitempty"`
}

// CodeResult is one rich result (Jupyter's execute_result or display_data):
// the same value in each format the code produced, by MIME type (text
// formats as text, binary ones such as image/png in base64, JSON as JSON).
type CodeResult struct {
	Data map[string]any `json:"data"`
	// IsMainResult: the value of the cell's last expression (execute_result),
	// not something it displayed on the way.
	IsMainResult bool `json:"is_main_result,omitempty"`
}

// CodeError is an exception the code raised, or why the run ended early.
type CodeError struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Traceback string `json:"traceback"`
}

// Names of the errors the agent itself gives a run.
const (
	// CodeErrorTimeout: the run's timeout came; the cell was interrupted.
	CodeErrorTimeout = "TimeoutError"
	// CodeErrorKernelDied: the kernel ended during the run; the context's
	// next run gets a fresh one.
	CodeErrorKernelDied = "KernelDied"
)
