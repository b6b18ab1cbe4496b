package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/engine/internal/image"
	"github.com/quicksand-go/quicksand/internal/tree"
)

// DefaultFileTimeout bounds how long a file call (the file and folder
// operations, uploads and downloads) waits on the agent while no byte
// moves either way: a frozen or hung guest fails the call with a transport
// error instead of holding it for ever, while a transfer of any size goes
// on as long as its bytes move. The bytes are counted as the call reads
// them, so a caller's reader (WriteFile's) or writer (ReadFile's) that
// stalls itself for that long fails the call too. A context with a
// deadline is the caller's own bound: it replaces this one, however long
// it is.
const DefaultFileTimeout = 60 * time.Second

// fileStallLimit is DefaultFileTimeout, shortened by tests.
var fileStallLimit = DefaultFileTimeout

// waitingOnTheGuest marks a call whose silence is no fault: one that
// waits for a background process's output or its end, which may come in
// an hour. Only the caller's context and the VM's end bound it.
type waitingOnTheGuest struct{}

// fileCall runs fn against the agent, ended when the caller gives up, the
// VM goes away, a revert throws the call's state away or the agent makes
// no progress for DefaultFileTimeout (fn reports progress by reading
// through noteProgress), and turns what went wrong into the error kind
// that says so.
func (sb *Sandbox) fileCall(ctx context.Context, what string, fn func(context.Context) error) error {
	return sb.fileCallIn(ctx, sb.currentEpoch(), what, fn)
}

// fileCallIn is fileCall in a given epoch (for callers that hold
// sb.snapshots, which currentEpoch takes).
func (sb *Sandbox) fileCallIn(ctx context.Context, epoch context.Context, what string, fn func(context.Context) error) error {
	if cause := context.Cause(sb.alive); cause != nil {
		return newError(KindNotRunning, cause, "%s", what)
	}
	if sb.img.Manifest.Agent == image.AgentQuicksand {
		// It has none of these routes (files, processes, mounts) and
		// answers each 404 with an empty body: a "not found" that said
		// nothing.
		return newError(KindBadRequest, nil, "%s: image %s runs Quicksand's agent, which has no such call (only execute)", what, sb.img.Manifest.Name)
	}
	callCtx, cancelCall := context.WithCancelCause(ctx)
	cancel := func() { cancelCall(context.Canceled) }
	defer cancel()
	if _, ok := ctx.Deadline(); !ok && ctx.Value(waitingOnTheGuest{}) == nil {
		limit := fileStallLimit
		w := watchStalls(limit, func() {
			cancelCall(fmt.Errorf("the agent made no progress for %v", limit))
		})
		defer w.stop()
		callCtx = context.WithValue(callCtx, stallKey{}, w)
	}
	stop := context.AfterFunc(sb.alive, cancel)
	defer stop()
	sb.watchHostPause(callCtx, cancelCall)
	stopEpoch := context.AfterFunc(epoch, cancel)
	defer stopEpoch()
	err := fn(callCtx)
	if err == nil {
		return nil
	}
	var own *Error
	if errors.As(err, &own) {
		return err // fn said what went wrong already
	}
	var se *agent.StatusError
	if errors.As(err, &se) {
		kind := map[int]Kind{
			http.StatusBadRequest:          KindBadRequest,
			http.StatusNotFound:            KindNotFound,
			http.StatusForbidden:           KindPermission,
			http.StatusInsufficientStorage: KindResource,
			http.StatusServiceUnavailable:  KindResource,
			http.StatusConflict:            KindBadRequest,
			http.StatusUnauthorized:        KindAuth,
		}[se.Status]
		if kind != 0 {
			detail := se.Detail
			if detail == "" { // an agent that says nothing still says its status
				detail = fmt.Sprintf("the agent answered %d %s and said nothing more", se.Status, http.StatusText(se.Status))
			}
			return newError(kind, nil, "%s: %s", what, detail)
		}
	}
	if treeRefusal(err) {
		return newError(KindBadRequest, err, "%s", what)
	}
	return sb.callError(ctx, callCtx, epoch, err, what)
}

// treeRefusal says whether err is tree's refusal of what the caller asked
// (a host path that exists, a tree it will not pack): a bad request.
func treeRefusal(err error) bool {
	var bad *tree.BadStreamError
	return errors.As(err, &bad) || errors.Is(err, tree.ErrExists)
}

// stallKey finds a file call's stallWatch in its context.
type stallKey struct{}

// stallWatch calls expire once no progress was noted for its length.
type stallWatch struct {
	length time.Duration
	start  time.Time
	last   atomic.Int64 // when progress was last noted, since start
	timer  *time.Timer
	expire func()
}

func watchStalls(length time.Duration, expire func()) *stallWatch {
	w := &stallWatch{length: length, start: time.Now(), expire: expire}
	w.timer = time.AfterFunc(length, w.check)
	return w
}

// moved notes progress; it costs an atomic store, so it can be called for
// every read of a transfer.
func (w *stallWatch) moved() { w.last.Store(int64(time.Since(w.start))) }

// check runs when the timer fires: the call expires unless it moved since,
// and then it is looked at again when it would expire.
func (w *stallWatch) check() {
	idle := time.Since(w.start) - time.Duration(w.last.Load())
	if idle >= w.length {
		w.expire()
		return
	}
	w.timer.Reset(w.length - idle)
}

func (w *stallWatch) stop() { w.timer.Stop() }

// noteProgress is r, whose reads count as progress of the file call ctx
// belongs to: the request body a transfer sends, or the answer it reads.
func noteProgress(ctx context.Context, r io.Reader) io.Reader {
	w, _ := ctx.Value(stallKey{}).(*stallWatch)
	if w == nil {
		return r
	}
	return &watchedReader{r: r, w: w}
}

type watchedReader struct {
	r io.Reader
	w *stallWatch
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.moved()
	}
	return n, err
}

// checkPaths refuses a path with a NUL byte before anything is done: no
// system call takes one, and a C string ends at it, so what the caller
// named and what would be used could differ ('/tmp/ok\x00/../../etc/x').
// op names the call without its paths: the error quotes them, never
// carrying the NUL into a message that may become a C string.
func checkPaths(op string, paths ...string) error {
	for _, p := range paths {
		if strings.IndexByte(p, 0) >= 0 {
			return newError(KindBadRequest, nil, "%s: the path %q contains a NUL byte", op, p)
		}
	}
	return nil
}
