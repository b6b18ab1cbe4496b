package engine

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

const (
	consoleTailLines = 40       // lines kept in memory for error messages
	consoleLogMax    = 16 << 20 // the log file stops growing here
	// consoleLineMax bounds a line kept in memory: the guest writes the
	// console and may never end a line.
	consoleLineMax = 4 << 10
)

// console reads the guest's serial console (QEMU's stdout): it writes it to
// the sandbox's console log, keeps the last lines for error messages, and
// notes when the initrd and the agent announce themselves.
type console struct {
	mu       sync.Mutex
	log      *os.File
	logged   int64
	tail     []string
	partial  []byte
	initAt   time.Time
	readyAt  time.Time
	ready    chan struct{} // closed when the agent's ready line is seen
	finished chan struct{} // closed when the console reaches EOF
}

// newConsole creates the log at logPath, starting with earlier output (the
// boot of the snapshot a sandbox resumed from).
func newConsole(logPath string, earlier []byte) (*console, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	n, err := f.Write(earlier)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &console{log: f, logged: int64(n), ready: make(chan struct{}), finished: make(chan struct{})}, nil
}

// earlierLog reads the console log a resumed snapshot was taken with, to
// start the new log with: at most consoleLogMax bytes (a save's folder may
// hold anything), nothing if it is missing or not a regular file.
func earlierLog(path string) []byte {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // a fifo must not hold the start
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(f, consoleLogMax))
	return raw
}

// run consumes r until EOF (QEMU exited).
func (c *console) run(r io.Reader) {
	defer close(c.finished)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			c.consume(buf[:n])
		}
		if err != nil {
			c.mu.Lock()
			if len(c.partial) > 0 {
				c.addLine(string(c.partial))
				c.partial = nil
			}
			c.log.Close()
			c.mu.Unlock()
			return
		}
	}
}

func (c *console) consume(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logged < consoleLogMax {
		n, _ := c.log.Write(p[:min(int64(len(p)), consoleLogMax-c.logged)])
		c.logged += int64(n)
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = appendUpTo(c.partial, p, consoleLineMax)
			return
		}
		line := string(appendUpTo(c.partial, p[:i], consoleLineMax))
		c.partial = c.partial[:0]
		p = p[i+1:]
		c.addLine(strings.TrimRight(line, "\r"))
	}
}

// appendUpTo appends to dst what of p fits within limit bytes.
func appendUpTo(dst, p []byte, limit int) []byte {
	return append(dst, p[:min(len(p), max(0, limit-len(dst)))]...)
}

// addLine is called with mu held.
func (c *console) addLine(line string) {
	switch {
	case strings.HasPrefix(line, protocol.InitStartedLine) && c.initAt.IsZero():
		c.initAt = time.Now()
	case strings.HasPrefix(line, protocol.ReadyLine) && c.readyAt.IsZero():
		c.readyAt = time.Now()
		close(c.ready)
	}
	if line == "" {
		return
	}
	c.tail = append(c.tail, line)
	if len(c.tail) > consoleTailLines {
		c.tail = c.tail[len(c.tail)-consoleTailLines:]
	}
}

// Tail returns the last lines seen, joined.
func (c *console) Tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

func (c *console) times() (initAt, readyAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.initAt, c.readyAt
}

// tailBuffer keeps the last max bytes written to it (QEMU's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte{}, t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
