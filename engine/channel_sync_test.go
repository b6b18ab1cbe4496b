package engine

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
)

// hostileChannel is a sandbox's output channel whose guest end, after a
// revert, never writes the sync frame the host waits for (an agent from
// before sync frames, or a hostile one): it sends junk instead, forever.
func hostileChannel(t *testing.T) *Sandbox {
	t.Helper()
	path := filepath.Join(t.TempDir(), "channel.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		junk := []byte(strings.Repeat("QSDF no frame here ", 1000))
		for {
			if _, err := c.Write(junk); err != nil {
				return
			}
		}
	}()
	ch, err := agent.DialChannel(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	sb := &Sandbox{channel: ch, client: agent.New("127.0.0.1:1", "token"), alive: context.Background(),
		cfg: Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	sb.client.SetChannel(ch)
	return sb
}

// A guest that does not mark its place after a revert costs the sandbox its
// output channel (output comes in the agent's answers from then on), never
// a hang: whether the agent says it wrote no mark, or says it did and the
// mark never comes.
func TestChannelGivenUpWithoutTheMark(t *testing.T) {
	sb := hostileChannel(t)
	nonce, found := sb.expectChannelSync()
	if nonce == 0 || found == nil {
		t.Fatal("no sync asked for on a working channel")
	}
	sb.awaitChannelSync(context.Background(), false, found)
	if ok, why := sb.OutputChannel(); ok || why == nil || !strings.Contains(why.Error(), "did not mark its place") {
		t.Fatalf("after an agent that wrote no mark: channel in use %v (%v)", ok, why)
	}
	if n, f := sb.expectChannelSync(); n != 0 || f != nil {
		t.Fatal("a sync asked for on a channel given up")
	}

	sb = hostileChannel(t)
	_, found = sb.expectChannelSync()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	sb.awaitChannelSync(ctx, true, found)
	if ok, why := sb.OutputChannel(); ok || why == nil {
		t.Fatalf("after a mark that never came: channel in use %v (%v)", ok, why)
	}
	if waited := time.Since(began); waited > syncLimit {
		t.Fatalf("waited %v for the mark, past the caller's deadline", waited)
	}
}
