package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer the engine's goroutines may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// With a logger, the decisions a caller cannot see are told: the
// accelerator, and a template built (a fresh template folder) and why.
func TestLoggerTellsDecisions(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sb := startSandbox(t, Config{TemplateDir: t.TempDir(), Logger: log})
	if _, err := sb.Execute(t.Context(), ExecRequest{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"accelerator chosen", "building a template", "why=", "template built"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log has no %q:\n%s", want, logs.String())
		}
	}
}
