package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// maxRequestBody bounds a request body (stdin travels in it).
const maxRequestBody = 64 << 20

type server struct {
	settings settings
	// token is swapped by /resume; every request reads it.
	token atomic.Pointer[string]
	// keyedBy is what the fw_cfg token file held when the token was taken
	// (seal.go): when it holds something else, the VM runs in another QEMU.
	keyedBy atomic.Pointer[string]
	// ownsGuest: the agent runs as the VM's init and may set the clock and
	// feed the RNG. Never on a host (tests).
	ownsGuest bool
	// ch is the output channel, nil when the VM has none.
	ch *channel
	// cgroups holds each command in a cgroup of its own (nil on a host).
	cgroups *cgroups
	// live are the streaming commands whose stdin /stdin feeds.
	live liveCalls
	// exclusive is set while a command that asked to run alone runs.
	exclusive atomic.Bool
	// pending are mount connections waiting to be mounted.
	pending pendingMounts
	// procs are the background processes.
	procs processTable
	// code are the code contexts (code.go).
	code codeContexts
	// resuming serializes /resume (resume.go).
	resuming sync.Mutex
	// table is routes(), made once: a map of a few dozen method values
	// built on every request cost each one time and, in a clone, the
	// translation of the code that builds it.
	table map[string]route
}

func newServer(s settings, ownsGuest bool) *server {
	srv := &server{settings: s, ownsGuest: ownsGuest}
	if ownsGuest {
		srv.ch = openChannel()
		srv.cgroups = setupCgroups()
	}
	srv.token.Store(&s.token)
	srv.keyedBy.Store(&s.keyedBy)
	srv.table = srv.routes()
	return srv
}

// route is one endpoint of the agent.
type route struct {
	method string // "": the handler decides
	auth   bool
	handle func(http.ResponseWriter, *http.Request)
	// unbounded: the body is a file or a tree, of any size, streamed.
	unbounded bool
}

// routes is the agent's route table, by path: ServeHTTP serves it, and the
// tests refuse every route that needs auth without the token (auth_test.go),
// so a route added here is tested with the rest.
func (s *server) routes() map[string]route {
	return map[string]route{
		protocol.PathAuthenticate:       {http.MethodPost, false, s.authenticate, false},
		protocol.PathPing:               {http.MethodGet, true, s.ping, false},
		protocol.PathExecute:            {http.MethodPost, true, s.execute, false},
		protocol.PathExecuteStream:      {http.MethodPost, true, s.executeStream, false},
		protocol.PathStdin:              {http.MethodPost, true, s.stdin, false},
		protocol.PathCancel:             {http.MethodPost, true, s.cancel, false},
		protocol.PathCreateUser:         {http.MethodPost, true, s.createUser, false},
		protocol.PathDeleteUser:         {http.MethodPost, true, s.deleteUser, false},
		protocol.PathResume:             {http.MethodPost, true, s.resume, false},
		protocol.PathFileWrite:          {http.MethodPost, true, s.writeFile, true},
		protocol.PathFileRead:           {http.MethodGet, true, s.readFile, false},
		protocol.PathTreeWrite:          {http.MethodPost, true, s.writeTree, true},
		protocol.PathTreeRead:           {http.MethodGet, true, s.readTree, false},
		protocol.PathFileOp:             {http.MethodPost, true, s.fileOp, false},
		protocol.PathMountConnect:       {http.MethodPost, true, s.mountConnect, false},
		protocol.PathMount:              {http.MethodPost, true, s.mount, false},
		protocol.PathUnmount:            {http.MethodPost, true, s.unmount, false},
		protocol.PathProcesses:          {"", true, s.startProcess, false},
		protocol.PathProcessOutput:      {http.MethodGet, true, s.processOutput, false},
		protocol.PathProcessStdin:       {http.MethodPost, true, s.processStdin, true},
		protocol.PathProcessSignal:      {http.MethodPost, true, s.processSignal, false},
		protocol.PathProcessResize:      {http.MethodPost, true, s.processResize, false},
		protocol.PathCodeRun:            {http.MethodPost, true, s.codeRun, false},
		protocol.PathCodeContexts:       {"", true, s.codeContextsRoute, false},
		protocol.PathCodeContextRestart: {http.MethodPost, true, s.codeContextRestart, false},
		protocol.PathCodeContextRemove:  {http.MethodPost, true, s.codeContextRemove, false},
	}
}

// ServeHTTP routes by hand so that every miss gets a JSON {"detail"}, and
// authenticates before anything else runs.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := s.table[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	if rt.auth && !s.authorized(r) {
		// Whoever has no token gets no connection kept open either.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusUnauthorized, "missing or wrong token")
		return
	}
	if rt.method != "" && r.Method != rt.method { // "": the handler decides
		w.Header().Set("Allow", rt.method)
		writeError(w, http.StatusMethodNotAllowed, r.URL.Path+" takes "+rt.method)
		return
	}
	if !rt.auth {
		// Anyone may call it, so nobody may take for ever to send it.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.settings.headerTimeout))
	}
	if !rt.unbounded {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	}
	rt.handle(w, r)
}

func (s *server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	if sealed, current := s.sealedFor(r); sealed {
		return r.URL.Path == protocol.PathResume && unsealedBy(got, current)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(*s.token.Load())) == 1
}

// tokenMatches says whether got is the agent's token; a sealed agent
// (seal.go) has none.
func (s *server) tokenMatches(got string) bool {
	if sealed, _ := s.sealed(); sealed {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(*s.token.Load())) == 1
}

func (s *server) authenticate(w http.ResponseWriter, r *http.Request) {
	var req protocol.AuthRequest
	if !readJSON(w, r, &req) {
		return
	}
	if !s.tokenMatches(req.Token) {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusUnauthorized, "wrong token")
		return
	}
	writeJSON(w, http.StatusOK, authenticated)
}

// authenticated is the answer to a right token, on either transport.
var authenticated = protocol.AuthResult{Authenticated: true, Capabilities: []string{protocol.CapabilityStdinStreaming, protocol.CapabilitySealed, protocol.CapabilityMux}}

func (s *server) ping(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, protocol.PingResult{Pong: true, Pid: os.Getpid()})
}

// decodeCommand reads and checks an execute request; on failure it has
// already answered 400.
func (s *server) decodeCommand(w http.ResponseWriter, r *http.Request) (*command, bool) {
	var req protocol.ExecRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed body: "+describeJSONError(err))
		return nil, false
	}
	if strings.TrimSpace(req.Command) == "" {
		writeError(w, http.StatusBadRequest, "command is required")
		return nil, false
	}
	if req.Timeout != nil && *req.Timeout < 0 {
		writeError(w, http.StatusBadRequest, "timeout must not be negative")
		return nil, false
	}
	if req.MaxOutput < 0 {
		writeError(w, http.StatusBadRequest, "max_output must not be negative")
		return nil, false
	}
	if req.MaxOutput == 0 {
		req.MaxOutput = s.settings.maxOutput
	}
	c, err := newCommand(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	c.cgroups = s.cgroups
	return c, true
}

// claim refuses a command while one that asked to run alone runs, and
// takes that place for a command that asks for it; release gives it back.
// On refusal it has answered 503, as Quicksand's agent does.
func (s *server) claim(w http.ResponseWriter, c *command) (release func(), ok bool) {
	busy := s.exclusive.Load()
	if !busy && c.req.Exclusive {
		busy = !s.exclusive.CompareAndSwap(false, true)
	}
	if busy {
		writeError(w, http.StatusServiceUnavailable, "Exclusive command in progress")
		return nil, false
	}
	if c.req.Exclusive {
		return func() { s.exclusive.Store(false) }, true
	}
	return func() {}, true
}

// readJSON decodes the request's JSON body into v; on failure it has
// answered 400, saying what is wrong.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed body: "+describeJSONError(err))
		return false
	}
	return true
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "float64", "int64", "int", "ptr":
		return "a number"
	case "map":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return goKind
}

// execute runs a command and answers with all of its output at once. The
// output is held once, in the collectors, and escaped straight into the
// response.
func (s *server) execute(w http.ResponseWriter, r *http.Request) {
	c, ok := s.decodeCommand(w, r)
	if !ok {
		return
	}
	release, ok := s.claim(w, c)
	if !ok {
		return
	}
	defer release()
	ext := extended(r)
	outs := [2]*collector{newCollector(c.req.MaxOutput), newCollector(c.req.MaxOutput)}
	res, counts, err := s.runCommand(r.Context(), c, func(st stream, p []byte) { outs[st.Index()].add(p) })
	if err != nil {
		msg, asResult := failedStart(err, ext)
		if !asResult {
			answerRunError(w, err)
			return
		}
		outs[stderrStream.Index()].add([]byte(msg))
		res = outcome{exitCode: -1}
	}
	if res.timedOut && !ext {
		outs[stderrStream.Index()].add([]byte(timeoutMessage(c)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := resultWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	writeResult(bw, outs[stdoutStream.Index()], outs[stderrStream.Index()], res, counts, ext)
	_ = bw.Flush()
	bw.Reset(nil)
	resultWriters.Put(bw)
	if outs[stdoutStream.Index()].size+outs[stderrStream.Index()].size > bigOutput {
		// Give the guest its memory back now rather than when the Go
		// runtime gets round to it: the guest is small, and snapshots
		// copy every page in use.
		outs = [2]*collector{}
		go debug.FreeOSMemory()
	}
}

// resultWriters buffer /execute answers; reused for the reason readBuffers
// are.
var resultWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// bigOutput is the size of /execute output after which the agent returns
// its freed heap to the guest at once.
const bigOutput = 16 << 20

// failedStart says whether err is a start that Quicksand's agent reports
// as a result (exit code -1, msg on stderr): in its dialect, a start it
// tried and failed. Everything else is an error answer.
func failedStart(err error, ext bool) (msg string, asResult bool) {
	var se *startError
	if ext || !errors.As(err, &se) || se.refused {
		return "", false
	}
	return se.msg, true
}

func answerRunError(w http.ResponseWriter, err error) {
	var se *startError
	if errors.As(err, &se) {
		status := http.StatusBadRequest
		if se.resource {
			status = http.StatusServiceUnavailable
		}
		writeError(w, status, se.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

// executeStream runs a command and sends each chunk of output as an event
// (a Server-Sent Event, or a frame on the serial transport) as soon as it
// is read, then an exit event.
func (s *server) executeStream(w http.ResponseWriter, r *http.Request) {
	c, ok := s.decodeCommand(w, r)
	if !ok {
		return
	}
	release, ok := s.claim(w, c)
	if !ok {
		return
	}
	defer release()
	ext := extended(r)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if id := c.req.StdinID; id != "" {
		lc, stdin, err := s.live.open(id, cancel)
		if err != nil {
			answerRunError(w, err)
			return
		}
		defer s.live.end(id, lc)
		c.stdinPipe = stdin
	}
	sink, err := openEvents(w, r)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot stream: "+err.Error())
		return
	}
	var mu sync.Mutex // the stdout and stderr pumps send concurrently
	sent := false
	var sendErr error
	send := func(ev protocol.Event) {
		mu.Lock()
		defer mu.Unlock()
		if sendErr != nil {
			return // the client is gone; the request context kills the command
		}
		sent = true
		sendErr = sink.sendEvent(encodeEvent(ev, ext))
	}
	if c.stdinPipe != nil {
		send(protocol.Event{Type: protocol.EventReady})
	}
	res, counts, err := s.runCommand(ctx, c, func(st stream, p []byte) {
		text, b64 := protocol.EncodeChunk(p)
		send(protocol.Event{Type: eventType(st), Data: text, DataB64: b64})
	})
	if err != nil {
		msg, asResult := failedStart(err, ext)
		switch {
		case asResult:
			send(protocol.Event{Type: protocol.EventStderr, Data: msg})
			res = outcome{exitCode: -1}
		case !sent:
			answerRunError(w, err)
			return
		default:
			send(protocol.Event{Type: protocol.EventError, Detail: err.Error()})
			return
		}
	}
	if res.timedOut && !ext {
		send(protocol.Event{Type: protocol.EventStderr, Data: timeoutMessage(c) + "\n"})
	}
	code := res.exitCode
	send(protocol.Event{Type: protocol.EventExit, ExitCode: &code, TimedOut: res.timedOut, ChannelBytes: counts})
}

// runCommand runs c, sending its output over the output channel when the
// host asked for that and the channel works (counts then says how much went
// there), or else to inBand, for the answer itself.
func (s *server) runCommand(ctx context.Context, c *command, inBand func(stream, []byte)) (outcome, *protocol.ChannelCounts, error) {
	if c.req.OutputChannel == 0 || !s.ch.usable() {
		res, err := c.run(ctx, inBand)
		return res, nil, err
	}
	cc := s.ch.begin(ctx, c.req.OutputChannel)
	res, err := c.run(ctx, cc.send)
	counts, cerr := cc.end()
	if err == nil {
		err = cerr
	}
	return res, counts, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, protocol.ErrorBody{Detail: detail})
}
