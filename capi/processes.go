package main

/*
#include "capi.h"
*/
import "C"

import (
	"context"
	"syscall"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// Background processes (include/quicksand.h, "Processes").

//export qs_sandbox_start_process
func qs_sandbox_start_process(h *C.qs_sandbox, request *C.uint8_t, requestLen C.size_t, out *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if out != nil {
		out.data, out.len = nil, 0
	}
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		req, err := wire.DecodeProcessRequest(goBytes(request, requestLen))
		if err != nil {
			return err
		}
		p, err := sb.StartProcess(context.Background(), req)
		if err != nil {
			return err
		}
		if out != nil {
			setBuffer(out, wire.EncodeProcess(p))
		}
		return nil
	})
}

//export qs_sandbox_list_processes
func qs_sandbox_list_processes(h *C.qs_sandbox, list *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if list != nil {
		list.data, list.len = nil, 0
	}
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		if list == nil {
			return invalidHandle("qs_sandbox_list_processes: list is NULL")
		}
		procs, err := sb.Processes(context.Background())
		if err != nil {
			return err
		}
		setBuffer(list, wire.EncodeProcesses(procs))
		return nil
	})
}

// processCall finds the sandbox and the process an id names.
func processCall(h *C.qs_sandbox, id *C.char, what string, errOut **C.qs_error, op func(*engine.Process) error) C.qs_status {
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		if id == nil {
			return invalidHandle(what + ": the process id is NULL")
		}
		return op(sb.Process(C.GoString(id)))
	})
}

//export qs_process_write
func qs_process_write(h *C.qs_sandbox, id *C.char, data *C.uint8_t, dataLen C.size_t, errOut **C.qs_error) C.qs_status {
	return processCall(h, id, "qs_process_write", errOut, func(p *engine.Process) error {
		if data == nil && dataLen > 0 {
			return invalidHandle("qs_process_write: data is NULL")
		}
		return p.Write(context.Background(), goBytes(data, dataLen))
	})
}

//export qs_process_close_stdin
func qs_process_close_stdin(h *C.qs_sandbox, id *C.char, errOut **C.qs_error) C.qs_status {
	return processCall(h, id, "qs_process_close_stdin", errOut, func(p *engine.Process) error {
		return p.CloseStdin(context.Background())
	})
}

//export qs_process_signal
func qs_process_signal(h *C.qs_sandbox, id *C.char, signal C.int, errOut **C.qs_error) C.qs_status {
	return processCall(h, id, "qs_process_signal", errOut, func(p *engine.Process) error {
		return p.Signal(context.Background(), syscall.Signal(signal))
	})
}

//export qs_process_resize
func qs_process_resize(h *C.qs_sandbox, id *C.char, rows, cols C.int, errOut **C.qs_error) C.qs_status {
	return processCall(h, id, "qs_process_resize", errOut, func(p *engine.Process) error {
		return p.Resize(context.Background(), int(rows), int(cols))
	})
}

// attach follows a process to its end; its result is an execute's.
func attach(ctx context.Context, p *engine.Process, cb func(engine.Stream, []byte) error) ([]byte, error) {
	res, err := p.Attach(ctx, 0, cb)
	if err != nil {
		return nil, err
	}
	return wire.EncodeResult(&res.ExecResult, cAlloc), nil
}

//export qs_process_attach
func qs_process_attach(h *C.qs_sandbox, id *C.char, onChunk C.qs_chunk_fn, userData C.uintptr_t, result *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	return processCall(h, id, "qs_process_attach", errOut, func(p *engine.Process) error {
		if result == nil {
			return invalidHandle("qs_process_attach: result is NULL")
		}
		result.data, result.len = nil, 0
		cb, release := chunkCaller(onChunk, userData)
		defer release()
		b, err := attach(context.Background(), p, cb)
		if err != nil {
			return err
		}
		result.data, result.len = cPtr(b), C.size_t(len(b)) // the caller frees it
		return nil
	})
}

// known fails for an id the guest has no process under, before an
// asynchronous attach starts: that failure is the caller's mistake and
// belongs to the call, not to on_done, which a binding hands to a
// background task nobody may be waiting on. The guest looks the id up
// before anything else a signal request asks, and signal 0 is out of range
// there: a known process (running or exited) answers "bad request" and
// nothing is ever sent to it. Any other failure (the sandbox stopped, the
// agent unreachable) is the call's too.
func known(p *engine.Process) error {
	err := p.Signal(context.Background(), 0)
	switch engine.KindOf(err) {
	case engine.KindNotFound:
		return &engine.Error{Kind: engine.KindNotFound, Msg: "attaching to process " + p.ID +
			": no such process (it ended long ago, never started, or a revert removed it)"}
	case engine.KindBadRequest:
		return nil
	}
	return err
}

//export qs_process_attach_async
func qs_process_attach_async(h *C.qs_sandbox, id *C.char, onChunk C.qs_chunk_fn, onDone C.qs_done_fn, userData C.uintptr_t,
	callID *C.uint64_t, errOut **C.qs_error) C.qs_status {
	if callID != nil {
		*callID = 0
	}
	return processCall(h, id, "qs_process_attach_async", errOut, func(p *engine.Process) error {
		if onDone == nil {
			return invalidHandle("qs_process_attach_async: on_done is NULL")
		}
		if err := known(p); err != nil {
			return err
		}
		startAsync(onChunk, onDone, userData, callID, func(ctx context.Context, cb func(engine.Stream, []byte) error) ([]byte, error) {
			return attach(ctx, p, cb)
		})
		return nil
	})
}
