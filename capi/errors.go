package main

// #include "capi.h"
import "C"

import (
	"fmt"
	"runtime/debug"
	"strings"
	"unsafe"

	"github.com/quicksand-go/quicksand/engine"
)

// Codes of the ABI itself, after the engine's kinds (quicksand.h).
const (
	codeInvalidHandle = 11
	codeInternal      = 12
)

// apiError is a failure with its ABI code.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func invalidHandle(what string) *apiError {
	return &apiError{code: codeInvalidHandle, msg: what}
}

// codeOf maps any error to its ABI code.
func codeOf(err error) int {
	if ae, ok := err.(*apiError); ok {
		return ae.code
	}
	return int(engine.KindOf(err))
}

// newCError allocates a qs_error for err (freed by qs_error_free).
func newCError(err error) *C.qs_error {
	e := (*C.qs_error)(C.malloc(C.size_t(unsafe.Sizeof(C.qs_error{}))))
	e.code = C.qs_status(codeOf(err))
	// A C string ends at its first NUL: a message that quotes a command
	// with one would be cut there, so NULs are written out.
	e.message = C.CString(strings.ReplaceAll(err.Error(), "\x00", `\0`))
	return e
}

// report stores err in *out when asked and returns its code; for nil it
// clears *out and returns QS_OK.
func report(err error, out **C.qs_error) C.qs_status {
	if out != nil {
		*out = nil
		if err != nil {
			*out = newCError(err)
		}
	}
	if err == nil {
		return 0
	}
	return C.qs_status(codeOf(err))
}

// panicError describes a recovered panic.
func panicError(r any) error {
	return &apiError{code: codeInternal, msg: fmt.Sprintf("internal error (a bug in libquicksand): %v\n%s", r, debug.Stack())}
}

// guard runs fn and turns a panic into an internal error, so that no panic
// crosses the C boundary.
func guard(out **C.qs_error, fn func() error) (code C.qs_status) {
	defer func() {
		if r := recover(); r != nil {
			code = report(panicError(r), out)
		}
	}()
	return report(fn(), out)
}

//export qs_error_code
func qs_error_code(err *C.qs_error) C.qs_status {
	if err == nil {
		return 0
	}
	return err.code
}

//export qs_error_message
func qs_error_message(err *C.qs_error) *C.char {
	if err == nil {
		return emptyCString
	}
	return err.message
}

//export qs_error_free
func qs_error_free(err *C.qs_error) {
	if err == nil {
		return
	}
	C.free(unsafe.Pointer(err.message))
	C.free(unsafe.Pointer(err))
}

// emptyCString and the version string live as long as the library.
var emptyCString = C.CString("")
