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

// Shared folders (include/quicksand.h, "Shared folders").

//export qs_sandbox_mount
func qs_sandbox_mount(h *C.qs_sandbox, mount *C.uint8_t, mountLen C.size_t, handle *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if handle != nil {
		handle.data, handle.len = nil, 0
	}
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		m, err := wire.DecodeMount(goBytes(mount, mountLen))
		if err != nil {
			return err
		}
		mh, err := sb.Mount(context.Background(), m)
		if err != nil {
			return err
		}
		if handle != nil {
			setBuffer(handle, wire.EncodeMount(mh))
		}
		return nil
	})
}

//export qs_sandbox_unmount
func qs_sandbox_unmount(h *C.qs_sandbox, mountID *C.char, errOut **C.qs_error) C.qs_status {
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		if mountID == nil {
			return invalidHandle("qs_sandbox_unmount: the mount id is NULL")
		}
		return sb.Unmount(context.Background(), engine.MountHandle{ID: C.GoString(mountID)})
	})
}

//export qs_sandbox_list_mounts
func qs_sandbox_list_mounts(h *C.qs_sandbox, list *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if list != nil {
		list.data, list.len = nil, 0
	}
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		if list == nil {
			return invalidHandle("qs_sandbox_list_mounts: list is NULL")
		}
		setBuffer(list, wire.EncodeMounts(sb.ActiveMounts()))
		return nil
	})
}
