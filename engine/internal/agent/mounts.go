package agent

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// ConnectMount opens a connection to the agent and switches it to 9P, held
// by the agent under id for Mount. The connection outlives ctx: ctx bounds
// only the switch.
func (c *Client) ConnectMount(ctx context.Context, id string) (io.ReadWriteCloser, error) {
	// The transport would end an upgraded connection with the request's
	// context; this one ends it only while the switch is under way.
	connCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	req, err := http.NewRequestWithContext(connCtx, http.MethodPost, c.base+protocol.PathMountConnect+"?id="+url.QueryEscape(id), nil)
	if err != nil {
		cancel()
		return nil, errors.Wrap(err, "making the request")
	}
	req.Header.Set("Authorization", "Bearer "+*c.token.Load())
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", protocol.MountUpgrade)
	// The agent hands the connection's socket to the guest's kernel (9P
	// over a file descriptor): a stream of the mux link has none.
	resp, err := c.forwardOnly.Do(req)
	stopped := stop()
	if err != nil {
		cancel()
		return nil, err
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		defer resp.Body.Close()
		cancel()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, smallAnswer))
		return nil, &StatusError{Status: resp.StatusCode, Detail: detailOf(raw)}
	}
	if !stopped {
		cancel()
		conn.Close()
		return nil, ctx.Err()
	}
	return &mountConn{ReadWriteCloser: conn, cancel: cancel}, nil
}

// mountConn ends its context when closed.
type mountConn struct {
	io.ReadWriteCloser
	cancel context.CancelFunc
}

func (c *mountConn) Close() error {
	err := c.ReadWriteCloser.Close()
	c.cancel()
	return err
}

// Mount mounts the connection ConnectMount made under req.ID.
func (c *Client) Mount(ctx context.Context, req protocol.MountRequest) error {
	var answer struct{}
	return c.call(ctx, http.MethodPost, protocol.PathMount, req, &answer, smallAnswer)
}

// Unmount unmounts a guest path (no error when nothing is mounted there).
func (c *Client) Unmount(ctx context.Context, req protocol.UnmountRequest) error {
	var answer struct{}
	return c.call(ctx, http.MethodPost, protocol.PathUnmount, req, &answer, smallAnswer)
}
