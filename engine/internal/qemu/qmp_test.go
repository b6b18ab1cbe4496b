package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeQMP answers like QEMU's monitor: a greeting, then one reply a
// command, with an event thrown in that the client must skip.
func fakeQMP(t *testing.T) string {
	sock, _ := fakeQMPWithLog(t)
	return sock
}

// fakeQMPWithLog is fakeQMP, also telling which commands it received.
func fakeQMPWithLog(t *testing.T) (string, func() []string) {
	var mu sync.Mutex
	var received []string
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
		sc := bufio.NewScanner(conn)
		status := "running"
		for sc.Scan() {
			var cmd struct {
				Execute string          `json:"execute"`
				ID      json.RawMessage `json:"id"`
			}
			json.Unmarshal(sc.Bytes(), &cmd)
			mu.Lock()
			received = append(received, cmd.Execute)
			mu.Unlock()
			conn.Write([]byte(`{"event": "RESUME", "data": {}}` + "\n"))
			id := string(cmd.ID)
			if id == "" {
				id = "null"
			}
			switch cmd.Execute {
			case "fail":
				conn.Write([]byte(`{"error": {"class": "GenericError", "desc": "it failed"}, "id": ` + id + "}\n"))
			case "query-status":
				conn.Write([]byte(`{"return": {"status": "` + status + `"}, "id": ` + id + "}\n"))
			case "x-fill-disk": // QEMU's own words, as 7.2 sends them
				conn.Write([]byte(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "BLOCK_IO_ERROR", "data": {"device": "", "nospace": false, "node-name": "x", "reason": "Input/output error", "operation": "read", "action": "report"}}` + "\n"))
				conn.Write([]byte(`{"timestamp": {"seconds": 1, "microseconds": 3}, "event": "BLOCK_IO_ERROR", "data": {"device": "", "nospace": true, "node-name": "x", "reason": "No space left on device", "operation": "write", "action": "stop"}}` + "\n"))
				conn.Write([]byte(`{"timestamp": {"seconds": 1, "microseconds": 4}, "event": "STOP"}` + "\n"))
				status = "io-error"
				conn.Write([]byte(`{"return": {}, "id": ` + id + "}\n"))
			case "slow": // as a frozen QEMU would: late, and in two pieces
				time.Sleep(150 * time.Millisecond)
				conn.Write([]byte(`{"return": {"st`))
				time.Sleep(50 * time.Millisecond)
				conn.Write([]byte(`atus": "slow"}, "id": ` + id + "}\n"))
			default:
				conn.Write([]byte(`{"return": {}, "id": ` + id + "}\n"))
			}
		}
	}()
	return sock, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), received...)
	}
}

func TestQMPCommandsEventsAndErrors(t *testing.T) {
	ctx := context.Background()
	q, err := DialQMP(ctx, fakeQMP(t))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if st, err := q.Status(ctx); err != nil || st != "running" {
		t.Fatalf("status %q %v", st, err)
	}
	if _, err := q.Execute(ctx, "fail", nil); err == nil || !strings.Contains(err.Error(), "it failed") {
		t.Fatalf("error answer: %v", err)
	}
}

// The block I/O error that went past a command's answer is kept (it says
// why QEMU paused the VM), the latest one; other events are not.
func TestQMPKeepsTheLastBlockIOError(t *testing.T) {
	ctx := context.Background()
	q, err := DialQMP(ctx, fakeQMP(t))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if st, err := q.Status(ctx); err != nil || st != "running" || q.LastBlockIOError() != nil {
		t.Fatalf("before: %q %v %+v", st, err, q.LastBlockIOError())
	}
	if _, err := q.Execute(ctx, "x-fill-disk", nil); err != nil {
		t.Fatal(err)
	}
	st, err := q.Status(ctx)
	want := BlockIOError{Operation: "write", Action: "stop", NoSpace: true, Reason: "No space left on device"}
	if e := q.LastBlockIOError(); err != nil || st != "io-error" || e == nil || *e != want {
		t.Fatalf("after: %q %v %+v", st, err, e)
	}
}

// A call with a deadline must not leave it behind for later calls without
// one (found by make bench: checkpoints failed a minute after the boot).
func TestQMPDeadlineDoesNotOutliveItsCall(t *testing.T) {
	q, err := DialQMP(context.Background(), fakeQMP(t))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if _, err := q.Execute(short, "stop", nil); err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(100 * time.Millisecond)
	if _, err := q.Execute(context.Background(), "cont", nil); err != nil {
		t.Fatalf("a call after an expired deadline: %v", err)
	}
}

// The answer to a command given up on (a frozen QEMU answers late) is never
// taken for the answer to the next one, even when the wait ended mid-line.
func TestQMPLateAnswerIsNotTheNextOnes(t *testing.T) {
	q, err := DialQMP(context.Background(), fakeQMP(t))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	short, cancel := context.WithTimeout(context.Background(), 170*time.Millisecond)
	defer cancel()
	if _, err := q.Execute(short, "slow", nil); err == nil {
		t.Fatal("a command past its deadline succeeded")
	}
	if st, err := q.Status(context.Background()); err != nil || st != "running" {
		t.Fatalf("the next command got %q, %v", st, err)
	}
}

// A caller waiting behind a command QEMU has not answered (frozen) gives
// up at its own deadline, and a caller that gave up sends nothing: a
// "cont" sent after a later "stop" would undo it (found by CI: a save
// waited 12 s behind a given-up checkpoint's retries).
func TestQMPWaitForTheTurnEndsWithTheCaller(t *testing.T) {
	sock, received := fakeQMPWithLog(t)
	q, err := DialQMP(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	done := make(chan error)
	go func() {
		_, err := q.Execute(context.Background(), "slow", nil)
		done <- err
	}()
	time.Sleep(30 * time.Millisecond) // "slow" has the turn
	short, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := q.Execute(short, "cont", nil); err == nil {
		t.Fatal("a call behind an unanswered one succeeded past its deadline")
	}
	if waited := time.Since(start); waited > 120*time.Millisecond {
		t.Errorf("the call waited %v behind the unanswered one; its deadline was 40ms", waited)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st, err := q.Status(context.Background()); err != nil || st != "running" {
		t.Fatalf("the next command got %q, %v", st, err)
	}
	for _, cmd := range received() {
		if cmd == "cont" {
			t.Fatalf("the call that gave up was sent anyway: %v", received())
		}
	}
}
