package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
)

// QMP is a client of QEMU's machine protocol over a unix socket. Commands
// are serialised: QMP answers in order, one command at a time. Each carries
// an id that QEMU echoes, so that the answer to a command given up on (its
// context ended; a frozen QEMU answers later, if ever) is never taken for
// the answer to a later one. The turn to send is taken with the caller's
// context too: a command still waiting for a frozen QEMU must not hold a
// later caller past its own deadline.
type QMP struct {
	turn chan struct{} // holds one token while a command is in flight
	conn net.Conn
	rd   *bufio.Reader
	last uint64 // the id of the last command sent
	// ioError is the last BLOCK_IO_ERROR event that went past.
	ioError atomic.Pointer[BlockIOError]
}

// BlockIOError is QEMU's BLOCK_IO_ERROR event: a read or write of a disk
// failed on the host, and (Action "stop") QEMU paused the VM for it.
type BlockIOError struct {
	Device    string `json:"device"`
	Operation string `json:"operation"` // "read" or "write"
	Action    string `json:"action"`    // "stop", "report" or "ignore"
	NoSpace   bool   `json:"nospace"`   // the host's disk is full
	Reason    string `json:"reason"`    // the host's error, e.g. "No space left on device"
}

// QMPError is an error answer from QEMU.
type QMPError struct {
	Class, Desc string
}

func (e *QMPError) Error() string { return "QMP: " + e.Class + ": " + e.Desc }

// DialQMP connects to QEMU's QMP socket, retrying until QEMU has created
// it or ctx ends, and negotiates capabilities.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	var conn net.Conn
	var err error
	for {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "unix", path)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, errors.Wrapf(err, "connecting to QMP at %s", path)
		case <-time.After(5 * time.Millisecond):
		}
	}
	q := &QMP{turn: make(chan struct{}, 1), conn: conn, rd: bufio.NewReaderSize(conn, 64<<10)}
	if _, err := q.read(ctx); err != nil { // the greeting
		conn.Close()
		return nil, errors.Wrap(err, "reading the QMP greeting")
	}
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }

type qmpMessage struct {
	ID     *uint64         `json:"id"`
	Return json.RawMessage `json:"return"`
	Error  *QMPError       `json:"error"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	QMP    json.RawMessage `json:"QMP"`
}

// deadline is ctx's deadline, or none: a call without one must not inherit
// the deadline of an earlier call that had one.
func deadline(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline()
	return dl
}

func (q *QMP) read(ctx context.Context) (*qmpMessage, error) {
	q.conn.SetReadDeadline(deadline(ctx))
	for {
		line, err := q.rd.ReadBytes('\n')
		if err != nil {
			return nil, errors.Wrap(err, "reading from QMP")
		}
		var m qmpMessage
		if err := json.Unmarshal(line, &m); err != nil {
			// The rest of a line whose start a read given up on took:
			// QEMU itself sends only JSON.
			continue
		}
		return &m, nil
	}
}

// Execute runs one command and returns its "return" value. Events that
// arrive meanwhile are dropped (callers poll state with query commands),
// but for the last block I/O error, which says why a VM was paused.
func (q *QMP) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	select {
	case q.turn <- struct{}{}:
		defer func() { <-q.turn }()
	case <-ctx.Done():
	}
	// Checked again once the turn is taken: a caller that gave up (or was
	// called off) while waiting must not send (select picks at random
	// when both are ready).
	if ctx.Err() != nil {
		return nil, errors.Wrapf(context.Cause(ctx), "waiting to send QMP %s behind an unanswered command", command)
	}
	q.last++
	id := q.last
	msg := map[string]any{"execute": command, "id": id}
	if args != nil {
		msg["arguments"] = args
	}
	raw, _ := json.Marshal(msg)
	q.conn.SetWriteDeadline(deadline(ctx))
	if _, err := q.conn.Write(append(raw, '\n')); err != nil {
		return nil, errors.Wrapf(err, "sending QMP %s", command)
	}
	for {
		m, err := q.read(ctx)
		if err != nil {
			return nil, errors.Wrapf(err, "waiting for QMP %s", command)
		}
		if m.Event == "BLOCK_IO_ERROR" {
			var e BlockIOError
			if json.Unmarshal(m.Data, &e) == nil {
				q.ioError.Store(&e)
			}
		}
		if m.Event != "" || m.ID == nil || *m.ID != id {
			continue // an event, or the answer to a command given up on
		}
		switch {
		case m.Error != nil:
			return nil, errors.Wrapf(m.Error, "QMP %s", command)
		case m.Return != nil:
			return m.Return, nil
		}
	}
}

// HMP runs a human monitor command (savevm, loadvm, ...) and returns its
// output; QEMU reports HMP failures as text, so any output is an error for
// commands that print nothing on success.
func (q *QMP) HMP(ctx context.Context, command string) (string, error) {
	raw, err := q.Execute(ctx, "human-monitor-command", map[string]string{"command-line": command})
	if err != nil {
		return "", err
	}
	var out string
	_ = json.Unmarshal(raw, &out)
	return out, nil
}

// WaitMigration polls query-migrate until the migration completed or
// failed: every 2 ms at first (a warm start's state loads in about 10 ms),
// then less and less often, up to every 20 ms: on a host busy with many
// starts at once a load takes seconds, and each poll costs QEMU's main
// loop and the engine a round trip.
func (q *QMP) WaitMigration(ctx context.Context) error {
	pause := 2 * time.Millisecond
	for polls := 1; ; polls++ {
		raw, err := q.Execute(ctx, "query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		_ = json.Unmarshal(raw, &st)
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return errors.Errorf("migration %s: %s", st.Status, st.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			return errors.Wrap(ctx.Err(), "waiting for the migration")
		case <-time.After(pause):
		}
		if polls >= 10 {
			pause = min(2*pause, 20*time.Millisecond)
		}
	}
}

// Status is the VM's run state ("running", "paused", "inmigrate", ...).
func (q *QMP) Status(ctx context.Context) (string, error) {
	raw, err := q.Execute(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	err = json.Unmarshal(raw, &st)
	return st.Status, errors.Wrap(err, "decoding query-status")
}

// LastBlockIOError is the last block I/O error QEMU reported, nil if none:
// events are read as commands' answers are, so a query (Status) first
// brings one in.
func (q *QMP) LastBlockIOError() *BlockIOError { return q.ioError.Load() }
