package engine

import (
	"context"
	"log/slog"
)

// errorMessages is the caller's log handler, given errors as their
// messages. slog's handlers format an error value with %+v, which for an
// error made by github.com/pkg/errors (as most of ours are) is its message
// and then a Go stack trace, a dozen lines in what should be one line of
// log. The engine wraps Config.Logger's handler in it, so no log call has
// to remember.
type errorMessages struct{ slog.Handler }

// plainErrors wraps h unless it is wrapped already.
func plainErrors(h slog.Handler) slog.Handler {
	if _, ok := h.(errorMessages); ok {
		return h
	}
	return errorMessages{h}
}

func (h errorMessages) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(errorMessage(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h errorMessages) WithAttrs(attrs []slog.Attr) slog.Handler {
	plain := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		plain[i] = errorMessage(a)
	}
	return errorMessages{h.Handler.WithAttrs(plain)}
}

func (h errorMessages) WithGroup(name string) slog.Handler {
	return errorMessages{h.Handler.WithGroup(name)}
}

// errorMessage is a with an error value turned into its message, in groups
// too.
func errorMessage(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, err.Error())
		}
	case slog.KindGroup:
		group := v.Group()
		plain := make([]slog.Attr, len(group))
		for i, g := range group {
			plain[i] = errorMessage(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(plain...)}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
