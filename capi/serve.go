package main

// #include "capi.h"
import "C"

import (
	"fmt"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/server"
)

// qs_serve runs `quicksand serve` in the calling process, for programs
// whose own CLI is over the library (the Python package's quicksand), so
// that every program that has the command runs the same server.
//
//export qs_serve
func qs_serve(options *C.uint8_t, optionsLen C.size_t, errOut **C.qs_error) C.qs_status {
	return guard(errOut, func() error {
		args, err := wire.DecodeServeOptions(goBytes(options, optionsLen))
		if err != nil {
			return err
		}
		switch code := server.Main(args); code {
		case 0:
			return nil
		case 2:
			return &engine.Error{Kind: engine.KindInvalidConfig, Msg: "quicksand serve: bad flags (said on standard error)"}
		default:
			return &engine.Error{Kind: engine.KindUnknown, Msg: fmt.Sprintf("quicksand serve exited with status %d (why: on standard error)", code)}
		}
	})
}
