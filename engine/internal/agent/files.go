package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// File operations (docs/protocol.md, "Files"): bytes stream as request and
// answer bodies; nothing here holds a whole file.

// fileQuery is the query of a file route; mode is Unix permission bits
// (protocol.UnixMode), 0 for the agent's default.
func fileQuery(path, user string, mode uint32) string {
	q := url.Values{"path": {path}}
	if user != "" {
		q.Set("user", user)
	}
	if mode != 0 {
		q.Set("mode", strconv.FormatUint(uint64(mode), 8))
	}
	return "?" + q.Encode()
}

// WriteFile sends body as the file at path, with Unix permission bits mode.
func (c *Client) WriteFile(ctx context.Context, path, user string, mode uint32, body io.Reader) (int64, error) {
	return c.send(ctx, protocol.PathFileWrite+fileQuery(path, user, mode), body, "application/octet-stream")
}

// WriteTree sends a tar stream to be unpacked at path.
func (c *Client) WriteTree(ctx context.Context, path, user string, tarStream io.Reader) (int64, error) {
	return c.send(ctx, protocol.PathTreeWrite+fileQuery(path, user, 0), tarStream, "application/x-tar")
}

func (c *Client) send(ctx context.Context, pathAndQuery string, body io.Reader, contentType string) (int64, error) {
	resp, err := c.doRaw(ctx, http.MethodPost, pathAndQuery, body, contentType)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var w protocol.FileWritten
	err = json.NewDecoder(io.LimitReader(resp.Body, smallAnswer)).Decode(&w)
	return w.Bytes, errors.Wrap(err, "reading the answer to a write")
}

// ReadFile returns the file at path as a stream (close it) and its size.
func (c *Client) ReadFile(ctx context.Context, path, user string) (io.ReadCloser, int64, error) {
	resp, err := c.doRaw(ctx, http.MethodGet, protocol.PathFileRead+fileQuery(path, user, 0), nil, "")
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// ReadTree returns a tar stream of path (close it).
func (c *Client) ReadTree(ctx context.Context, path, user string) (io.ReadCloser, error) {
	resp, err := c.doRaw(ctx, http.MethodGet, protocol.PathTreeRead+fileQuery(path, user, 0), nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// FileOp does one of the small file operations.
func (c *Client) FileOp(ctx context.Context, op protocol.FileOp) (protocol.FileOpResult, error) {
	var res protocol.FileOpResult
	// A listing of a big folder is the one large answer here.
	err := c.call(ctx, http.MethodPost, protocol.PathFileOp, op, &res, 256<<20)
	return res, err
}
