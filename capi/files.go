package main

/*
#include "capi.h"
*/
import "C"

import (
	"bytes"
	"context"
	"errors"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// File operations (include/quicksand.h, "Files").

// fileCall runs op on a sandbox with a path argument and a request map.
func fileCall(h *C.qs_sandbox, path *C.char, req *C.uint8_t, reqLen C.size_t, what string, errOut **C.qs_error,
	op func(*engine.Sandbox, string, wire.FileRequest) error) C.int {
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
		return op(sb, C.GoString(path), r)
	})
}

//export qs_sandbox_write_file
func qs_sandbox_write_file(h *C.qs_sandbox, path *C.char, data *C.uint8_t, dataLen C.size_t,
	options *C.uint8_t, optionsLen C.size_t, errOut **C.qs_error) C.int {
	return fileCall(h, path, options, optionsLen, "qs_sandbox_write_file", errOut, func(sb *engine.Sandbox, p string, r wire.FileRequest) error {
		if data == nil && dataLen > 0 {
			return invalidHandle("qs_sandbox_write_file: data is NULL")
		}
		_, err := sb.WriteFile(context.Background(), p, bytes.NewReader(goBytes(data, dataLen)), engine.FileOptions{Mode: r.Mode, User: r.User})
		return err
	})
}

//export qs_sandbox_read_file
func qs_sandbox_read_file(h *C.qs_sandbox, path *C.char, options *C.uint8_t, optionsLen C.size_t,
	out *C.qs_buffer, errOut **C.qs_error) C.int {
	if out != nil {
		out.data, out.len = nil, 0
	}
	return fileCall(h, path, options, optionsLen, "qs_sandbox_read_file", errOut, func(sb *engine.Sandbox, p string, r wire.FileRequest) error {
		if out == nil {
			return invalidHandle("qs_sandbox_read_file: out is NULL")
		}
		var buf bytes.Buffer
		if _, err := sb.ReadFile(context.Background(), p, &buf, r.User); err != nil {
			return err
		}
		setBuffer(out, buf.Bytes())
		return nil
	})
}

//export qs_sandbox_file_op
func qs_sandbox_file_op(h *C.qs_sandbox, request *C.uint8_t, requestLen C.size_t, result *C.qs_buffer, errOut **C.qs_error) C.int {
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
		ctx := context.Background()
		var answer []byte
		switch r.Op {
		case "stat":
			info, err := sb.Stat(ctx, r.Path)
			if err != nil && !errors.Is(err, engine.ErrNotFound) {
				return err
			}
			answer = wire.EncodeFileResult(info, nil, false)
		case "list":
			entries, err := sb.ListDir(ctx, r.Path)
			if err != nil {
				return err
			}
			answer = wire.EncodeFileResult(nil, entries, true)
		case "mkdir":
			err = sb.MakeDir(ctx, r.Path, r.Parents, engine.FileOptions{Mode: r.Mode, User: r.User})
		case "remove":
			err = sb.Remove(ctx, r.Path, r.Recursive)
		case "rename":
			err = sb.Rename(ctx, r.Path, r.Dest)
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
func qs_sandbox_upload(h *C.qs_sandbox, hostPath, guestPath *C.char, errOut **C.qs_error) C.int {
	return copyCall(h, hostPath, guestPath, "qs_sandbox_upload", errOut, func(sb *engine.Sandbox, a, b string) error {
		return sb.Upload(context.Background(), a, b)
	})
}

//export qs_sandbox_download
func qs_sandbox_download(h *C.qs_sandbox, guestPath, hostPath *C.char, errOut **C.qs_error) C.int {
	return copyCall(h, guestPath, hostPath, "qs_sandbox_download", errOut, func(sb *engine.Sandbox, a, b string) error {
		return sb.Download(context.Background(), a, b)
	})
}

func copyCall(h *C.qs_sandbox, from, to *C.char, what string, errOut **C.qs_error, op func(*engine.Sandbox, string, string) error) C.int {
	return guard(errOut, func() error {
		sb, err := lookup(h)
		if err != nil {
			return err
		}
		if from == nil || to == nil {
			return invalidHandle(what + ": a path is NULL")
		}
		return op(sb, C.GoString(from), C.GoString(to))
	})
}

func quoted(s string) string { return "\"" + s + "\"" }
