package engine

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/quicksand-go/quicksand/internal/protocol"
	"github.com/quicksand-go/quicksand/internal/serverapi"
)

// Files of a server's sandbox: the same calls as guestfiles.go, checked
// there before they come here, with bytes streamed as request and answer
// bodies and the same stall bound (stallBound) as a local file call.

// fileQuery is a file route's query.
func fileQuery(path, user string) url.Values {
	q := url.Values{"path": {path}}
	if user != "" {
		q.Set("user", user)
	}
	return q
}

func (r *remoteSandbox) writeFile(ctx context.Context, path string, body io.Reader, opts FileOptions) (int64, error) {
	q := fileQuery(path, opts.User)
	if opts.Mode != 0 {
		q.Set("mode", strconv.FormatUint(uint64(protocol.UnixMode(opts.Mode)), 8))
	}
	var written serverapi.FileWritten
	err := r.c.run(ctx, r.alive, "writing "+path, stallBound, func(ctx context.Context) error {
		resp, err := r.c.do(ctx, http.MethodPut, route(serverapi.PathFiles, r.id), q, noteProgress(ctx, body), "application/octet-stream")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return decodeLimited(resp.Body, &written, remoteSmallAnswer)
	})
	return written.Bytes, err
}

// readFile asks the server for at most limit bytes (0 or less: no limit)
// and holds it to that whatever it sends, as a local read holds a guest.
func (r *remoteSandbox) readFile(ctx context.Context, path string, w io.Writer, user string, limit int64) (int64, error) {
	q := fileQuery(path, user)
	q.Set("max_size", strconv.FormatInt(max(limit, -1), 10))
	what := "reading " + path
	var n int64
	err := r.c.run(ctx, r.alive, what, stallBound, func(ctx context.Context) error {
		resp, err := r.c.do(ctx, http.MethodGet, route(serverapi.PathFiles, r.id), q, nil, "")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err = copyFile(ctx, what, w, resp.Body, resp.ContentLength, limit)
		return err
	})
	return n, err
}

// fileOp does stat, list, mkdir, remove or rename; guestfiles.go checks
// what it answers as it checks a guest's.
func (r *remoteSandbox) fileOp(ctx context.Context, op protocol.FileOp, what string) (protocol.FileOpResult, error) {
	var res protocol.FileOpResult
	err := r.c.run(ctx, r.alive, what, stallBound, func(ctx context.Context) error {
		return r.c.call(ctx, http.MethodPost, route(serverapi.PathFileOp, r.id), nil, op, &res, remoteListAnswer)
	})
	if op.Op == "stat" && KindOf(err) == KindNotFound {
		// A path that is not there, or a sandbox the server no longer
		// has: both are 404. For the first, an answer without info, as a
		// guest's, which Stat turns into its own KindNotFound and Exists
		// into no; the second is asked.
		if _, gone := r.c.describe(ctx, r.alive, r.id); gone != nil {
			return res, gone
		}
		return protocol.FileOpResult{}, nil
	}
	return res, err
}

func (r *remoteSandbox) writeTree(ctx context.Context, what, guestPath string, tarStream io.Reader, user string) error {
	return r.c.run(ctx, r.alive, what, stallBound, func(ctx context.Context) error {
		resp, err := r.c.do(ctx, http.MethodPut, route(serverapi.PathTree, r.id), fileQuery(guestPath, user), noteProgress(ctx, tarStream), "application/x-tar")
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
}

func (r *remoteSandbox) readTree(ctx context.Context, what, guestPath, user string, consume func(context.Context, io.Reader) error) error {
	return r.c.run(ctx, r.alive, what, stallBound, func(ctx context.Context) error {
		resp, err := r.c.do(ctx, http.MethodGet, route(serverapi.PathTree, r.id), fileQuery(guestPath, user), nil, "")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return consume(ctx, resp.Body)
	})
}
