package main

import (
	"testing"
	"time"
)

// The agent's default header timeout is the one docs/reliability.md gives
// for half-open connections (10 s); TestHalfOpenConnectionsAreClosed runs
// an agent with 1 s to see such connections closed.
func TestDefaultHeaderTimeoutIsTheDocumentedOne(t *testing.T) {
	s, err := loadSettings([]string{"-token", "t", "-port", "1", "-cmdline", "/nonexistent"}, false)
	if err != nil {
		t.Fatal(err)
	}
	const documented = 10 * time.Second // docs/reliability.md, half-open connections
	if s.headerTimeout != documented {
		t.Fatalf("default header timeout %v, the docs say %v", s.headerTimeout, documented)
	}
}
