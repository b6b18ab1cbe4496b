package main

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
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

// Output the command wrote before it exited is delivered even when the
// reader gets to it only after the grace deadline, with the pipe still held
// open (by something left running): a busy guest may not have scheduled
// the reader before then (found with 128 commands at once).
func TestPumpTakesWhatThePipeHoldsAfterTheDeadline(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close() // held open, as by a background process
	w.Write([]byte("written before the exit\n"))
	r.SetReadDeadline(time.Now().Add(-time.Second))
	var got []byte
	done := make(chan struct{})
	go func() {
		pump(r, stdoutStream, func(_ stream, p []byte) { got = append(got, p...) })
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pump waited on a pipe held open past its deadline")
	}
	if string(got) != "written before the exit\n" {
		t.Fatalf("got %q", got)
	}
}
