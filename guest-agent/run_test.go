package main

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// A start that fails for want of processes or memory is the guest's
// resource failure (503), anything else the request's (400).
func TestStartFailureKinds(t *testing.T) {
	for _, c := range []struct {
		err      error
		resource bool
	}{
		{fmt.Errorf("fork/exec /bin/sh: %w", syscall.EAGAIN), true},
		{&os.SyscallError{Syscall: "clone3", Err: syscall.ENOMEM}, true},
		{&os.PathError{Op: "fork/exec", Path: "/bin/nope", Err: syscall.ENOENT}, false},
	} {
		if got := startFailure("/bin/sh", c.err); got.resource != c.resource || got.refused {
			t.Errorf("%v: %+v, want resource %v", c.err, got, c.resource)
		}
	}
}
