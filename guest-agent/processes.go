package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Background processes (docs/protocol.md, "Processes"): a process started
// by one call runs on after it, its output kept here (outputLog) for any
// number of attaches, its stdin fed and its signals sent by later calls.

const (
	// maxRunningProcesses bounds the background processes running at once:
	// a client that starts them in a loop gets a clear refusal, and the
	// agent keeps serving.
	maxRunningProcesses = 1024
	// maxExitedKept is how many ended processes stay known (for a late
	// attach or wait); the oldest is forgotten first.
	maxExitedKept = 256
)

// process is one background process.
type process struct {
	id, command string
	pid         int
	cmd         *exec.Cmd
	out         *outputLog
	terminal    *os.File // the pty's master, nil without a terminal

	stdinMu sync.Mutex // orders writes
	stdin   *os.File   // nil once closed
	exited  chan struct{}
	code    int
}

type processTable struct {
	mu      sync.Mutex
	byID    map[string]*process
	running int
	ended   []string // ids of ended processes, oldest first
}

func (t *processTable) get(id string) (*process, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.byID[id]
	if p == nil {
		return nil, &fileError{http.StatusNotFound, fmt.Sprintf("no process %q (ended long ago, never started, or removed by a revert)", id)}
	}
	return p, nil
}

// add registers p under a new id, unless too many run.
func (t *processTable) add(p *process) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running >= maxRunningProcesses {
		return &startError{msg: fmt.Sprintf("%d background processes run already: no more until one ends", t.running), resource: true}
	}
	if t.byID == nil {
		t.byID = map[string]*process{}
	}
	// Random, not counted: a revert brings back an older table, and a new
	// process must not take an id that a handle from before it still holds.
	id := make([]byte, 8)
	rand.Read(id)
	p.id = "p" + hex.EncodeToString(id)
	t.byID[p.id] = p
	t.running++
	return nil
}

func (t *processTable) finished(p *process) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running--
	t.ended = append(t.ended, p.id)
	for len(t.ended) > maxExitedKept {
		delete(t.byID, t.ended[0])
		t.ended = t.ended[1:]
	}
}

func (t *processTable) list() []protocol.ProcessInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []protocol.ProcessInfo{}
	for _, p := range t.byID {
		select {
		case <-p.exited:
		default:
			out = append(out, protocol.ProcessInfo{ID: p.id, PID: p.pid, Command: p.command, PTY: p.terminal != nil})
		}
	}
	return out
}

// startProcess starts a background process and answers its id and pid
// (POST), or lists those that run (GET).
func (s *server) startProcess(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, protocol.ProcessList{Processes: s.procs.list()})
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, r.URL.Path+" takes GET or POST")
		return
	}
	var req protocol.ProcessRequest
	if !readJSON(w, r, &req) {
		return
	}
	p, err := s.spawn(req)
	if err != nil {
		answerRunError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.ProcessStarted{ID: p.id, PID: p.pid})
}

func (s *server) spawn(req protocol.ProcessRequest) (*process, error) {
	if req.Command == "" {
		return nil, &startError{msg: "command is required"}
	}
	if req.PTY != nil {
		if err := checkTerminalSize(*req.PTY); err != nil {
			return nil, &startError{msg: err.Error()}
		}
	}
	c, err := newCommand(protocol.ExecRequest{Command: req.Command, Cwd: req.Cwd, Shell: req.Shell, Env: req.Env, User: req.User})
	if err == nil {
		err = c.checkStart()
	}
	if err != nil {
		return nil, err
	}
	p := &process{command: req.Command, out: newOutputLog(), exited: make(chan struct{})}
	if err := s.procs.add(p); err != nil {
		return nil, err
	}
	cg := s.cgroups.create()
	cmd := c.newCmd([]string{c.req.Shell, "-c", c.req.Command}, cg)
	// outputs are read by the pumps; the child's ends are closed here once
	// it has them.
	var outputs, childEnds []*os.File
	fail := func(err error) (*process, error) {
		for _, f := range append(outputs, childEnds...) {
			f.Close()
		}
		if p.stdin != nil && p.terminal == nil {
			p.stdin.Close()
		}
		cg.release()
		close(p.exited)
		p.out.finish()
		s.procs.finished(p)
		return nil, err
	}
	if req.PTY != nil {
		master, tty, err := openPTY(*req.PTY)
		if err != nil {
			return fail(fmt.Errorf("opening a terminal: %w", err))
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		// A session of its own with the terminal as its controlling
		// terminal: job control and ^C work as on a real one.
		cmd.SysProcAttr.Setpgid = false
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
		p.terminal, p.stdin = master, master
		outputs, childEnds = []*os.File{master}, []*os.File{tty}
	} else {
		stdinR, stdinW, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		p.stdin, cmd.Stdin = stdinW, stdinR
		childEnds = append(childEnds, stdinR)
		var ends [2]*os.File
		for i := range ends {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			outputs, childEnds, ends[i] = append(outputs, r), append(childEnds, w), w
		}
		cmd.Stdout, cmd.Stderr = ends[0], ends[1]
	}
	if err := cmd.Start(); err != nil {
		return fail(startFailure(c.req.Shell, err))
	}
	for _, f := range childEnds {
		f.Close()
	}
	p.cmd, p.pid = cmd, cmd.Process.Pid
	go s.supervise(p, outputs, cg)
	return p, nil
}

// supervise pumps a process's output into its log and waits for it.
func (s *server) supervise(p *process, outputs []*os.File, cg *commandCgroup) {
	var wg sync.WaitGroup
	for i, r := range outputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pump(r, protocol.StreamAt(i), p.out.add)
		}()
	}
	err := p.cmd.Wait()
	p.code = exitCode(err)
	cg.release() // stays while something it started runs on
	deadline := time.Now().Add(pipeGrace)
	for _, r := range outputs {
		_ = r.SetReadDeadline(deadline)
	}
	wg.Wait()
	for _, r := range outputs {
		if r != p.terminal {
			r.Close()
		}
	}
	p.closeStdin()
	close(p.exited)
	p.out.finish()
	s.procs.finished(p)
}

// exitCode is a finished command's code as a shell reports it.
func exitCode(waitErr error) int {
	var ee *exec.ExitError
	switch {
	case waitErr == nil:
		return 0
	case errors.As(waitErr, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	default:
		return -1
	}
}

func (p *process) closeStdin() {
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
}

// processStdin writes the body to a process's stdin (blocking while the
// process does not read), then closes it when asked.
func (s *server) processStdin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := s.procs.get(q.Get("id"))
	if err != nil {
		answerFileError(w, err)
		return
	}
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.refuseExited(w) {
		return
	}
	if p.stdin == nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("the stdin of process %s is closed", p.id))
		return
	}
	n, err := io.Copy(p.stdin, r.Body)
	if err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, syscall.EPIPE) {
		writeError(w, http.StatusConflict, fmt.Sprintf("writing to process %s: %v", p.id, err))
		return
	}
	if err != nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("process %s has exited (%d bytes taken)", p.id, n))
		return
	}
	if q.Get("close") == "1" && p.terminal == nil {
		p.stdin.Close()
		p.stdin = nil
	} else if q.Get("close") == "1" {
		// A terminal has no end of input but the one its line discipline
		// reads: ^D at the start of a line.
		_, _ = p.stdin.Write([]byte{4})
	}
	writeJSON(w, http.StatusOK, map[string]int64{"bytes": n})
}

// requestedProcess reads a JSON body into req and finds the process *id
// names (id points into req); on failure it has answered.
func (s *server) requestedProcess(w http.ResponseWriter, r *http.Request, req any, id *string) (*process, bool) {
	if !readJSON(w, r, req) {
		return nil, false
	}
	p, err := s.procs.get(*id)
	if err != nil {
		answerFileError(w, err)
		return nil, false
	}
	return p, true
}

// refuseExited answers 409 for a process that has exited, and says so.
func (p *process) refuseExited(w http.ResponseWriter) bool {
	select {
	case <-p.exited:
		writeError(w, http.StatusConflict, fmt.Sprintf("process %s has exited", p.id))
		return true
	default:
		return false
	}
}

// processSignal sends a signal to a process's group.
func (s *server) processSignal(w http.ResponseWriter, r *http.Request) {
	var req protocol.ProcessSignal
	p, ok := s.requestedProcess(w, r, &req, &req.ID)
	if !ok {
		return
	}
	if req.Signal < 1 || req.Signal > 64 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("signal %d is out of range (1 to 64)", req.Signal))
		return
	}
	if p.refuseExited(w) {
		return
	}
	if err := syscall.Kill(-p.pid, syscall.Signal(req.Signal)); err != nil && !errors.Is(err, syscall.ESRCH) {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("signalling process %s: %v", p.id, err))
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// processResize changes the size of a process's terminal.
func (s *server) processResize(w http.ResponseWriter, r *http.Request) {
	var req protocol.ProcessResize
	p, ok := s.requestedProcess(w, r, &req, &req.ID)
	if !ok {
		return
	}
	if p.terminal == nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("process %s has no terminal to resize", p.id))
		return
	}
	if err := checkTerminalSize(req.TerminalSize); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := setTerminalSize(p.terminal, req.TerminalSize); err != nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("resizing the terminal of process %s: %v", p.id, err))
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// processOutput streams a process's output from ?from (a byte offset, 0
// by default) as events, live, until it ends with the exit event.
func (s *server) processOutput(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := s.procs.get(q.Get("id"))
	if err != nil {
		answerFileError(w, err)
		return
	}
	var from int64
	if f := q.Get("from"); f != "" {
		from, err = strconv.ParseInt(f, 10, 64)
	}
	if err != nil || from < 0 {
		writeError(w, http.StatusBadRequest, "from must be a byte offset (0 or more)")
		return
	}
	sink, err := openEvents(w, r)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot stream: "+err.Error())
		return
	}
	send := func(ev protocol.Event) bool { return sink.sendEvent(encodeEvent(ev, true)) == nil }
	for first := true; ; first = false {
		chunks, dropped, next, ended, more := p.out.since(from)
		if first && dropped > 0 && !send(protocol.Event{Type: protocol.EventDropped, Dropped: dropped}) {
			return
		}
		for _, c := range chunks {
			text, b64 := protocol.EncodeChunk(c.data)
			if !send(protocol.Event{Type: eventType(c.s), Data: text, DataB64: b64}) {
				return
			}
		}
		from = next
		if ended {
			code := p.code
			send(protocol.Event{Type: protocol.EventExit, ExitCode: &code})
			return
		}
		select {
		case <-more:
		case <-r.Context().Done():
			return
		}
	}
}
