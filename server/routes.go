package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/quicksand-go/quicksand/engine"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// route is one method and path of the API. public routes need no key.
type route struct {
	method, path string
	public       bool
	handle       func(s *Server, c *call) error
}

// routes is every route the server answers (a test holds it to
// docs/server-openapi.yaml, both ways).
var routes = []route{
	{"GET", api.PathHealth, true, (*Server).health},
	{"GET", api.PathCapacity, false, (*Server).capacity},
	{"GET", api.PathMetrics, false, (*Server).metricsText},
	{"POST", api.PathSandboxes, false, (*Server).create},
	{"GET", api.PathSandboxes, false, (*Server).list},
	{"GET", api.PathSandbox, false, (*Server).get},
	{"DELETE", api.PathSandbox, false, (*Server).remove},
	{"POST", api.PathTimeout, false, (*Server).setTimeout},
	{"POST", api.PathExecute, false, (*Server).execute},
	{"POST", api.PathStream, false, (*Server).executeStream},
	{"GET", api.PathFiles, false, (*Server).readFile},
	{"PUT", api.PathFiles, false, (*Server).writeFile},
	{"POST", api.PathFileOp, false, (*Server).fileOp},
	{"GET", api.PathTree, false, (*Server).readTree},
	{"PUT", api.PathTree, false, (*Server).writeTree},
	{"POST", api.PathProcesses, false, (*Server).startProcess},
	{"GET", api.PathProcesses, false, (*Server).listProcesses},
	{"GET", api.PathOutput, false, (*Server).attach},
	{"POST", api.PathStdin, false, (*Server).writeStdin},
	{"DELETE", api.PathStdin, false, (*Server).closeStdin},
	{"POST", api.PathSignal, false, (*Server).signal},
	{"POST", api.PathResize, false, (*Server).resize},
	{"POST", api.PathCheckpoint, false, (*Server).checkpoint},
	{"POST", api.PathRevert, false, (*Server).revert},
	{"POST", api.PathSave, false, (*Server).save},
	{"PUT", api.PathNetwork, false, (*Server).setNetwork},
	{"GET", api.PathNetwork, false, (*Server).networkStats},
	{"POST", api.PathCodeRun, false, (*Server).runCode},
	{"POST", api.PathCodeContexts, false, (*Server).createCodeContext},
	{"GET", api.PathCodeContexts, false, (*Server).listCodeContexts},
	{"POST", api.PathCodeRestart, false, (*Server).restartCodeContext},
	{"DELETE", api.PathCodeContext, false, (*Server).removeCodeContext},
}

// call is one request being answered: who asked, and the sandbox it names
// once found.
type call struct {
	srv    *Server
	w      http.ResponseWriter
	r      *http.Request
	tenant string
	entry  *entry
	// answered: the handler wrote its answer (an error after that cannot
	// be sent as a status any more).
	answered bool
}

func (c *call) ctx() context.Context { return c.r.Context() }

// json answers with v.
func (c *call) json(status int, v any) error {
	c.answered = true
	writeJSON(c.w, status, v)
	return nil
}

// noContent answers 204.
func (c *call) noContent() error {
	c.answered = true
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) { s.serve(rt, w, r) })
	}
	// Anything else, keyed or not, is the same 404 in the API's shape.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apiError(engine.KindNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// serve authenticates the request, finds its sandbox, runs the route's
// handler, and logs and counts the call.
func (s *Server) serve(rt route, w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	c := &call{srv: s, w: w, r: r}
	err := s.authenticate(rt, c)
	if err == nil && r.PathValue("id") != "" {
		c.entry, err = s.reg.get(c.tenant, r.PathValue("id"))
	}
	if err == nil && c.entry != nil && c.entry.lost != "" && rt.path != api.PathSandbox {
		err = apiError(engine.KindNotRunning, "sandbox %q is lost: %s (delete it to forget it)", c.entry.id, c.entry.lost)
	}
	if err == nil {
		if c.entry != nil {
			defer c.entry.begin()()
		}
		err = rt.handle(s, c)
	}
	status := http.StatusOK
	if !c.answered {
		err = s.restarting(err)
	}
	if err != nil {
		var body any
		body, status = errorBody(err)
		if !c.answered {
			writeJSON(w, status, body)
		}
	}
	s.metrics.request(rt.method+" "+rt.path, err, time.Since(began))
	s.log.Info("request", "method", r.Method, "route", rt.path, "sandbox", r.PathValue("id"),
		"tenant", c.tenant, "status", status, "duration", time.Since(began), "err", err)
	var cut cutShort
	if errors.As(err, &cut) {
		panic(http.ErrAbortHandler) // net/http closes the connection, mid-body
	}
}

// authenticate finds the tenant of the request's key. A request without a
// key, or with a wrong one, gets 401 on every route but the public ones.
func (s *Server) authenticate(rt route, c *call) error {
	if rt.public {
		return nil
	}
	key, ok := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer ")
	if ok {
		c.tenant = s.keys.tenant(strings.TrimSpace(key))
	}
	if c.tenant == "" {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="quicksand"`)
		return apiError(engine.KindAuth, "a valid API key is required (Authorization: Bearer KEY)")
	}
	return nil
}
