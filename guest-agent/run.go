package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// readSize is the largest chunk read from a command's pipe at once; it is
// also the largest chunk that reaches the host in one event.
const readSize = 64 << 10

// pipeGrace is how long output is still read after the shell exited while
// something it left running (a background server, say) holds the pipe open.
// After that the pipe is closed: the command is over for the caller.
const pipeGrace = 250 * time.Millisecond

// devNull is the stdin of commands given none, opened once.
var devNull, _ = os.Open(os.DevNull)

// defaultShell runs commands when the request names no shell.
const defaultShell = "/bin/sh"

// readBuffers are the pumps' buffers, reused: a fresh 64 KiB per stream per
// command was most of what the agent allocated for a short command, and
// zeroing and collecting it is not free in an emulated guest.
var readBuffers = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// stream identifies one of a command's output streams, numbered as
// everywhere (protocol.Stream); a pair kept per stream is indexed by
// s.Index().
type stream = protocol.Stream

const (
	stdoutStream = protocol.Stdout
	stderrStream = protocol.Stderr
)

func eventType(s stream) string {
	if s == stdoutStream {
		return protocol.EventStdout
	}
	return protocol.EventStderr
}

// outcome is how a command ended.
type outcome struct {
	exitCode int
	timedOut bool
}

// startError is a request the guest cannot start (missing cwd or shell,
// unknown user): the client's fault, answered in our dialect with 400
// before any output. Quicksand's agent reports a failed start as a result
// (exit code -1, the error on stderr) unless it refused the request before
// trying (refused: an unknown user), and so does ours in its dialect.
type startError struct {
	msg     string
	refused bool
	// resource: the guest lacks what starting takes (processes, memory),
	// not the request anything: our dialect answers 503, not 400.
	resource bool
}

func (e *startError) Error() string { return e.msg }

// command is one request turned into a runnable process.
type command struct {
	req     protocol.ExecRequest
	timeout time.Duration
	stdin   []byte
	// stdinPipe, if set, is the command's stdin instead (streaming stdin,
	// stdin.go); run closes it once the command has it.
	stdinPipe *os.File
	// as is the account to run as; nil runs as the agent (root).
	as *runAs
	// cgroups makes the command's own cgroup (nil: none).
	cgroups *cgroups
}

func newCommand(req protocol.ExecRequest) (*command, error) {
	c := &command{req: req, timeout: protocol.DefaultTimeoutSeconds * time.Second}
	if req.Timeout != nil && *req.Timeout > 0 {
		c.timeout = time.Duration(*req.Timeout * float64(time.Second))
	}
	if c.req.Shell == "" {
		c.req.Shell = defaultShell
	}
	c.stdin = []byte(req.Stdin)
	if req.StdinB64 != "" {
		p, err := base64.StdEncoding.DecodeString(req.StdinB64)
		if err != nil {
			return nil, fmt.Errorf("stdin_b64 is not valid base64: %v", err)
		}
		c.stdin = p
	}
	return c, nil
}

// checkStart finds out before starting whether the process can start, so
// that the client gets a 400 rather than a half-begun stream.
func (c *command) checkStart() error {
	if c.req.Cwd != "" {
		fi, err := os.Stat(c.req.Cwd)
		if err != nil {
			return &startError{msg: fmt.Sprintf("cwd %q: %v", c.req.Cwd, unwrapPathError(err))}
		}
		if !fi.IsDir() {
			return &startError{msg: fmt.Sprintf("cwd %q is not a directory", c.req.Cwd)}
		}
	}
	if _, err := exec.LookPath(c.req.Shell); err != nil {
		return &startError{msg: fmt.Sprintf("shell %q: %v", c.req.Shell, unwrapPathError(err))}
	}
	if c.req.User != "" {
		as, err := lookupUser(c.req.User)
		if err != nil {
			return err
		}
		c.as = as
	}
	return nil
}

// dir is where the command starts: the request's cwd, else the home of
// the user it runs as (if there is one), else the agent's own.
func (c *command) dir() string {
	if c.req.Cwd == "" && c.as != nil {
		if fi, err := os.Stat(c.as.home); err == nil && fi.IsDir() {
			return c.as.home
		}
	}
	return c.req.Cwd
}

// startFailure says why a process could not start: the guest out of
// processes or memory (the command's cgroup at pids.max, say) is a
// resource failure, anything else the request's.
func startFailure(what string, err error) *startError {
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENOMEM) {
		return &startError{msg: fmt.Sprintf("starting %s: the guest is out of processes or memory (%v)", what, err), resource: true}
	}
	return &startError{msg: fmt.Sprintf("starting %s: %v", what, err)}
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// newCmd makes the process for argv: the request's folder and
// environment, its user, in its own process group and in cg (when not nil),
// with stdin /dev/null until the caller sets another.
func (c *command) newCmd(argv []string, cg *commandCgroup) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	env := os.Environ()
	if c.as != nil {
		env = append(env, c.as.env...) // later entries win in os/exec
	}
	for k, v := range c.req.Env {
		env = append(env, k+"="+v)
	}
	cmd.Dir, cmd.Env = c.dir(), env
	if devNull != nil {
		cmd.Stdin = devNull // else os/exec opens /dev/null anew
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.as != nil {
		cmd.SysProcAttr.Credential = c.as.cred
	}
	if cg != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cg.fd
	}
	return cmd
}

// run starts the command in its own process group (and cgroup, see
// cgroup.go) and calls onChunk with each piece of output as it is read,
// from one goroutine per stream (the two may call at once). A piece never
// ends inside a UTF-8 character. onChunk must not keep p. If ctx ends (the
// client went away) or the timeout passes, the whole process group and
// cgroup are killed.
func (c *command) run(ctx context.Context, onChunk func(s stream, p []byte)) (outcome, error) {
	if c.stdinPipe != nil {
		defer c.stdinPipe.Close() // the child has its own copy once started
	}
	if err := c.checkStart(); err != nil {
		return outcome{}, err
	}
	var readers, writers [2]*os.File
	for i := range readers {
		r, w, err := os.Pipe()
		if err != nil {
			return outcome{}, fmt.Errorf("making a pipe: %w", err)
		}
		defer r.Close()
		defer w.Close()
		readers[i], writers[i] = r, w
	}
	cg := c.cgroups.create()
	var stdin io.Reader
	switch {
	case c.stdinPipe != nil:
		stdin = c.stdinPipe
	case len(c.stdin) > 0:
		stdin = bytes.NewReader(c.stdin)
	}
	build := func(argv ...string) *exec.Cmd {
		cmd := c.newCmd(argv, cg)
		if stdin != nil {
			cmd.Stdin = stdin
		}
		cmd.Stdout, cmd.Stderr = writers[0], writers[1]
		return cmd
	}
	var cmd *exec.Cmd
	if argv := directArgv(c.req); argv != nil {
		// Not found or not executable: the shell will say so, or run it.
		if cmd = build(argv...); cmd.Start() != nil {
			cmd = nil
		}
	}
	if cmd == nil {
		cmd = build(c.req.Shell, "-c", c.req.Command)
		if err := cmd.Start(); err != nil {
			cg.release()
			return outcome{}, startFailure(c.req.Shell, err)
		}
	}
	// Only the child keeps the write ends now, so EOF means it closed them.
	writers[0].Close()
	writers[1].Close()

	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pump(r, protocol.StreamAt(i), onChunk)
		}()
	}

	var mu sync.Mutex
	timedOut := false
	killGroup := func(why bool) {
		mu.Lock()
		timedOut = timedOut || why
		mu.Unlock()
		// Negative pid: the whole process group, so grandchildren go too;
		// and the cgroup: whatever left the group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cg.kill()
	}
	timer := time.AfterFunc(c.timeout, func() { killGroup(true) })
	defer timer.Stop()
	stop := context.AfterFunc(ctx, func() { killGroup(false) })
	defer stop()

	waitErr := cmd.Wait()
	timer.Stop()
	mu.Lock()
	out := outcome{timedOut: timedOut}
	mu.Unlock()
	switch {
	case out.timedOut || ctx.Err() != nil:
		// Anything the shell left behind goes with it.
		killGroup(out.timedOut)
	default:
		cg.release() // stays while something it started runs on
	}
	deadline := time.Now().Add(pipeGrace)
	for _, r := range readers {
		_ = r.SetReadDeadline(deadline)
	}
	wg.Wait()

	switch {
	case out.timedOut:
		out.exitCode = -1
	case waitErr == nil:
		out.exitCode = 0
	default:
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) {
			return out, fmt.Errorf("waiting for the command: %w", waitErr)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			out.exitCode = 128 + int(ws.Signal()) // as a shell reports it
		} else {
			out.exitCode = ws.ExitStatus()
		}
	}
	return out, nil
}

// pump reads r until EOF or its deadline and hands on each chunk, holding back
// a split UTF-8 character until the rest of it arrives. At the deadline it
// still takes what the pipe holds: the command wrote it before it exited,
// and a reader that a busy guest had not yet scheduled must not lose it
// (128 commands at once lost the output of one or two).
func pump(r *os.File, s stream, onChunk func(stream, []byte)) {
	bp := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(bp)
	buf := *bp
	pending := 0 // bytes of an incomplete character kept at buf[0:pending]
	read := r.Read
	for {
		n, err := read(buf[pending:])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			read, err = buffered(r), nil
			continue
		}
		if n > 0 {
			head, tail := protocol.SplitUTF8(buf[:pending+n])
			if len(head) > 0 {
				onChunk(s, head)
			}
			pending = copy(buf, tail)
		}
		if err != nil {
			if pending > 0 {
				onChunk(s, buf[:pending])
			}
			return
		}
	}
}

// maxDrain bounds what is taken from a pipe after its deadline: what the
// command wrote before it exited is in the pipe's buffer (64 KiB unless
// grown, 1 MiB at most for a user), and a background process that goes on
// writing must not keep the call open.
const maxDrain = 1 << 20

// buffered returns a read function that takes only what the pipe already
// holds, without waiting (past the file's deadline, its own reads fail at
// once), and reports io.EOF once the pipe is empty or maxDrain was taken.
func buffered(r *os.File) func([]byte) (int, error) {
	rc, err := r.SyscallConn()
	left := maxDrain
	return func(p []byte) (int, error) {
		if err != nil || left <= 0 {
			return 0, io.EOF
		}
		n := 0
		var rerr error
		if cerr := rc.Control(func(fd uintptr) {
			n, rerr = syscall.Read(int(fd), p[:min(len(p), left)]) // the pipe is non-blocking
		}); cerr != nil || rerr != nil || n <= 0 {
			return 0, io.EOF
		}
		left -= n
		return n, nil
	}
}
