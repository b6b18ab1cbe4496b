package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newTestConsole(t testing.TB) *console {
	t.Helper()
	return newConsoleAt(t, filepath.Join(t.TempDir(), "console.log"))
}

func newConsoleAt(t testing.TB, logPath string) *console {
	t.Helper()
	c, err := newConsole(logPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The console's bounds as docs/reliability.md states them ("the host
// keeps at most 4 KiB of a line and 16 MiB of log"), not the code's
// constants, so that a change of either shows.
const (
	documentedLineMax = 4 << 10
	documentedLogMax  = 16 << 20
)

// checkBounds fails if the console holds more memory than its limits allow.
func checkBounds(t testing.TB, c *console) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) > documentedLineMax || len(c.tail) > consoleTailLines || c.logged > documentedLogMax {
		t.Fatalf("partial %d, %d lines, logged %d", len(c.partial), len(c.tail), c.logged)
	}
	for _, l := range c.tail {
		if len(l) > documentedLineMax {
			t.Fatalf("a %d-byte line kept", len(l))
		}
	}
}

// A guest that writes 64 MiB to its console without a newline costs the
// host a bounded amount of memory and log, and lines after it still count.
func TestConsoleIsBounded(t *testing.T) {
	c := newTestConsole(t)
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for i := 0; i < 64; i++ {
		c.consume(chunk)
		checkBounds(t, c)
	}
	c.consume([]byte("\n" + strings.Repeat("y", 100) + "\nQUICKSAND_AGENT_READY port=1\n"))
	checkBounds(t, c)
	select {
	case <-c.ready:
	default:
		t.Fatal("the ready line after a long line was missed")
	}
	if tail := c.Tail(); !strings.Contains(tail, strings.Repeat("y", 100)) {
		t.Fatalf("tail %q", tail[:100])
	}
	c.log.Close()
	if fi, _ := os.Stat(c.log.Name()); fi.Size() != consoleLogMax {
		t.Fatalf("log of %d bytes", fi.Size())
	}
}

// FuzzConsole feeds arbitrary console output in arbitrary pieces: the
// console never panics and stays within its bounds.
func FuzzConsole(f *testing.F) {
	f.Add([]byte("quicksand-init: started\r\nQUICKSAND_AGENT_READY port=5\n"), 3)
	f.Add(bytes.Repeat([]byte{'a'}, 9000), 7)
	f.Fuzz(func(t *testing.T, out []byte, cut int) {
		// The log goes to /dev/null: a folder per input would make the
		// file system, not the parser, what is measured.
		c := newConsoleAt(t, os.DevNull)
		defer c.log.Close()
		step := 1 + (cut&0xffff)%64
		for len(out) > 0 {
			n := min(step, len(out))
			c.consume(out[:n])
			out = out[n:]
		}
		checkBounds(t, c)
		_ = c.Tail()
	})
}

// The log a snapshot was taken with is read up to the log's own bound, and
// not at all when it is no regular file (a save's folder may hold
// anything): a fifo must not hold a start.
func TestEarlierLogIsBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, consoleLogMax+1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := len(earlierLog(big)); got != consoleLogMax {
		t.Errorf("a %d-byte log gave %d bytes", consoleLogMax+1<<20, got)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte)
	go func() { done <- earlierLog(fifo) }()
	select {
	case got := <-done:
		if got != nil {
			t.Errorf("a fifo gave %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading a fifo as the earlier log blocked")
	}
	if earlierLog(filepath.Join(dir, "missing")) != nil {
		t.Error("a missing log gave bytes")
	}
}
