package main

/*
#include "capi.h"
*/
import "C"

import (
	"context"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// The code interpreter (include/quicksand.h, "Code interpreter").

// eventCaller sets the request's callbacks to hand each event to a C event
// callback as a msgpack map, in order (none for a NULL one). As with
// execute's chunks, the C side gets C memory, reused from one event to the
// next; release frees it once the call is over.
func eventCaller(fn C.qs_event_fn, userData C.uintptr_t, req *engine.CodeRequest) (release func()) {
	if fn == nil {
		return func() {}
	}
	buf := &cBuffer{}
	send := func(b []byte) error {
		C.qs_call_event(fn, userData, buf.fill(b), C.size_t(len(b)))
		return nil
	}
	req.OnStdout = func(s string) error { return send(wire.EncodeCodeText("stdout", s)) }
	req.OnStderr = func(s string) error { return send(wire.EncodeCodeText("stderr", s)) }
	req.OnResult = func(r engine.CodeResult) error { return send(wire.EncodeCodeResult(r)) }
	req.OnError = func(e engine.CodeError) error { return send(wire.EncodeCodeError(e)) }
	return buf.free
}

// runCode runs one decoded request; its result is msgpack in C memory.
func runCode(ctx context.Context, sb *engine.Sandbox, req engine.CodeRequest) ([]byte, error) {
	ex, err := sb.RunCode(ctx, req)
	if err != nil {
		return nil, err
	}
	b := wire.EncodeExecution(ex)
	out := cAlloc(len(b))
	copy(out, b)
	return out, nil
}

//export qs_sandbox_run_code
func qs_sandbox_run_code(h *C.qs_sandbox, request *C.uint8_t, requestLen C.size_t,
	onEvent C.qs_event_fn, userData C.uintptr_t, result *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if result != nil {
		result.data, result.len = nil, 0
	}
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		if result == nil {
			return invalidHandle("qs_sandbox_run_code: result is NULL")
		}
		req, err := wire.DecodeCodeRequest(goBytes(request, requestLen))
		if err != nil {
			return err
		}
		release := eventCaller(onEvent, userData, &req)
		defer release()
		b, err := runCode(context.Background(), sb, req)
		if err != nil {
			return err
		}
		result.data, result.len = cPtr(b), C.size_t(len(b)) // the caller frees it
		return nil
	})
}

//export qs_sandbox_run_code_async
func qs_sandbox_run_code_async(h *C.qs_sandbox, request *C.uint8_t, requestLen C.size_t,
	onEvent C.qs_event_fn, onDone C.qs_done_fn, userData C.uintptr_t, callID *C.uint64_t, errOut **C.qs_error) C.qs_status {
	if callID != nil {
		*callID = 0
	}
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		if onDone == nil {
			return invalidHandle("qs_sandbox_run_code_async: on_done is NULL")
		}
		req, err := wire.DecodeCodeRequest(goBytes(request, requestLen))
		if err != nil {
			return err
		}
		release := eventCaller(onEvent, userData, &req)
		startCall(onDone, userData, callID, release, func(ctx context.Context) ([]byte, error) {
			return runCode(ctx, sb, req)
		})
		return nil
	})
}

//export qs_sandbox_create_code_context
func qs_sandbox_create_code_context(h *C.qs_sandbox, options *C.uint8_t, optionsLen C.size_t, out *C.qs_buffer,
	errOut **C.qs_error) C.qs_status {
	if out != nil {
		out.data, out.len = nil, 0
	}
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		opts, err := wire.DecodeCodeContextOptions(goBytes(options, optionsLen))
		if err != nil {
			return err
		}
		c, err := sb.CreateCodeContext(context.Background(), opts)
		if err != nil {
			return err
		}
		if out != nil {
			setBuffer(out, wire.EncodeCodeContext(c))
		}
		return nil
	})
}

//export qs_sandbox_list_code_contexts
func qs_sandbox_list_code_contexts(h *C.qs_sandbox, list *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if list != nil {
		list.data, list.len = nil, 0
	}
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		if list == nil {
			return invalidHandle("qs_sandbox_list_code_contexts: list is NULL")
		}
		contexts, err := sb.CodeContexts(context.Background())
		if err != nil {
			return err
		}
		setBuffer(list, wire.EncodeCodeContexts(contexts))
		return nil
	})
}

//export qs_sandbox_restart_code_context
func qs_sandbox_restart_code_context(h *C.qs_sandbox, contextID *C.char, errOut **C.qs_error) C.qs_status {
	return namedCall(h, contextID, "qs_sandbox_restart_code_context", "context id", errOut, func(sb *engine.Sandbox, id string) error {
		return sb.RestartCodeContext(context.Background(), id)
	})
}

//export qs_sandbox_remove_code_context
func qs_sandbox_remove_code_context(h *C.qs_sandbox, contextID *C.char, errOut **C.qs_error) C.qs_status {
	return namedCall(h, contextID, "qs_sandbox_remove_code_context", "context id", errOut, func(sb *engine.Sandbox, id string) error {
		return sb.RemoveCodeContext(context.Background(), id)
	})
}
