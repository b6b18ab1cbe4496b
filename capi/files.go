package main

/*
#include "capi.h"
*/
import "C"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// File operations (include/quicksand.h, "Files").

// fileCall runs op on a sandbox with a path argument and a request map.
func fileCall(h *C.qs_sandbox, path *C.char, req *C.uint8_t, reqLen C.size_t, what string, errOut **C.qs_error,
	op func(context.Context, *engine.Sandbox, string, wire.FileRequest) error) C.qs_status {
	return guard(errOut, func() error {
		sb, err := lookup(h)
		if err != nil {
			return err
		}
		if path == nil {
			return invalidHandle(what + ": the path is NULL")
		}
		r, err := wire.DecodeFileRequest(goBytes(req, reqLen))
		if err != nil {
			return err
		}
		ctx, cancel := fileContext(r)
		defer cancel()
		return op(ctx, sb, C.GoString(path), r)
	})
}

// fileContext is a file call's context: with the request's timeout, the
// caller's bound on the whole call (it replaces the engine's default bound,
// on a call that makes no progress).
func fileContext(r wire.FileRequest) (context.Context, context.CancelFunc) {
	if r.Timeout <= 0 {
		return context.Background(), func() {}
	}
	return context.WithTimeoutCause(context.Background(), r.Timeout, fmt.Errorf("its timeout of %v passed", r.Timeout))
}

//export qs_sandbox_write_file
func qs_sandbox_write_file(h *C.qs_sandbox, path *C.char, data *C.uint8_t, dataLen C.size_t,
	options *C.uint8_t, optionsLen C.size_t, errOut **C.qs_error) C.qs_status {
	return fileCall(h, path, options, optionsLen, "qs_sandbox_write_file", errOut, func(ctx context.Context, sb *engine.Sandbox, p string, r wire.FileRequest) error {
		if data == nil && dataLen > 0 {
			return invalidHandle("qs_sandbox_write_file: data is NULL")
		}
		_, err := sb.WriteFile(ctx, p, bytes.NewReader(goBytes(data, dataLen)), engine.FileOptions{Mode: r.Mode, User: r.User})
		return err
	})
}

//export qs_sandbox_read_file
func qs_sandbox_read_file(h *C.qs_sandbox, path *C.char, options *C.uint8_t, optionsLen C.size_t,
	out *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if out != nil {
		out.data, out.len = nil, 0
	}
	return fileCall(h, path, options, optionsLen, "qs_sandbox_read_file", errOut, func(ctx context.Context, sb *engine.Sandbox, p string, r wire.FileRequest) error {
		if out == nil {
			return invalidHandle("qs_sandbox_read_file: out is NULL")
		}
		var mem cMemory
		if _, err := sb.ReadFile(ctx, p, &mem, engine.FileOptions{User: r.User, MaxSize: r.MaxSize}); err != nil {
			mem.free()
			return err
		}
		out.data, out.len = (*C.uint8_t)(mem.p), C.size_t(mem.n) // the caller frees it
		return nil
	})
}

// cMemory is an io.Writer into C memory (malloc'd, grown with realloc): a
// file read for a C caller is copied once, straight where the caller reads
// it, instead of into Go's heap first (a growing buffer there held up to
// twice the file, and the copy out once more).
type cMemory struct {
	p    unsafe.Pointer
	n, c int
}

// Grow makes room for n more bytes (the engine tells the file's size
// first); a failure shows at the next Write.
func (m *cMemory) Grow(n int) { _ = m.reserve(n) }

func (m *cMemory) reserve(more int) error {
	if m.n+more <= m.c {
		return nil
	}
	c := max(m.n+more, 2*m.c, 64<<10)
	p := C.realloc(m.p, C.size_t(c))
	if p == nil {
		return fmt.Errorf("the host could not allocate %d bytes", c)
	}
	m.p, m.c = p, c
	return nil
}

func (m *cMemory) Write(b []byte) (int, error) {
	if err := m.reserve(len(b)); err != nil {
		return 0, err
	}
	copy(unsafe.Slice((*byte)(m.p), m.c)[m.n:], b)
	m.n += len(b)
	return len(b), nil
}

func (m *cMemory) free() {
	C.free(m.p)
	*m = cMemory{}
}

//export qs_sandbox_file_op
func qs_sandbox_file_op(h *C.qs_sandbox, request *C.uint8_t, requestLen C.size_t, result *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if result != nil {
		result.data, result.len = nil, 0
	}
	return guard(errOut, func() error {
		sb, err := lookup(h)
		if err != nil {
			return err
		}
		r, err := wire.DecodeFileRequest(goBytes(request, requestLen))
		if err != nil {
			return err
		}
		ctx, cancel := fileContext(r)
		defer cancel()
		// Every option goes to every operation: one that does not take it
		// fails with a message that names it.
		opts := engine.FileOptions{User: r.User, Mode: r.Mode, Parents: r.Parents, Recursive: r.Recursive, MaxSize: r.MaxSize}
		var answer []byte
		switch r.Op {
		case "stat":
			info, err := sb.Stat(ctx, r.Path, opts)
			if err != nil && !errors.Is(err, engine.ErrNotFound) {
				return err
			}
			answer = wire.EncodeFileResult(info, nil, false)
		case "list":
			entries, err := sb.ListDir(ctx, r.Path, opts)
			if err != nil {
				return err
			}
			answer = wire.EncodeFileResult(nil, entries, true)
		case "mkdir":
			err = sb.MakeDir(ctx, r.Path, opts)
		case "remove":
			err = sb.Remove(ctx, r.Path, opts)
		case "rename":
			err = sb.Rename(ctx, r.Path, r.Dest, opts)
		default:
			return &engine.Error{Kind: engine.KindBadRequest, Msg: "file request key \"op\" must be one of stat, list, mkdir, remove, rename, not " + quoted(r.Op)}
		}
		if err != nil {
			return err
		}
		if result != nil && answer != nil {
			setBuffer(result, answer)
		}
		return nil
	})
}

//export qs_sandbox_upload
func qs_sandbox_upload(h *C.qs_sandbox, hostPath, guestPath *C.char, options *C.uint8_t, optionsLen C.size_t, errOut **C.qs_error) C.qs_status {
	return copyCall(h, hostPath, guestPath, options, optionsLen, "qs_sandbox_upload", errOut, func(ctx context.Context, sb *engine.Sandbox, a, b string, o engine.FileOptions) error {
		return sb.Upload(ctx, a, b, o)
	})
}

//export qs_sandbox_download
func qs_sandbox_download(h *C.qs_sandbox, guestPath, hostPath *C.char, options *C.uint8_t, optionsLen C.size_t, errOut **C.qs_error) C.qs_status {
	return copyCall(h, guestPath, hostPath, options, optionsLen, "qs_sandbox_download", errOut, func(ctx context.Context, sb *engine.Sandbox, a, b string, o engine.FileOptions) error {
		return sb.Download(ctx, a, b, o)
	})
}

// copyCall runs an upload or download with its options: every option goes
// to the engine, which refuses one the call does not use, naming it.
func copyCall(h *C.qs_sandbox, from, to *C.char, options *C.uint8_t, optionsLen C.size_t, what string, errOut **C.qs_error,
	op func(context.Context, *engine.Sandbox, string, string, engine.FileOptions) error) C.qs_status {
	return fileCall(h, from, options, optionsLen, what, errOut, func(ctx context.Context, sb *engine.Sandbox, a string, r wire.FileRequest) error {
		if to == nil {
			return invalidHandle(what + ": a path is NULL")
		}
		if r.Op != "" || r.Path != "" || r.Dest != "" {
			return &engine.Error{Kind: engine.KindBadRequest, Msg: what + ": options take no op, path or dest (the paths are arguments)"}
		}
		o := engine.FileOptions{User: r.User, Mode: r.Mode, Parents: r.Parents, Recursive: r.Recursive, MaxSize: r.MaxSize}
		return op(ctx, sb, a, C.GoString(to), o)
	})
}

func quoted(s string) string { return "\"" + s + "\"" }
