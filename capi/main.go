// Package main is libquicksand's C ABI (include/quicksand.h), built with
// -buildmode=c-shared. It turns C calls into engine calls and holds no
// engine logic: handles, msgpack (capi/wire), errors and callbacks.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#include "capi.h"
*/
import "C"

func main() {}
