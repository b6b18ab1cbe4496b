package main

/*
#include "capi.h"
*/
import "C"

import (
	"context"
	"unsafe"

	pointer "github.com/mattn/go-pointer"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// Pools (include/quicksand.h, "Pools").

func lookupPool(h *C.qs_pool) (*engine.Pool, error) {
	if h == nil {
		return nil, invalidHandle("the pool handle is NULL")
	}
	p, ok := pointer.Restore(unsafe.Pointer(h)).(*engine.Pool)
	if !ok {
		return nil, invalidHandle("the pool handle is unknown or was freed")
	}
	return p, nil
}

//export qs_pool_new
func qs_pool_new(config *C.uint8_t, configLen C.size_t, size C.int, out **C.qs_pool, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		if out == nil {
			return invalidHandle("qs_pool_new: out is NULL")
		}
		*out = nil
		cfg, err := wire.DecodeConfig(goBytes(config, configLen))
		if err != nil {
			return err
		}
		cfg.Logger = currentLogger()
		p, err := engine.NewPool(cfg, int(size))
		if err != nil {
			return err
		}
		*out = (*C.qs_pool)(pointer.Save(p))
		return nil
	})
}

//export qs_pool_start
func qs_pool_start(h *C.qs_pool, out **C.qs_sandbox, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		if out == nil {
			return invalidHandle("qs_pool_start: out is NULL")
		}
		*out = nil
		p, err := lookupPool(h)
		if err != nil {
			return err
		}
		sb, err := p.Start(context.Background())
		if err != nil {
			return err
		}
		*out = newHandle(sb)
		return nil
	})
}

//export qs_pool_close
func qs_pool_close(h *C.qs_pool, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		p, err := lookupPool(h)
		if err != nil {
			return err
		}
		return p.Close()
	})
}

//export qs_pool_free
func qs_pool_free(h *C.qs_pool) {
	_ = guard(nil, func() error {
		p, err := lookupPool(h)
		if err != nil {
			return nil // NULL or freed: nothing to do
		}
		p.Close()
		pointer.Unref(unsafe.Pointer(h))
		return nil
	})
}
