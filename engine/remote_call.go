package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/pkg/errors"
)

// A remote call is ended by the caller's context, by the sandbox's Stop
// (as a local sandbox's calls end when it stops), and by a bound of its
// own where a local call has one: a server that takes the connection and
// then says nothing must not hold the caller for ever.

// remoteStallLimit bounds how long a remote file call waits while no byte
// moves. The server's own call to its guest has DefaultFileTimeout: this
// one is longer, so that the server's error (which says why) comes first.
var remoteStallLimit = DefaultFileTimeout + 30*time.Second

// remoteExecMargin is added to a command's timeout to bound its remote
// call (the server adds its own margin to the guest's, and the output
// still has to cross the network).
const remoteExecMargin = 4 * transportMargin

// remoteSnapshotLimit bounds a checkpoint, revert or save whose caller set
// no deadline: the server bounds its own by the sandbox's memory, which
// the client does not know; this is that bound for a large one.
const remoteSnapshotLimit = 30 * time.Minute

// callBound sets up a call's own bound on ctx: expire ends the call with
// the reason. It returns the call's context and what stops the bound.
type callBound func(ctx context.Context, expire func(error)) (context.Context, func())

// stallBound ends a call that moves no byte for remoteStallLimit, unless
// the caller set a deadline (its own bound) or waits on the guest.
func stallBound(ctx context.Context, expire func(error)) (context.Context, func()) {
	if _, ok := ctx.Deadline(); ok || ctx.Value(waitingOnTheGuest{}) != nil {
		return ctx, func() {}
	}
	limit := remoteStallLimit
	w := watchStalls(limit, func() { expire(fmt.Errorf("the server made no progress for %v", limit)) })
	return context.WithValue(ctx, stallKey{}, w), w.stop
}

// fixedBound ends a call that takes longer than limit, unless the caller
// set a deadline.
func fixedBound(limit time.Duration) callBound {
	return func(ctx context.Context, expire func(error)) (context.Context, func()) {
		if _, ok := ctx.Deadline(); ok {
			return ctx, func() {}
		}
		t := time.AfterFunc(limit, func() { expire(fmt.Errorf("the server did not answer within %v", limit)) })
		return ctx, func() { t.Stop() }
	}
}

// unbounded is the bound of a call that may wait as long as its caller
// likes (attaching to a process that is silent for an hour).
func unbounded(ctx context.Context, _ func(error)) (context.Context, func()) {
	return ctx, func() {}
}

// run runs fn against the server within ctx, alive (nil: no sandbox, as
// for a list) and bound, and says what went wrong as the engine's error.
func (c *remoteClient) run(ctx, alive context.Context, what string, bound callBound, fn func(context.Context) error) error {
	if alive != nil {
		if cause := context.Cause(alive); cause != nil {
			return newError(KindNotRunning, cause, "%s", what)
		}
	}
	callCtx, cancelCall := context.WithCancelCause(ctx)
	defer cancelCall(context.Canceled)
	if alive != nil {
		stop := context.AfterFunc(alive, func() { cancelCall(context.Canceled) })
		defer stop()
	}
	boundCtx, stopBound := bound(callCtx, func(why error) { cancelCall(why) })
	defer stopBound()
	err := fn(boundCtx)
	if err == nil {
		return nil
	}
	if alive != nil {
		if cause := context.Cause(alive); cause != nil {
			return newError(KindNotRunning, cause, "%s", what)
		}
	}
	if ctx.Err() != nil {
		return newError(KindCancelled, context.Cause(ctx), "%s", what)
	}
	var own *Error
	if errors.As(err, &own) {
		return err // the server's answer, or a check that said why
	}
	if treeRefusal(err) {
		return newError(KindBadRequest, err, "%s", what)
	}
	if callCtx.Err() != nil {
		return newError(KindTransport, context.Cause(callCtx), "%s: the server %s", what, c.server)
	}
	return newError(KindTransport, err, "%s: talking to the server %s", what, c.server)
}
