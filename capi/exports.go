package main

// #include "capi.h"
import "C"

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/quicksand-go/quicksand"
	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// The library version qs_version reports: the project's VERSION file.
var versionCString = C.CString(quicksand.Version)

//export qs_version
func qs_version() *C.char { return versionCString }

//export qs_version_number
func qs_version_number() C.int { return C.int(versionNumber(quicksand.Version)) }

// versionNumber is "major.minor.patch" as major*10000 + minor*100 + patch.
func versionNumber(v string) int {
	n := 0
	for _, part := range strings.SplitN(v, ".", 3) {
		d, _ := strconv.Atoi(part)
		n = n*100 + d
	}
	return n
}

// goBytes views C input as a Go slice for the duration of a call, without
// copying. Decoders copy what they keep.
func goBytes(p *C.uint8_t, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// setBuffer hands b (msgpack) to the caller as a malloc'd qs_buffer.
func setBuffer(out *C.qs_buffer, b []byte) {
	out.len = C.size_t(len(b))
	out.data = (*C.uint8_t)(C.CBytes(b))
}

// setText hands text to the caller as a malloc'd qs_buffer with a NUL after
// its len bytes, not counted in len, so that C can use it as a string
// (quicksand.h, Conventions).
func setText(out *C.qs_buffer, text []byte) {
	b := cAlloc(len(text) + 1)
	b[copy(b, text)] = 0
	out.data, out.len = cPtr(b), C.size_t(len(text))
}

//export qs_sandbox_start
func qs_sandbox_start(config *C.uint8_t, configLen C.size_t, out **C.qs_sandbox, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		if out == nil {
			return invalidHandle("qs_sandbox_start: out is NULL")
		}
		*out = nil
		cfg, err := wire.DecodeConfig(goBytes(config, configLen))
		if err != nil {
			return err
		}
		cfg.Logger = currentLogger()
		sb, err := engine.Start(context.Background(), cfg)
		if err != nil {
			return err
		}
		*out = newHandle(sb)
		return nil
	})
}

// cBuffer is C memory reused across callbacks of one call: callbacks get
// bytes the C side may treat as any malloc'd memory, never Go's heap
// (handing C the engine's own slices was tried: valgrind then saw C's
// reads of them as invalid now and then, so the copy stays).
type cBuffer struct {
	p   unsafe.Pointer
	cap int
}

// fill copies b into the buffer, growing it as needed.
func (c *cBuffer) fill(b []byte) *C.uint8_t {
	if len(b) > c.cap {
		C.free(c.p)
		c.p, c.cap = C.malloc(C.size_t(len(b))), len(b)
	}
	copy(unsafe.Slice((*byte)(c.p), len(b)), b)
	return (*C.uint8_t)(c.p)
}

func (c *cBuffer) free() { C.free(c.p); c.p, c.cap = nil, 0 }

// chunkCaller adapts a C chunk callback to the engine's (nil for a NULL
// one). release frees its buffer once the call is over.
func chunkCaller(fn C.qs_chunk_fn, userData C.uintptr_t) (call func(engine.Stream, []byte) error, release func()) {
	if fn == nil {
		return nil, func() {}
	}
	buf := &cBuffer{}
	return func(s engine.Stream, p []byte) error {
		if len(p) > 0 {
			C.qs_call_chunk(fn, userData, C.int(s), buf.fill(p), C.size_t(len(p)))
		}
		return nil
	}, buf.free
}

// decodeExecute finds the sandbox and decodes the request of an execute.
func decodeExecute(h *C.qs_sandbox, request *C.uint8_t, requestLen C.size_t) (*engine.Sandbox, engine.ExecRequest, error) {
	sb, err := lookup(h)
	if err != nil {
		return nil, engine.ExecRequest{}, err
	}
	req, err := wire.DecodeRequest(goBytes(request, requestLen))
	return sb, req, err
}

// execute runs one decoded request, streaming when onChunk is set. Its
// result is msgpack in C memory (malloc'd), which the caller hands on or
// frees. The engine puts the output straight where the result has it.
func execute(ctx context.Context, sb *engine.Sandbox, req engine.ExecRequest, onChunk func(engine.Stream, []byte) error) ([]byte, error) {
	var buf []byte
	req.OutputMemory = func(stdoutLen, stderrLen int) ([]byte, []byte) {
		buf = cAlloc(wire.ResultSize(stdoutLen, stderrLen))
		return wire.ResultSlots(buf, stdoutLen, stderrLen)
	}
	req.OnOutput = onChunk
	res, err := sb.Execute(ctx, req)
	if err != nil {
		if buf != nil {
			C.free(unsafe.Pointer(cPtr(buf)))
		}
		return nil, err
	}
	if buf == nil {
		return wire.EncodeResult(res, cAlloc), nil
	}
	return wire.EncodeResultInto(buf, res), nil
}

// cAlloc is n bytes of C memory, seen from Go.
func cAlloc(n int) []byte { return unsafe.Slice((*byte)(C.malloc(C.size_t(n))), n) }

// cPtr is the C memory under b (from cAlloc).
func cPtr(b []byte) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))) }

//export qs_sandbox_execute
func qs_sandbox_execute(h *C.qs_sandbox, request *C.uint8_t, requestLen C.size_t,
	onChunk C.qs_chunk_fn, userData C.uintptr_t, result *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		if result == nil {
			return invalidHandle("qs_sandbox_execute: result is NULL")
		}
		result.data, result.len = nil, 0
		sb, req, err := decodeExecute(h, request, requestLen)
		if err != nil {
			return err
		}
		cb, release := chunkCaller(onChunk, userData)
		defer release()
		b, err := execute(context.Background(), sb, req, cb)
		if err != nil {
			return err
		}
		result.data, result.len = cPtr(b), C.size_t(len(b)) // the caller frees it
		return nil
	})
}

//export qs_sandbox_execute_async
func qs_sandbox_execute_async(h *C.qs_sandbox, request *C.uint8_t, requestLen C.size_t,
	onChunk C.qs_chunk_fn, onDone C.qs_done_fn, userData C.uintptr_t, callID *C.uint64_t, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		if onDone == nil {
			return invalidHandle("qs_sandbox_execute_async: on_done is NULL")
		}
		sb, req, err := decodeExecute(h, request, requestLen)
		if err != nil {
			return err
		}
		startAsync(onChunk, onDone, userData, callID, func(ctx context.Context, cb func(engine.Stream, []byte) error) ([]byte, error) {
			return execute(ctx, sb, req, cb)
		})
		return nil
	})
}

// startAsync runs call on its own goroutine, with a call id for
// qs_call_cancel, streaming to on_chunk, and reports through on_done.
func startAsync(onChunk C.qs_chunk_fn, onDone C.qs_done_fn, userData C.uintptr_t, callID *C.uint64_t,
	call func(context.Context, func(engine.Stream, []byte) error) ([]byte, error)) {
	cb, release := chunkCaller(onChunk, userData)
	startCall(onDone, userData, callID, release, func(ctx context.Context) ([]byte, error) { return call(ctx, cb) })
}

// startCall runs call on its own goroutine, with a call id for
// qs_call_cancel, reports through on_done, then releases what the call's
// callbacks held (startAsync's chunk buffer, run_code's event buffer).
func startCall(onDone C.qs_done_fn, userData C.uintptr_t, callID *C.uint64_t, release func(),
	call func(context.Context) ([]byte, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	id := registerCall(cancel)
	if callID != nil {
		*callID = C.uint64_t(id)
	}
	go func() {
		defer release()
		runAsync(ctx, id, call, onDone, userData)
	}()
}

// runAsync runs an asynchronous call and reports it through on_done
// exactly once, whatever happens (a panic included).
func runAsync(ctx context.Context, id uint64, call func(context.Context) ([]byte, error), onDone C.qs_done_fn, userData C.uintptr_t) {
	var b []byte
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = panicError(r)
			}
		}()
		b, err = call(ctx)
	}()
	if cancel, ok := finishCall(id); ok {
		cancel()
	}
	if err != nil {
		cerr := newCError(err)
		defer qs_error_free(cerr)
		C.qs_call_done(onDone, userData, C.qs_status(codeOf(err)), nil, 0, cerr)
		return
	}
	defer C.free(unsafe.Pointer(cPtr(b)))
	C.qs_call_done(onDone, userData, 0, cPtr(b), C.size_t(len(b)), nil)
}

//export qs_call_cancel
func qs_call_cancel(id C.uint64_t) C.qs_status {
	return guard(nil, func() error {
		cancel, ok := finishCall(uint64(id))
		if !ok {
			return invalidHandle(fmt.Sprintf("call %d is unknown or already done", uint64(id)))
		}
		cancel()
		return nil
	})
}

//export qs_sandbox_stop
func qs_sandbox_stop(h *C.qs_sandbox, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		sb, err := lookup(h)
		if err != nil {
			return err
		}
		return sb.Stop(context.Background())
	})
}

//export qs_sandbox_free
func qs_sandbox_free(h *C.qs_sandbox) {
	guard(nil, func() error {
		sb, err := lookup(h)
		if err != nil {
			return err
		}
		dropHandle(h)
		if sb.Remote() {
			// A server's sandbox outlives its handles: it runs until
			// stopped (qs_sandbox_stop) or its idle timeout, so that
			// another process may connect to it.
			return nil
		}
		return sb.Stop(context.Background())
	})
}

//export qs_sandbox_info
func qs_sandbox_info(h *C.qs_sandbox, info *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		if info == nil {
			return invalidHandle("qs_sandbox_info: info is NULL")
		}
		info.data, info.len = nil, 0
		sb, err := lookup(h)
		if err != nil {
			return err
		}
		b, err := wire.EncodeInfo(sb)
		if err != nil {
			return err
		}
		setBuffer(info, b)
		return nil
	})
}

//export qs_sandbox_console_log
func qs_sandbox_console_log(h *C.qs_sandbox, log *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		if log == nil {
			return invalidHandle("qs_sandbox_console_log: log is NULL")
		}
		log.data, log.len = nil, 0
		sb, err := lookup(h)
		if err != nil {
			return err
		}
		b, err := sb.ConsoleLog()
		if err != nil {
			return err
		}
		setText(log, b)
		return nil
	})
}

//export qs_buffer_free
func qs_buffer_free(buf *C.qs_buffer) {
	if buf == nil || buf.data == nil {
		return
	}
	C.free(unsafe.Pointer(buf.data))
	buf.data, buf.len = nil, 0
}

// namedCall runs op on a sandbox with a C string argument (a checkpoint's
// name, a code context's id), which may not be NULL.
func namedCall(h *C.qs_sandbox, arg *C.char, what, argName string, errOut **C.qs_error, op func(*engine.Sandbox, string) error) C.qs_status {
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		if arg == nil {
			return invalidHandle(what + ": the " + argName + " is NULL")
		}
		return op(sb, C.GoString(arg))
	})
}

//export qs_sandbox_checkpoint
func qs_sandbox_checkpoint(h *C.qs_sandbox, tag *C.char, errOut **C.qs_error) C.qs_status {
	return namedCall(h, tag, "qs_sandbox_checkpoint", "name", errOut, func(sb *engine.Sandbox, t string) error {
		return sb.Checkpoint(context.Background(), t)
	})
}

//export qs_sandbox_revert
func qs_sandbox_revert(h *C.qs_sandbox, tag *C.char, errOut **C.qs_error) C.qs_status {
	return namedCall(h, tag, "qs_sandbox_revert", "name", errOut, func(sb *engine.Sandbox, t string) error {
		return sb.Revert(context.Background(), t)
	})
}

//export qs_sandbox_save
func qs_sandbox_save(h *C.qs_sandbox, name *C.char, pathOut *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if pathOut != nil {
		pathOut.data, pathOut.len = nil, 0
	}
	return namedCall(h, name, "qs_sandbox_save", "name", errOut, func(sb *engine.Sandbox, n string) error {
		dir, err := sb.Save(context.Background(), n)
		if err == nil && pathOut != nil {
			setText(pathOut, []byte(dir))
		}
		return err
	})
}

//export qs_save_validate
func qs_save_validate(name *C.char, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		if name == nil {
			return invalidHandle("qs_save_validate: the name is NULL")
		}
		_, err := engine.ValidateSave(C.GoString(name))
		return err
	})
}
