package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"sync"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Streaming stdin, as Quicksand's clients use it: /execute_stream with a
// stdin_id starts the command with its stdin on a pipe, then each /stdin
// call with that id writes a piece (or closes it), and /cancel kills the
// command. A write blocks while the command does not read: that is the
// back-pressure the client waits on, bounded by the command's timeout.

// liveCall is a streaming command whose stdin the client feeds.
type liveCall struct {
	mu     sync.Mutex // orders writes
	stdin  *os.File   // the pipe's write end
	once   sync.Once
	closed chan struct{}
	cancel context.CancelFunc
}

func (lc *liveCall) closeStdin() {
	lc.once.Do(func() {
		close(lc.closed)
		lc.stdin.Close() // also ends a write blocked on a full pipe
	})
}

func (lc *liveCall) isClosed() bool {
	select {
	case <-lc.closed:
		return true
	default:
		return false
	}
}

// liveCalls are the streaming commands that have a stdin id, by id.
type liveCalls struct {
	mu sync.Mutex
	m  map[string]*liveCall
}

// open registers id and returns the read end for the command's stdin. An id
// already in use is the client's error.
func (l *liveCalls) open(id string, cancel context.CancelFunc) (*liveCall, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.m[id]; dup {
		r.Close()
		w.Close()
		return nil, nil, &startError{msg: "stdin_id " + id + " is already in use", refused: true}
	}
	if l.m == nil {
		l.m = map[string]*liveCall{}
	}
	lc := &liveCall{stdin: w, closed: make(chan struct{}), cancel: cancel}
	l.m[id] = lc
	return lc, r, nil
}

// end forgets id once its command is over; later /stdin calls for it
// answer closed.
func (l *liveCalls) end(id string, lc *liveCall) {
	l.mu.Lock()
	delete(l.m, id)
	l.mu.Unlock()
	lc.closeStdin()
}

func (l *liveCalls) get(id string) *liveCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[id]
}

// stdin writes a piece of input to a live command, or closes its stdin.
// An id that is not (or no longer) running answers closed: the command
// ended before the input reached it, which the client cannot know.
func (s *server) stdin(w http.ResponseWriter, r *http.Request) {
	var req protocol.StdinRequest
	if !readJSON(w, r, &req) {
		return
	}
	data, err := base64.StdEncoding.DecodeString(req.Data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "data is not valid base64: "+err.Error())
		return
	}
	lc := s.live.get(req.StdinID)
	if lc == nil {
		writeJSON(w, http.StatusOK, protocol.StdinResult{Closed: true})
		return
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if len(data) > 0 && !lc.isClosed() {
		if _, err := lc.stdin.Write(data); err != nil {
			// The command closed its stdin or ended: input is over.
			lc.closeStdin()
		}
	}
	if req.EOF {
		lc.closeStdin()
	}
	writeJSON(w, http.StatusOK, protocol.StdinResult{Closed: lc.isClosed()})
}

// cancel kills a live command (and everything it started).
func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	var req protocol.CancelRequest
	if !readJSON(w, r, &req) {
		return
	}
	lc := s.live.get(req.StdinID)
	if lc != nil {
		lc.cancel()
	}
	writeJSON(w, http.StatusOK, protocol.CancelResult{Cancelled: lc != nil})
}
