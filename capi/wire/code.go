package wire

import (
	"github.com/quicksand-go/quicksand/engine"
)

// The code interpreter's maps (include/quicksand.h, "Code interpreter").

// DecodeCodeRequest reads qs_sandbox_run_code's request map: code
// (required), language, context, env, timeout (seconds).
func DecodeCodeRequest(b []byte) (engine.CodeRequest, error) {
	f, err := decodeMap(b, "code request", engine.KindBadRequest)
	if err != nil {
		return engine.CodeRequest{}, err
	}
	return codeRequestFrom(f)
}

// CodeRequestKeys are the keys DecodeCodeRequest reads.
func CodeRequestKeys() []string {
	f, _ := decodeMap(nil, "code request", engine.KindBadRequest)
	_, _ = codeRequestFrom(f)
	return f.read()
}

func codeRequestFrom(f *fields) (r engine.CodeRequest, err error) {
	for _, err := range []error{
		f.str("code", &r.Code),
		f.str("language", &r.Language),
		f.str("context", &r.Context),
		f.strMap("env", &r.Env),
		seconds(f, "timeout", &r.Timeout),
	} {
		if err != nil {
			return r, err
		}
	}
	if _, ok := f.m["code"]; !ok {
		return r, f.fail("code", "is required")
	}
	return r, f.unknown()
}

// DecodeCodeContextOptions reads qs_sandbox_create_code_context's options
// map: language, cwd.
func DecodeCodeContextOptions(b []byte) (engine.CodeContextOptions, error) {
	var o engine.CodeContextOptions
	f, err := decodeMap(b, "code context options", engine.KindBadRequest)
	if err != nil {
		return o, err
	}
	for _, err := range []error{f.str("language", &o.Language), f.str("cwd", &o.Cwd)} {
		if err != nil {
			return o, err
		}
	}
	return o, f.unknown()
}

// codeResultMap is a result with the formats it has, each under its E2B
// name, and is_main_result; extra only when it holds any.
func codeResultMap(r engine.CodeResult) map[string]any {
	m := map[string]any{"is_main_result": r.IsMainResult}
	for name, v := range map[string]string{
		"text": r.Text, "html": r.HTML, "markdown": r.Markdown, "svg": r.SVG, "png": r.PNG,
		"jpeg": r.JPEG, "pdf": r.PDF, "latex": r.LaTeX, "javascript": r.JavaScript,
	} {
		if v != "" {
			m[name] = v
		}
	}
	if r.JSON != nil {
		m["json"] = r.JSON
	}
	if len(r.Extra) > 0 {
		m["extra"] = r.Extra
	}
	return m
}

func codeErrorMap(e *engine.CodeError) any {
	if e == nil {
		return nil
	}
	return map[string]any{"name": e.Name, "value": e.Value, "traceback": e.Traceback}
}

// EncodeCodeText is a stdout or stderr event: {type, text}.
func EncodeCodeText(stream, text string) []byte {
	return encodeSorted(map[string]any{"type": stream, "text": text})
}

// EncodeCodeResult is a result event: {type "result", result}.
func EncodeCodeResult(r engine.CodeResult) []byte {
	return encodeSorted(map[string]any{"type": "result", "result": codeResultMap(r)})
}

// EncodeCodeError is an error event: {type "error", error {name, value,
// traceback}}.
func EncodeCodeError(e engine.CodeError) []byte {
	return encodeSorted(map[string]any{"type": "error", "error": codeErrorMap(&e)})
}

// EncodeExecution is a run's result: {results, logs {stdout, stderr},
// error (nil if none), execution_count}.
func EncodeExecution(e *engine.Execution) []byte {
	results := make([]any, len(e.Results))
	for i, r := range e.Results {
		results[i] = codeResultMap(r)
	}
	logs := map[string]any{"stdout": nonNil(e.Logs.Stdout), "stderr": nonNil(e.Logs.Stderr)}
	return encodeSorted(map[string]any{
		"results": results, "logs": logs, "error": codeErrorMap(e.Error), "execution_count": e.ExecutionCount,
	})
}

// nonNil makes an empty list an empty array, not nil.
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

func codeContextMap(c engine.CodeContext) map[string]any {
	return map[string]any{"id": c.ID, "language": c.Language, "cwd": c.Cwd, "default": c.Default}
}

// EncodeCodeContext is a code context: {id, language, cwd, default}.
func EncodeCodeContext(c engine.CodeContext) []byte { return encodeSorted(codeContextMap(c)) }

// EncodeCodeContexts lists code contexts: an array of those maps.
func EncodeCodeContexts(list []engine.CodeContext) []byte { return encodeMaps(list, codeContextMap) }
