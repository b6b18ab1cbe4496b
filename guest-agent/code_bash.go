package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// A bash context runs each cell in a fresh bash that first loads what the
// previous cells left (variables, functions, the working folder) from a
// state file and writes it back as it exits. A fresh process per cell makes
// an interrupt simple and safe: the cell's process group is killed, and the
// state file still holds what the earlier cells left, as a Jupyter kernel
// keeps its state across an interrupt.
type bashContext struct {
	state string // the state file
	count int
}

// bashPrelude loads the state, arranges for it to be saved on exit, and
// runs the cell ($2) in this shell, so that what it sets is saved.
const bashPrelude = `__qs_state=$1
__qs_save() {
	{
		for __qs_v in $(compgen -v); do
			case "$__qs_v" in
			BASH* | FUNCNAME | PIPESTATUS | SHLVL | PPID | UID | EUID | SHELLOPTS | BASHOPTS | RANDOM | SRANDOM | \
				SECONDS | LINENO | HISTCMD | _ | GROUPS | DIRSTACK | EPOCHREALTIME | EPOCHSECONDS | COLUMNS | LINES | \
				OPTIND | OPTERR | OPTARG | IFS | PS4 | PWD | OLDPWD | HOSTNAME | HOSTTYPE | MACHTYPE | OSTYPE | __qs_* | __QS_*) continue ;;
			esac
			case " $__QS_RUN_ENV " in *" $__qs_v "*) continue ;; esac
			declare -p "$__qs_v" 2>/dev/null
		done
		for __qs_f in $(compgen -A function); do
			case "$__qs_f" in __qs_*) ;; *) declare -f "$__qs_f" ;; esac
		done
		printf 'cd -- %q 2>/dev/null\n' "$PWD"
	} >"$__qs_state.tmp" && mv -f "$__qs_state.tmp" "$__qs_state"
}
if [ -f "$__qs_state" ]; then . "$__qs_state" 2>/dev/null; fi
trap __qs_save EXIT
. "$2"
`

func newBashContext(id string) *bashContext {
	return &bashContext{state: filepath.Join(codeStateDir, "bash-"+id+".state")}
}

// reset forgets the context's state.
func (b *bashContext) reset() {
	os.Remove(b.state)
	b.count = 0
}

func (b *bashContext) run(ctx context.Context, cwd, code string, env map[string]string, timeout time.Duration, emit func(protocol.CodeEvent) error) (int, error) {
	if err := os.MkdirAll(codeStateDir, 0o700); err != nil {
		return 0, err
	}
	codeFile := strings.TrimSuffix(b.state, ".state") + ".code"
	if err := os.WriteFile(codeFile, []byte(code), 0o600); err != nil {
		return 0, err
	}
	defer os.Remove(codeFile)
	b.count++
	cmd := exec.Command("bash", "-c", bashPrelude, "bash", b.state, codeFile)
	// The first cell starts in the context's folder; later ones where the
	// previous left off (the state file says).
	cmd.Dir = cwd
	names := make([]string, 0, len(env))
	cmd.Env = os.Environ()
	for k, v := range env {
		names = append(names, k)
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	sort.Strings(names)
	cmd.Env = append(cmd.Env, "__QS_RUN_ENV="+strings.Join(names, " "))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Pipes of our own rather than exec's: Wait must not wait for them, since
	// what the cell leaves running in the background may hold them open.
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, err
	}
	defer outR.Close()
	defer errR.Close()
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		return 0, errors.Wrap(err, "starting bash")
	}
	var mu sync.Mutex
	var emitErr error
	send := func(ev protocol.CodeEvent) {
		mu.Lock()
		defer mu.Unlock()
		if emitErr == nil {
			emitErr = emit(ev)
		}
	}
	var readers sync.WaitGroup
	pump := func(r io.Reader, kind string) {
		defer readers.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				send(protocol.CodeEvent{Type: kind, Text: string(buf[:n])})
			}
			if err != nil {
				return
			}
		}
	}
	readers.Add(2)
	go pump(outR, protocol.CodeEventStdout)
	go pump(errR, protocol.CodeEventStderr)
	done := make(chan struct{})
	var why string
	var whyMu sync.Mutex
	go func() {
		var expire <-chan time.Time
		if timeout > 0 {
			t := time.NewTimer(timeout)
			defer t.Stop()
			expire = t.C
		}
		var reason string
		select {
		case <-done:
			return
		case <-expire:
			reason = fmt.Sprintf("the code ran longer than its timeout (%s) and was interrupted", timeout)
		case <-ctx.Done():
			reason = "the run was cancelled and the code interrupted"
		}
		whyMu.Lock()
		why = reason
		whyMu.Unlock()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}()
	err = cmd.Wait()
	close(done)
	// The cell's output ends with it; a background job it left may keep the
	// pipes open, so wait for the rest only a moment.
	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(200 * time.Millisecond):
		outR.Close()
		errR.Close()
		<-drained
	}
	whyMu.Lock()
	defer whyMu.Unlock()
	switch {
	case why != "":
		send(protocol.CodeEvent{Type: protocol.CodeEventError, Error: &protocol.CodeError{Name: protocol.CodeErrorTimeout, Value: why}})
	case err != nil:
		code := cmd.ProcessState.ExitCode()
		send(protocol.CodeEvent{Type: protocol.CodeEventError, Error: &protocol.CodeError{
			Name: "ExitCodeError", Value: fmt.Sprintf("the code ended with exit code %d", code)}})
	}
	return b.count, emitErr
}
