package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/internal/protocol"
	api "github.com/quicksand-go/quicksand/internal/serverapi"
)

// fileQuery reads a file route's path and user (every one takes them).
func fileQuery(c *call) (string, engine.FileOptions, error) {
	q := c.r.URL.Query()
	path := q.Get("path")
	if path == "" {
		return "", engine.FileOptions{}, apiError(engine.KindBadRequest, "the query needs a path")
	}
	return path, engine.FileOptions{User: q.Get("user")}, nil
}

func (s *Server) readFile(c *call) error {
	path, opts, err := fileQuery(c)
	if err != nil {
		return err
	}
	if v := c.r.URL.Query().Get("max_size"); v != "" {
		if opts.MaxSize, err = strconv.ParseInt(v, 10, 64); err != nil {
			return apiError(engine.KindBadRequest, "max_size %q is not a number", v)
		}
	}
	w := &lazyBody{c: c, contentType: "application/octet-stream"}
	_, err = c.entry.sb.ReadFile(c.ctx(), path, w, opts)
	return w.finish(err)
}

func (s *Server) writeFile(c *call) error {
	path, opts, err := fileQuery(c)
	if err != nil {
		return err
	}
	if v := c.r.URL.Query().Get("mode"); v != "" {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o7777 {
			return apiError(engine.KindBadRequest, "mode %q is not octal permission bits", v)
		}
		opts.Mode = protocol.FileMode(uint32(m))
	}
	n, err := c.entry.sb.WriteFile(c.ctx(), path, c.r.Body, opts)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, api.FileWritten{Bytes: n})
}

func (s *Server) fileOp(c *call) error {
	var op api.FileOp
	if err := readJSON(c.w, c.r, &op); err != nil {
		return err
	}
	sb, ctx := c.entry.sb, c.ctx()
	opts := engine.FileOptions{User: op.User, Mode: protocol.FileMode(op.Mode), Parents: op.Parents, Recursive: op.Recursive}
	var res api.FileOpResult
	var err error
	switch op.Op {
	case "stat":
		var info *engine.FileInfo
		info, err = sb.Stat(ctx, op.Path, opts)
		switch {
		case err == nil:
			w := wireInfo(*info)
			res.Info = &w
		case errors.Is(err, engine.ErrNotFound):
			// As the agent answers it: no info, so that a missing path
			// is not a 404, which is a missing sandbox's.
			err = nil
		}
	case "list":
		var entries []engine.FileInfo
		if entries, err = sb.ListDir(ctx, op.Path, opts); err == nil {
			res.Entries = []api.FileInfo{}
			for _, e := range entries {
				res.Entries = append(res.Entries, wireInfo(e))
			}
		}
	case "mkdir":
		err = sb.MakeDir(ctx, op.Path, opts)
	case "remove":
		err = sb.Remove(ctx, op.Path, opts)
	case "rename":
		err = sb.Rename(ctx, op.Path, op.Dest, opts)
	default:
		return apiError(engine.KindBadRequest, "op %q is not one of stat, list, mkdir, remove, rename", op.Op)
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, res)
}

// wireInfo is a FileInfo in the agent's own shape, which the API reuses.
func wireInfo(i engine.FileInfo) api.FileInfo {
	return api.FileInfo{Name: i.Name, Type: i.Type, Size: i.Size, Mode: protocol.UnixMode(i.Mode),
		MtimeNs: i.ModTime.UnixNano(), Target: i.Target}
}

func (s *Server) readTree(c *call) error {
	path, opts, err := fileQuery(c)
	if err != nil {
		return err
	}
	w := &lazyBody{c: c, contentType: "application/x-tar"}
	_, err = c.entry.sb.ReadTree(c.ctx(), path, w, opts)
	return w.finish(err)
}

func (s *Server) writeTree(c *call) error {
	path, opts, err := fileQuery(c)
	if err != nil {
		return err
	}
	if err := c.entry.sb.WriteTree(c.ctx(), path, c.r.Body, opts); err != nil {
		return err
	}
	return c.noContent()
}

// lazyBody is a streamed answer whose status is sent with its first byte:
// a call that fails before any byte still answers with its error's
// status and body.
type lazyBody struct {
	c           *call
	contentType string
	started     bool
}

func (b *lazyBody) Write(p []byte) (int, error) {
	if !b.started {
		b.started = true
		b.c.answered = true
		b.c.w.Header().Set("Content-Type", b.contentType)
		b.c.w.WriteHeader(http.StatusOK)
	}
	return b.c.w.Write(p)
}

// finish ends the answer. An error after bytes were sent cannot change
// the status: the connection is cut instead (serve does it once the call
// is logged), so that the client sees a body that ended early rather than
// a complete-looking one.
func (b *lazyBody) finish(err error) error {
	if err != nil && b.started {
		return cutShort{err}
	}
	if err == nil && !b.started {
		b.Write(nil)
	}
	return err
}

// cutShort is the error of an answer that failed after its first byte.
type cutShort struct{ error }

func (e cutShort) Unwrap() error { return e.error }
