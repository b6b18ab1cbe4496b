package wire

import (
	"github.com/quicksand-go/quicksand/engine"
)

// DecodeProcessRequest reads qs_sandbox_start_process's request map:
// command (required), cwd, shell, env, user, pty {rows, cols}.
func DecodeProcessRequest(b []byte) (engine.ProcessRequest, error) {
	var r engine.ProcessRequest
	f, err := decodeMap(b, "process request", engine.KindBadRequest)
	if err != nil {
		return r, err
	}
	for _, err := range []error{
		f.str("command", &r.Command),
		f.str("cwd", &r.Cwd),
		f.str("shell", &r.Shell),
		f.strMap("env", &r.Env),
		f.str("user", &r.User),
	} {
		if err != nil {
			return r, err
		}
	}
	if _, ok := f.m["command"]; !ok {
		return r, f.fail("command", "is required")
	}
	if v, ok := f.get("pty"); ok && v != nil {
		pf, err := f.sub("pty", v)
		if err != nil {
			return r, err
		}
		var size engine.TerminalSize
		if err := pf.integer("rows", &size.Rows); err != nil {
			return r, err
		}
		if err := pf.integer("cols", &size.Cols); err != nil {
			return r, err
		}
		if err := pf.unknown(); err != nil {
			return r, err
		}
		r.PTY = &size
	}
	return r, f.unknown()
}

// EncodeProcess is a started process: {id, pid}.
func EncodeProcess(p *engine.Process) []byte {
	return encodeSorted(map[string]any{"id": p.ID, "pid": p.PID})
}

// EncodeProcesses lists running processes: [{id, pid, command, pty}].
func EncodeProcesses(list []engine.ProcessInfo) []byte {
	out := make([]any, len(list))
	for i, p := range list {
		out[i] = map[string]any{"id": p.ID, "pid": p.PID, "command": p.Command, "pty": p.PTY}
	}
	return encodeSorted(out)
}
