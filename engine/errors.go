package engine

import (
	"fmt"

	"github.com/pkg/errors"
)

// Kind tells apart the ways a call can fail. Its numeric values cross the C
// ABI as error codes (include/quicksand.h), so they never change meaning.
type Kind int

const (
	KindUnknown       Kind = 1  // a failure with no better kind
	KindInvalidConfig Kind = 2  // a config or request field is wrong
	KindImageNotFound Kind = 3  // the image name or folder does not resolve
	KindBootFailed    Kind = 4  // QEMU or the guest failed before the agent was ready
	KindBootTimeout   Kind = 5  // the agent was not ready within the boot timeout
	KindNotRunning    Kind = 6  // the sandbox was stopped or its VM died
	KindAuth          Kind = 7  // the agent refused the token
	KindTransport     Kind = 8  // talking to the agent failed (connection, protocol)
	KindBadRequest    Kind = 9  // the agent rejected the request (bad cwd, shell, …)
	KindCancelled     Kind = 10 // the caller's context ended the call
	// 11 and 12 are the C ABI's own (invalid handle, internal error).
	KindSnapshotFailed Kind = 13 // checkpoint, revert or save failed
	KindResource       Kind = 14 // the guest ran out of processes, memory or disk space, or the host of ports or disk space
	KindNotFound       Kind = 15 // a path in the guest (or on the host) does not exist
	KindPermission     Kind = 16 // the guest user of the call may not do that to the path
)

var kindNames = map[Kind]string{
	KindUnknown:        "error",
	KindInvalidConfig:  "invalid config",
	KindImageNotFound:  "image not found",
	KindBootFailed:     "boot failed",
	KindBootTimeout:    "boot timed out",
	KindNotRunning:     "sandbox is not running",
	KindAuth:           "agent refused the token",
	KindTransport:      "command transport failed",
	KindBadRequest:     "bad request",
	KindCancelled:      "cancelled",
	KindSnapshotFailed: "snapshot failed",
	KindResource:       "out of resources",
	KindNotFound:       "not found",
	KindPermission:     "permission denied",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind %d", int(k))
}

// Error is what every engine call returns on failure: a Kind to branch on,
// a message that says what was being done, and the cause.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Err == nil:
		return e.Msg
	case e.Msg == "":
		return e.Err.Error()
	}
	return e.Msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }
func (e *Error) Cause() error  { return e.Err }

// Is lets errors.Is(err, engine.ErrNotRunning) match any error of that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Kind == e.Kind
}

// Sentinels for errors.Is; they match any *Error of their kind.
var (
	ErrInvalidConfig = &Error{Kind: KindInvalidConfig}
	ErrImageNotFound = &Error{Kind: KindImageNotFound}
	ErrBootFailed    = &Error{Kind: KindBootFailed}
	ErrBootTimeout   = &Error{Kind: KindBootTimeout}
	ErrNotRunning    = &Error{Kind: KindNotRunning}
	ErrAuth          = &Error{Kind: KindAuth}
	ErrTransport     = &Error{Kind: KindTransport}
	ErrBadRequest    = &Error{Kind: KindBadRequest}
	ErrCancelled     = &Error{Kind: KindCancelled}
	ErrSnapshot      = &Error{Kind: KindSnapshotFailed}
	ErrResource      = &Error{Kind: KindResource}
	ErrNotFound      = &Error{Kind: KindNotFound}
	ErrPermission    = &Error{Kind: KindPermission}
)

func newError(kind Kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// KindOf returns the Kind of err, KindUnknown for a foreign error, 0 for nil.
func KindOf(err error) Kind {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// snapshotFault marks an error that the snapshot being resumed (a template
// or a save) is to blame for: its state did not load, or the VM it held
// failed once resumed. A template is thrown away and rebuilt for these and
// for nothing else: a start that failed for a reason of the host's (its
// ports taken by another user, a full disk, a busy machine) says nothing
// against the template, and rebuilding it costs a cold boot.
type snapshotFault struct{ err error }

func (f *snapshotFault) Error() string { return f.err.Error() }
func (f *snapshotFault) Unwrap() error { return f.err }

// blameSnapshot marks err, from resuming a snapshot, as the snapshot's
// fault, unless its kind puts the blame elsewhere: the clock (a timeout),
// the caller (cancelled) or the host (out of resources).
func blameSnapshot(err error) error {
	switch KindOf(err) {
	case KindBootFailed, KindAuth:
		return &snapshotFault{err}
	}
	return err
}

// isSnapshotFault says whether err is the snapshot's fault (blameSnapshot).
func isSnapshotFault(err error) bool {
	var f *snapshotFault
	return errors.As(err, &f)
}
