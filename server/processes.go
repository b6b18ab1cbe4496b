package server

import (
	"net/http"
	"strconv"
	"syscall"

	"github.com/quicksand-go/quicksand/engine"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

func (s *Server) startProcess(c *call) error {
	var req api.ProcessRequest
	if err := readJSON(c.w, c.r, &req); err != nil {
		return err
	}
	preq := engine.ProcessRequest{Command: req.Command, Cwd: req.Cwd, Shell: req.Shell, Env: req.Env, User: req.User}
	if req.PTY != nil {
		preq.PTY = &engine.TerminalSize{Rows: req.PTY.Rows, Cols: req.PTY.Cols}
	}
	p, err := c.entry.sb.StartProcess(c.ctx(), preq)
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, api.ProcessInfo{ID: p.ID, PID: p.PID, Command: req.Command, PTY: req.PTY != nil})
}

func (s *Server) listProcesses(c *call) error {
	list, err := c.entry.sb.Processes(c.ctx())
	if err != nil {
		return err
	}
	out := api.ProcessList{Processes: []api.ProcessInfo{}}
	for _, p := range list {
		out.Processes = append(out.Processes, api.ProcessInfo{ID: p.ID, PID: p.PID, Command: p.Command, PTY: p.PTY})
	}
	return c.json(http.StatusOK, out)
}

// process is the handle of the route's process.
func process(c *call) *engine.Process { return c.entry.sb.Process(c.r.PathValue("process")) }

// attach streams the process's output until it exits. The first failure
// (an unknown process) comes before the stream opens, as a status.
func (s *Server) attach(c *call) error {
	var maxOutput int64
	if v := c.r.URL.Query().Get("max_output"); v != "" {
		var err error
		if maxOutput, err = strconv.ParseInt(v, 10, 64); err != nil || maxOutput < 0 {
			return apiError(engine.KindBadRequest, "max_output %q is not a byte count", v)
		}
	}
	var st *eventStream
	res, err := process(c).Attach(c.ctx(), maxOutput, func(stream engine.Stream, p []byte) error {
		if st == nil {
			var err error
			if st, err = openStream(c); err != nil {
				return err
			}
		}
		return st.chunk(stream, p)
	})
	if st == nil {
		if err != nil {
			return err
		}
		if st, err = openStream(c); err != nil {
			return err
		}
	}
	var end api.ExecResult
	if res != nil {
		end = resultOf(&res.ExecResult, false)
		end.Dropped = res.Dropped
	}
	return st.end(end, err)
}

func (s *Server) writeStdin(c *call) error {
	if err := process(c).WriteFrom(c.ctx(), c.r.Body); err != nil {
		return err
	}
	return c.noContent()
}

func (s *Server) closeStdin(c *call) error {
	if err := process(c).CloseStdin(c.ctx()); err != nil {
		return err
	}
	return c.noContent()
}

func (s *Server) signal(c *call) error {
	var req api.Signal
	if err := readJSON(c.w, c.r, &req); err != nil {
		return err
	}
	if req.Signal < 1 || req.Signal > 64 {
		return apiError(engine.KindBadRequest, "signal %d is not a signal number (1-64)", req.Signal)
	}
	if err := process(c).Signal(c.ctx(), syscall.Signal(req.Signal)); err != nil {
		return err
	}
	return c.noContent()
}

func (s *Server) resize(c *call) error {
	var req api.TerminalSize
	if err := readJSON(c.w, c.r, &req); err != nil {
		return err
	}
	if err := process(c).Resize(c.ctx(), req.Rows, req.Cols); err != nil {
		return err
	}
	return c.noContent()
}
