package main

/*
#include "capi.h"
*/
import "C"

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// The engine's log, for C callers: a handler function set with
// qs_log_set_handler, else standard error at the level QUICKSAND_LOG names,
// else nothing.

var logHandler struct {
	mu       sync.Mutex
	fn       C.qs_log_fn
	userData C.uintptr_t
	level    slog.Level
}

//export qs_log_set_handler
func qs_log_set_handler(fn C.qs_log_fn, userData C.uintptr_t, minLevel C.int) {
	logHandler.mu.Lock()
	defer logHandler.mu.Unlock()
	logHandler.fn, logHandler.userData, logHandler.level = fn, userData, slog.Level(minLevel)
}

// currentLogger is the logger a sandbox started now gets.
func currentLogger() *slog.Logger {
	logHandler.mu.Lock()
	fn, ud, level := logHandler.fn, logHandler.userData, logHandler.level
	logHandler.mu.Unlock()
	if fn != nil {
		return slog.New(&cLogHandler{fn: fn, userData: ud, level: level})
	}
	if level, ok := envLogLevel(); ok {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.DiscardHandler)
}

// envLogLevel reads QUICKSAND_LOG.
func envLogLevel() (slog.Level, bool) {
	var l slog.Level
	v := strings.TrimSpace(os.Getenv("QUICKSAND_LOG"))
	if v == "" || l.UnmarshalText([]byte(v)) != nil {
		return 0, false
	}
	return l, true
}

// cLogHandler formats each record as one line, "msg key=value ...", and
// hands it to the C function.
type cLogHandler struct {
	fn       C.qs_log_fn
	userData C.uintptr_t
	level    slog.Level
	attrs    []slog.Attr
	group    string
}

func (h *cLogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *cLogHandler) Handle(_ context.Context, r slog.Record) error {
	var line bytes.Buffer
	// A text handler writes "time=… level=… msg=… k=v"; keep what follows
	// the level, which the function gets as a number.
	th := slog.NewTextHandler(&line, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}})
	var hh slog.Handler = th.WithAttrs(h.attrs)
	if h.group != "" {
		hh = hh.WithGroup(h.group)
	}
	if err := hh.Handle(context.Background(), r); err != nil {
		return err
	}
	msg := C.CString(strings.TrimSuffix(line.String(), "\n"))
	defer C.free(unsafe.Pointer(msg))
	C.qs_call_log(h.fn, h.userData, C.int(r.Level), msg)
	return nil
}

func (h *cLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), attrs...)
	return &c
}

func (h *cLogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}
