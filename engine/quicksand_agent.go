package engine

import (
	"bytes"
	"regexp"
	"sort"
	"strings"
)

// Images imported from Quicksand run Quicksand's own agent, which takes
// less than ours: no env, no stdin in the request, always /bin/sh. What it
// would silently ignore is done another way or refused, never dropped.

// envName is what a shell accepts as a variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// forQuicksandAgent adapts req for Quicksand's agent: env becomes exports
// at the head of the command (the same environment for the command and
// what it starts); stdin and another shell are refused.
func forQuicksandAgent(req ExecRequest, imageName string) (ExecRequest, error) {
	refuse := func(what string) error {
		return newError(KindBadRequest, nil, "executing %q: image %s runs Quicksand's agent, which does not take %s", short(req.Command), imageName, what)
	}
	if len(req.Stdin) > 0 {
		return req, refuse("stdin")
	}
	if req.Shell != "" && req.Shell != "/bin/sh" {
		return req, refuse("a shell (it always runs /bin/sh)")
	}
	if len(req.Env) > 0 {
		names := make([]string, 0, len(req.Env))
		for k := range req.Env {
			if !envName.MatchString(k) {
				return req, refuse("env name " + quote(k) + " (only shell variable names can be exported)")
			}
			names = append(names, k)
		}
		sort.Strings(names)
		var b strings.Builder
		b.WriteString("export")
		for _, k := range names {
			b.WriteString(" " + k + "=" + shellQuote(req.Env[k]))
		}
		req.Command = b.String() + "\n" + req.Command
		req.Env = nil
	}
	return req, nil
}

// quicksandTimedOut recognises the result Quicksand's agent gives a command
// it timed out: exit code -1 and its message on stderr.
func quicksandTimedOut(exitCode int, stderr []byte) bool {
	return exitCode == -1 && bytes.Contains(stderr, []byte("Command timed out after"))
}
