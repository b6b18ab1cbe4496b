package main

// #include "capi.h"
import "C"

import (
	"context"
	"sync"
	"sync/atomic"
	"unsafe"

	pointer "github.com/mattn/go-pointer"

	"github.com/quicksand-go/quicksand/engine"
)

// The handle tables are the only global state of the library: C holds
// opaque keys, Go keeps the objects they stand for.

// newHandle registers a sandbox and returns its opaque C handle.
func newHandle(sb *engine.Sandbox) *C.qs_sandbox {
	return (*C.qs_sandbox)(pointer.Save(sb))
}

// lookup finds the sandbox behind a handle, or says why there is none.
func lookup(h *C.qs_sandbox) (*engine.Sandbox, error) {
	if h == nil {
		return nil, invalidHandle("the sandbox handle is NULL")
	}
	sb, ok := pointer.Restore(unsafe.Pointer(h)).(*engine.Sandbox)
	if !ok {
		return nil, invalidHandle("the sandbox handle is unknown or was freed")
	}
	return sb, nil
}

// withSandbox runs fn on the sandbox behind h, its error reported as every
// call reports one.
func withSandbox(h *C.qs_sandbox, errOut **C.qs_error, fn func(*engine.Sandbox) error) C.qs_status {
	return guard(errOut, func() error {
		sb, err := lookup(h)
		if err != nil {
			return err
		}
		return fn(sb)
	})
}

// dropHandle forgets a handle; later lookups fail.
func dropHandle(h *C.qs_sandbox) { pointer.Unref(unsafe.Pointer(h)) }

// calls maps the ids of asynchronous executes to their cancel functions.
var calls struct {
	sync.Mutex
	next   atomic.Uint64
	cancel map[uint64]context.CancelFunc
}

func registerCall(cancel context.CancelFunc) uint64 {
	id := calls.next.Add(1)
	calls.Lock()
	defer calls.Unlock()
	if calls.cancel == nil {
		calls.cancel = map[uint64]context.CancelFunc{}
	}
	calls.cancel[id] = cancel
	return id
}

// finishCall forgets id; it reports whether the call was still registered.
func finishCall(id uint64) (context.CancelFunc, bool) {
	calls.Lock()
	defer calls.Unlock()
	c, ok := calls.cancel[id]
	delete(calls.cancel, id)
	return c, ok
}
