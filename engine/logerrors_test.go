package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/pkg/errors"
)

// The engine's log carries an error's message, never the stack trace that
// slog's %+v draws out of an error made by github.com/pkg/errors: not in
// an attribute, a group, or an attribute given to With.
func TestLogLinesCarryErrorMessagesOnly(t *testing.T) {
	var out bytes.Buffer
	cfg, err := Config{Logger: slog.New(slog.NewTextHandler(&out, nil))}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.Wrap(errors.New("the cause"), "what failed")
	cfg.Logger.Warn("a decision", "err", boom)
	cfg.Logger.With("err", boom).Warn("with")
	cfg.Logger.Warn("grouped", slog.Group("g", "err", boom))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || strings.Contains(out.String(), ".go:") {
		t.Fatalf("want three lines without a stack trace, got:\n%s", out.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, `err="what failed: the cause"`) {
			t.Errorf("a line without the error's message: %s", l)
		}
	}
	// Wrapping is done once, however often defaults are applied.
	again, _ := cfg.withDefaults()
	if _, ok := again.Logger.Handler().(errorMessages).Handler.(errorMessages); ok {
		t.Error("the handler was wrapped twice")
	}
}
