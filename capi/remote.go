package main

/*
#include "capi.h"
*/
import "C"

import (
	"context"
	"math"
	"time"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// Sandboxes a server keeps (include/quicksand.h): connect by id, list,
// and the idle timeout. Starting one is qs_sandbox_start with a server.

//export qs_sandbox_connect
func qs_sandbox_connect(id *C.char, options *C.uint8_t, optionsLen C.size_t, out **C.qs_sandbox, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		if out == nil {
			return invalidHandle("qs_sandbox_connect: out is NULL")
		}
		*out = nil
		if id == nil {
			return invalidHandle("qs_sandbox_connect: the id is NULL")
		}
		opts, err := wire.DecodeConnectOptions(goBytes(options, optionsLen))
		if err != nil {
			return err
		}
		sb, err := engine.Connect(context.Background(), C.GoString(id), opts)
		if err != nil {
			return err
		}
		*out = newHandle(sb)
		return nil
	})
}

//export qs_sandbox_list
func qs_sandbox_list(options *C.uint8_t, optionsLen C.size_t, list *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if list != nil {
		list.data, list.len = nil, 0
	}
	return guard(errOut, func() error {
		if list == nil {
			return invalidHandle("qs_sandbox_list: list is NULL")
		}
		opts, metadata, err := wire.DecodeListOptions(goBytes(options, optionsLen))
		if err != nil {
			return err
		}
		found, err := engine.ListSandboxes(context.Background(), opts, metadata)
		if err != nil {
			return err
		}
		setBuffer(list, wire.EncodeSandboxList(found))
		return nil
	})
}

//export qs_sandbox_set_idle_timeout
func qs_sandbox_set_idle_timeout(h *C.qs_sandbox, seconds C.double, errOut **C.qs_error) C.qs_status {
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		s := float64(seconds)
		switch {
		case math.IsNaN(s) || math.IsInf(s, 0) || s > float64(1<<62)/float64(time.Second):
			return &engine.Error{Kind: engine.KindBadRequest, Msg: "qs_sandbox_set_idle_timeout: seconds must be a finite number of seconds, or negative for never"}
		case s < 0:
			return sb.SetIdleTimeout(context.Background(), -1)
		}
		return sb.SetIdleTimeout(context.Background(), time.Duration(s*float64(time.Second)))
	})
}
