package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Code contexts (protocol/code.go): each language has a default context,
// made on first use; more are made on request. A context runs one cell at
// a time; a second waits its turn, as a notebook's cells do.

// defaultCodeCwd is where a context starts when the request names no folder.
const defaultCodeCwd = "/root"

type codeContexts struct {
	mu       sync.Mutex
	byID     map[string]*codeContext
	defaults map[string]string // language → id
}

type codeContext struct {
	info protocol.CodeContext
	// turn is held by the run in progress (and by restart and remove).
	turn chan struct{}
	// Exactly one of these, by language. kernel is nil until the first
	// run, and after it died; it changes under the turn and mu, and remove
	// reads it under mu alone to kill a run in progress.
	mu     sync.Mutex
	kernel *jupyterKernel
	bash   *bashContext
}

func (c *codeContext) setKernel(k *jupyterKernel) {
	c.mu.Lock()
	c.kernel = k
	c.mu.Unlock()
}

func (c *codeContext) take(ctx context.Context) bool {
	select {
	case c.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *codeContext) release() { <-c.turn }

func knownLanguage(lang string) bool {
	return lang == protocol.CodeLanguagePython || lang == protocol.CodeLanguageBash
}

// create makes a context (its kernel starts on its first run, or now with
// start).
func (t *codeContexts) create(req protocol.CodeContextRequest, isDefault bool) (*codeContext, *httpError) {
	if req.Language == "" {
		req.Language = protocol.CodeLanguagePython
	}
	if !knownLanguage(req.Language) {
		return nil, &httpError{http.StatusBadRequest, "unknown language " + quoteJSON(req.Language) + ": python or bash"}
	}
	if req.Language == protocol.CodeLanguagePython && !pythonKernelAvailable() {
		return nil, &httpError{http.StatusBadRequest, "this image has no Python kernel (ipykernel): run Python code in an image that has one, such as debian-python"}
	}
	if req.Cwd == "" {
		req.Cwd = defaultCodeCwd
	}
	if st, err := os.Stat(req.Cwd); err != nil || !st.IsDir() {
		return nil, &httpError{http.StatusBadRequest, "the context's folder " + quoteJSON(req.Cwd) + " is not a folder in the guest"}
	}
	id := randomID()
	c := &codeContext{info: protocol.CodeContext{ID: id, Language: req.Language, Cwd: req.Cwd, Default: isDefault}, turn: make(chan struct{}, 1)}
	if req.Language == protocol.CodeLanguageBash {
		c.bash = newBashContext(id)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID == nil {
		t.byID, t.defaults = map[string]*codeContext{}, map[string]string{}
	}
	if isDefault {
		if d, ok := t.byID[t.defaults[req.Language]]; ok {
			return d, nil // made meanwhile by another call
		}
		t.defaults[req.Language] = id
	}
	t.byID[id] = c
	return c, nil
}

// find returns the context a run names, or the language's default.
func (t *codeContexts) find(id, lang string) (*codeContext, *httpError) {
	if id != "" {
		t.mu.Lock()
		c, ok := t.byID[id]
		t.mu.Unlock()
		if !ok {
			return nil, &httpError{http.StatusNotFound, "no code context " + quoteJSON(id)}
		}
		if lang != "" && lang != c.info.Language {
			return nil, &httpError{http.StatusBadRequest, "context " + id + " runs " + c.info.Language + ", not " + quoteJSON(lang)}
		}
		return c, nil
	}
	if lang == "" {
		lang = protocol.CodeLanguagePython
	}
	t.mu.Lock()
	c, ok := t.byID[t.defaults[lang]]
	t.mu.Unlock()
	if ok {
		return c, nil
	}
	return t.create(protocol.CodeContextRequest{Language: lang}, true)
}

func (t *codeContexts) list() []protocol.CodeContext {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]protocol.CodeContext, 0, len(t.byID))
	for _, c := range t.byID {
		out = append(out, c.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (t *codeContexts) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.byID[id]; ok && t.defaults[c.info.Language] == id {
		delete(t.defaults, c.info.Language)
	}
	delete(t.byID, id)
}

type httpError struct {
	status int
	detail string
}

func quoteJSON(s string) string { raw, _ := json.Marshal(s); return string(raw) }

// ensureKernel starts a Python context's kernel if it has none (first run,
// or the last one died).
func (c *codeContext) ensureKernel(ctx context.Context) error {
	if c.kernel != nil && c.kernel.alive() {
		return nil
	}
	if c.kernel != nil {
		c.kernel.close()
	}
	k, err := startJupyterKernel(ctx, c.info.Cwd, c.info.Default)
	if err != nil {
		return err
	}
	c.setKernel(k)
	return nil
}

// run runs one cell and returns the context's execution count.
func (c *codeContext) run(ctx context.Context, req protocol.CodeRunRequest, emit func(protocol.CodeEvent) error) (int, error) {
	timeout := time.Duration(req.Timeout * float64(time.Second))
	if c.bash != nil {
		return c.bash.run(ctx, c.info.Cwd, req.Code, req.Env, timeout, emit)
	}
	if err := c.ensureKernel(ctx); err != nil {
		return 0, err
	}
	if len(req.Env) > 0 {
		set, restore := envCode(req.Env)
		if _, err := c.kernel.execute(ctx, set, true, 0, emit); err != nil {
			return 0, err
		}
		defer c.kernel.execute(context.Background(), restore, true, 0, emit) //nolint:errcheck // best effort: the kernel may be gone
	}
	n, err := c.kernel.execute(ctx, req.Code, false, timeout, emit)
	if err == errKernelDied {
		c.kernel.close()
		c.setKernel(nil)
	}
	return n, err
}

// restart gives the context fresh state.
func (c *codeContext) restart(ctx context.Context) error {
	if c.bash != nil {
		c.bash.reset()
		return nil
	}
	if c.kernel != nil {
		c.kernel.close()
		c.setKernel(nil)
	}
	return c.ensureKernel(ctx)
}

func (c *codeContext) stop() {
	if c.kernel != nil {
		c.kernel.close()
		c.setKernel(nil)
	}
	if c.bash != nil {
		c.bash.reset()
	}
}

// --- handlers -----------------------------------------------------------------

func (s *server) codeRun(w http.ResponseWriter, r *http.Request) {
	var req protocol.CodeRunRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Language != "" && !knownLanguage(req.Language) {
		writeError(w, http.StatusBadRequest, "unknown language "+quoteJSON(req.Language)+": python or bash")
		return
	}
	if req.Timeout < 0 {
		writeError(w, http.StatusBadRequest, "timeout must not be negative")
		return
	}
	c, herr := s.code.find(req.Context, req.Language)
	if herr != nil {
		writeError(w, herr.status, herr.detail)
		return
	}
	if !c.take(r.Context()) {
		return // the caller left while waiting
	}
	defer c.release()
	// A kernel that cannot start is a bad request, before any event.
	if c.bash == nil {
		if err := c.ensureKernel(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	sink, err := openEvents(w, r)
	if err != nil {
		return
	}
	send := func(ev protocol.CodeEvent) error {
		raw, _ := json.Marshal(ev)
		return sink.sendEvent(raw)
	}
	n, err := c.run(r.Context(), req, send)
	if err == errKernelDied {
		_ = send(protocol.CodeEvent{Type: protocol.CodeEventError, Error: &protocol.CodeError{Name: protocol.CodeErrorKernelDied, Value: err.Error()}})
	} else if err != nil {
		_ = send(protocol.CodeEvent{Type: protocol.CodeEventError, Error: &protocol.CodeError{Name: "AgentError", Value: err.Error()}})
	}
	_ = send(protocol.CodeEvent{Type: protocol.CodeEventEnd, ExecutionCount: n})
}

// codeContexts: POST creates (and starts) one, GET lists them.
func (s *server) codeContextsRoute(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, protocol.CodeContextList{Contexts: s.code.list()})
	case http.MethodPost:
		var req protocol.CodeContextRequest
		if !readJSON(w, r, &req) {
			return
		}
		var c *codeContext
		var herr *httpError
		if req.Default {
			c, herr = s.code.find("", req.Language)
		} else {
			c, herr = s.code.create(req, false)
		}
		if herr != nil {
			writeError(w, herr.status, herr.detail)
			return
		}
		if c.bash == nil {
			c.take(context.Background())
			err := c.ensureKernel(r.Context())
			c.release()
			if err != nil && !req.Default {
				s.code.remove(c.info.ID)
				writeError(w, http.StatusServiceUnavailable, err.Error())
				return
			}
		}
		writeJSON(w, http.StatusOK, c.info)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, protocol.PathCodeContexts+" takes GET or POST")
	}
}

// namedContext reads a CodeContextID request and finds its context; false
// when it answered the request already.
func (s *server) namedContext(w http.ResponseWriter, r *http.Request) (*codeContext, bool) {
	var req protocol.CodeContextID
	if !readJSON(w, r, &req) {
		return nil, false
	}
	if req.ID == "" {
		writeError(w, http.StatusBadRequest, "missing id")
		return nil, false
	}
	c, herr := s.code.find(req.ID, "")
	if herr != nil {
		writeError(w, herr.status, herr.detail)
		return nil, false
	}
	return c, true
}

func (s *server) codeContextRestart(w http.ResponseWriter, r *http.Request) {
	c, ok := s.namedContext(w, r)
	if !ok {
		return
	}
	if !c.take(r.Context()) {
		return
	}
	defer c.release()
	if err := c.restart(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, c.info)
}

func (s *server) codeContextRemove(w http.ResponseWriter, r *http.Request) {
	c, ok := s.namedContext(w, r)
	if !ok {
		return
	}
	s.code.remove(c.info.ID)
	// A run in progress ends now: its kernel is killed under it (a bash
	// cell runs to its end or its timeout).
	c.mu.Lock()
	if c.kernel != nil {
		c.kernel.close()
	}
	c.mu.Unlock()
	c.take(context.Background())
	c.stop()
	c.release()
	writeJSON(w, http.StatusOK, map[string]bool{"removed": true})
}
