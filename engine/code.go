package engine

import (
	"context"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// The code interpreter: code run cell by cell in a live context whose
// variables, imports and working folder carry from one run to the next,
// with rich results (text, HTML, images). Python contexts are Jupyter
// kernels (ipykernel; an image that has it, such as debian-python); bash
// contexts work in every image. Contexts live in guest RAM, so they follow
// checkpoints, reverts and saves like everything else in the guest. The
// names follow E2B's code interpreter.

// Code languages.
const (
	LanguagePython = protocol.CodeLanguagePython
	LanguageBash   = protocol.CodeLanguageBash
)

// Names of the errors a run ends with when its code did not raise them.
const (
	// CodeErrorTimeout: the run's timeout came, or it was cancelled; the
	// cell was interrupted and the context keeps its earlier state.
	CodeErrorTimeout = protocol.CodeErrorTimeout
	// CodeErrorKernelDied: the code ended its kernel (or the kernel ran out
	// of memory); the context's next run starts a fresh one.
	CodeErrorKernelDied = protocol.CodeErrorKernelDied
)

// CodeRequest is one RunCode call.
type CodeRequest struct {
	Code string
	// Language picks the language's default context when Context is empty
	// ("": python). With Context set it must be empty or the context's own.
	Language string
	// Context is a context's ID from CreateCodeContext ("": the default).
	Context string
	// Env is set for this run only.
	Env map[string]string
	// Timeout interrupts the cell (0: none); the run then ends with an
	// Error named CodeErrorTimeout and the context keeps its state.
	Timeout time.Duration
	// Each of these, if set, is called as the run produces what it takes,
	// on the calling goroutine; an error it returns ends the call (the
	// cell is interrupted).
	OnStdout func(text string) error
	OnStderr func(text string) error
	OnResult func(CodeResult) error
	OnError  func(CodeError) error
}

// Execution is what a run produced.
type Execution struct {
	// Results are the cell's rich results in order: what it displayed, and
	// the value of its last expression (IsMainResult).
	Results []CodeResult
	Logs    CodeLogs
	// Error is the exception the code raised (or the timeout), nil if none.
	Error *CodeError
	// ExecutionCount is the context's count of runs.
	ExecutionCount int
}

// Text is the main result's text, "" if it has none.
func (e *Execution) Text() string {
	for _, r := range e.Results {
		if r.IsMainResult {
			return r.Text
		}
	}
	return ""
}

// CodeLogs are a run's output, in the chunks it came in.
type CodeLogs struct {
	Stdout []string
	Stderr []string
}

// CodeError is an exception the code raised, or why the run ended early.
type CodeError struct {
	Name      string
	Value     string
	Traceback string
}

func (e *CodeError) Error() string { return e.Name + ": " + e.Value }

// CodeResult is one rich result: the same value in each format the code
// produced. Binary formats (PNG, JPEG, PDF) are base64, as Jupyter and
// E2B give them.
type CodeResult struct {
	Text       string
	HTML       string
	Markdown   string
	SVG        string
	PNG        string
	JPEG       string
	PDF        string
	LaTeX      string
	JavaScript string
	// JSON is the application/json value, nil if none.
	JSON any
	// Extra holds formats with no field of their own, by MIME type.
	Extra map[string]any
	// IsMainResult: the value of the cell's last expression, not something
	// it displayed on the way.
	IsMainResult bool
}

// Formats lists the formats the result has, by E2B's names ("text",
// "html", "png", …; other MIME types as they are).
func (r CodeResult) Formats() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"text", r.Text != ""}, {"html", r.HTML != ""}, {"markdown", r.Markdown != ""}, {"svg", r.SVG != ""},
		{"png", r.PNG != ""}, {"jpeg", r.JPEG != ""}, {"pdf", r.PDF != ""}, {"latex", r.LaTeX != ""},
		{"json", r.JSON != nil}, {"javascript", r.JavaScript != ""},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	for mime := range r.Extra {
		out = append(out, mime)
	}
	return out
}

// codeResultOf maps a result's MIME bundle onto CodeResult.
func codeResultOf(wire *protocol.CodeResult) CodeResult {
	r := CodeResult{IsMainResult: wire.IsMainResult}
	fields := map[string]*string{
		"text/plain": &r.Text, "text/html": &r.HTML, "text/markdown": &r.Markdown, "image/svg+xml": &r.SVG,
		"image/png": &r.PNG, "image/jpeg": &r.JPEG, "application/pdf": &r.PDF, "text/latex": &r.LaTeX,
		"application/javascript": &r.JavaScript,
	}
	for mime, v := range wire.Data {
		if f, ok := fields[mime]; ok {
			if s, isText := v.(string); isText {
				*f = s
				continue
			}
		}
		if mime == "application/json" {
			r.JSON = v
			continue
		}
		if r.Extra == nil {
			r.Extra = map[string]any{}
		}
		r.Extra[mime] = v
	}
	return r
}

// CodeContext is a code context: its own kernel (Python) or shell state
// (bash).
type CodeContext struct {
	ID       string
	Language string
	Cwd      string
	// Default: the context runs of its language use when they name none.
	Default bool
}

// CodeContextOptions are CreateCodeContext's options.
type CodeContextOptions struct {
	// Language: "python" (the default) or "bash".
	Language string
	// Cwd is the context's first working folder ("": /root).
	Cwd string
}

// codePrestartTimeout bounds starting a kernel for a template: importing
// IPython, numpy, pandas and matplotlib takes most of a minute under
// emulation.
const codePrestartTimeout = 5 * time.Minute

// prestartCode starts the default code context the image's manifest names
// (CodePrestart), so that a template taken next holds a running kernel.
func (sb *Sandbox) prestartCode(ctx context.Context) error {
	lang := sb.img.Manifest.CodePrestart
	if lang == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, codePrestartTimeout)
	defer cancel()
	err := sb.fileCall(ctx, "starting the image's "+lang+" kernel for its template", func(ctx context.Context) error {
		_, err := sb.client.CreateCodeContext(ctx, protocol.CodeContextRequest{Language: lang, Default: true})
		return err
	})
	if err != nil {
		return newError(KindBootFailed, err, "preparing the template")
	}
	return nil
}

// RunCode runs code in a code context and returns what it produced. An
// exception in the code is Execution.Error, not an error: the error is for
// calls that could not run (an unknown language or context, an image with
// no Python kernel, a stopped sandbox).
func (sb *Sandbox) RunCode(ctx context.Context, req CodeRequest) (*Execution, error) {
	if sb.remote != nil {
		return sb.remote.runCode(ctx, req)
	}
	wire := protocol.CodeRunRequest{Code: req.Code, Language: req.Language, Context: req.Context, Env: req.Env, Timeout: req.Timeout.Seconds()}
	exec := &Execution{}
	// A callback's error ends the call as it is (as Execute's does), not as
	// the transport error the dropped stream makes of it.
	var cbErr error
	err := sb.fileCall(context.WithValue(ctx, waitingOnTheGuest{}, true), "running code", func(ctx context.Context) (err error) {
		exec.ExecutionCount, err = sb.client.RunCode(ctx, wire, protocol.DefaultMaxOutput, func(ev protocol.CodeEvent) error {
			cbErr = exec.add(ev, &req)
			return cbErr
		})
		return err
	})
	if cbErr != nil {
		return nil, cbErr
	}
	if err != nil {
		return nil, err
	}
	return exec, nil
}

// add records one event and calls the request's callback for it.
func (e *Execution) add(ev protocol.CodeEvent, req *CodeRequest) error {
	switch ev.Type {
	case protocol.CodeEventStdout:
		e.Logs.Stdout = append(e.Logs.Stdout, ev.Text)
		if req.OnStdout != nil {
			return req.OnStdout(ev.Text)
		}
	case protocol.CodeEventStderr:
		e.Logs.Stderr = append(e.Logs.Stderr, ev.Text)
		if req.OnStderr != nil {
			return req.OnStderr(ev.Text)
		}
	case protocol.CodeEventResult:
		if ev.Result == nil {
			return nil
		}
		r := codeResultOf(ev.Result)
		e.Results = append(e.Results, r)
		if req.OnResult != nil {
			return req.OnResult(r)
		}
	case protocol.CodeEventError:
		if ev.Error == nil {
			return nil
		}
		ce := CodeError{Name: ev.Error.Name, Value: ev.Error.Value, Traceback: ev.Error.Traceback}
		e.Error = &ce
		if req.OnError != nil {
			return req.OnError(ce)
		}
	}
	return nil
}

func contextOf(c protocol.CodeContext) CodeContext {
	return CodeContext{ID: c.ID, Language: c.Language, Cwd: c.Cwd, Default: c.Default}
}

// CreateCodeContext makes a code context and starts its kernel.
func (sb *Sandbox) CreateCodeContext(ctx context.Context, opts CodeContextOptions) (CodeContext, error) {
	if sb.remote != nil {
		return sb.remote.createCodeContext(ctx, opts)
	}
	var c protocol.CodeContext
	err := sb.fileCall(context.WithValue(ctx, waitingOnTheGuest{}, true), "creating a code context", func(ctx context.Context) (err error) {
		c, err = sb.client.CreateCodeContext(ctx, protocol.CodeContextRequest{Language: opts.Language, Cwd: opts.Cwd})
		return err
	})
	return contextOf(c), err
}

// CodeContexts lists the code contexts (the defaults among them once used).
func (sb *Sandbox) CodeContexts(ctx context.Context) ([]CodeContext, error) {
	if sb.remote != nil {
		return sb.remote.codeContexts(ctx)
	}
	var list []protocol.CodeContext
	err := sb.fileCall(ctx, "listing code contexts", func(ctx context.Context) (err error) {
		list, err = sb.client.CodeContexts(ctx)
		return err
	})
	out := make([]CodeContext, len(list))
	for i, c := range list {
		out[i] = contextOf(c)
	}
	return out, err
}

// RestartCodeContext gives a context fresh state (a new kernel).
func (sb *Sandbox) RestartCodeContext(ctx context.Context, id string) error {
	if sb.remote != nil {
		return sb.remote.restartCodeContext(ctx, id)
	}
	return sb.fileCall(context.WithValue(ctx, waitingOnTheGuest{}, true), "restarting code context "+id, func(ctx context.Context) error {
		_, err := sb.client.RestartCodeContext(ctx, id)
		return err
	})
}

// RemoveCodeContext stops a context; a run in it ends.
func (sb *Sandbox) RemoveCodeContext(ctx context.Context, id string) error {
	if sb.remote != nil {
		return sb.remote.removeCodeContext(ctx, id)
	}
	return sb.fileCall(ctx, "removing code context "+id, func(ctx context.Context) error {
		return sb.client.RemoveCodeContext(ctx, id)
	})
}
