package engine

import (
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/internal/protocol"
)

// The engine's public constants restate internal ones (so that go doc shows
// engine's own): they must agree.
func TestPublicConstantsAgreeWithInternals(t *testing.T) {
	if Stdout != Stream(agent.Stdout) || Stderr != Stream(agent.Stderr) {
		t.Errorf("streams: engine %d/%d, agent %d/%d", Stdout, Stderr, agent.Stdout, agent.Stderr)
	}
	if DefaultTimeout != protocol.DefaultTimeoutSeconds*time.Second {
		t.Errorf("default timeout: engine %v, agent %ds", DefaultTimeout, protocol.DefaultTimeoutSeconds)
	}
}
