package engine

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A lying agent's code runs (lies in testdata/liar/lies_code.go): the host
// keeps at most its cap of a run's events, a stream without events ends
// when the caller gives up, and malformed or odd events are errors or are
// passed over, never a panic.
func TestALyingAgentsCodeRuns(t *testing.T) {
	sb := startSandbox(t, Config{})
	l := startLiar(t, sb, "none")

	t.Run("endless", func(t *testing.T) {
		l.tell(t, "code-endless")
		ctx := backstop(t, 5*time.Minute)
		var err error
		grew := heapPeak(func() { _, err = sb.RunCode(ctx, CodeRequest{Code: "1"}) })
		endedByItself(t, ctx, err)
		if !strings.Contains(err.Error(), "passed 256 MiB") {
			t.Errorf("error: %v, want one that names the cap", err)
		}
		if grew > 2<<30 {
			t.Errorf("the host's heap grew by %d MiB", grew>>20)
		}
	})
	t.Run("silent, cancelled", func(t *testing.T) {
		l.tell(t, "code-silent")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := sb.RunCode(ctx, CodeRequest{Code: "1"})
		if err == nil || time.Since(start) > 10*time.Second {
			t.Errorf("a run without events, cancelled after 2 s: %v after %v", err, time.Since(start))
		}
	})
	t.Run("malformed", func(t *testing.T) {
		l.tell(t, "code-malformed")
		ctx := backstop(t, time.Minute)
		var seen string
		_, err := sb.RunCode(ctx, CodeRequest{Code: "1", OnStdout: func(s string) error { seen += s; return nil }})
		endedByItself(t, ctx, err)
		if KindOf(err) != KindTransport || seen != "ok" {
			t.Errorf("%v (kind %v), stdout %q", err, KindOf(err), seen)
		}
	})
	t.Run("odd", func(t *testing.T) {
		l.tell(t, "code-odd")
		ctx := backstop(t, time.Minute)
		ex, err := sb.RunCode(ctx, CodeRequest{Code: "1"})
		endedByItself(t, ctx, err)
		if ex != nil || !strings.Contains(err.Error(), "without its end") {
			t.Errorf("a stream that ends without its end event: %+v %v", ex, err)
		}
	})
	t.Run("long line", func(t *testing.T) {
		l.tell(t, "code-long-line")
		ctx := backstop(t, 2*time.Minute)
		var err error
		grew := heapPeak(func() { _, err = sb.RunCode(ctx, CodeRequest{Code: "1"}) })
		endedByItself(t, ctx, err)
		if grew > 1<<30 {
			t.Errorf("the host's heap grew by %d MiB", grew>>20)
		}
	})
	t.Run("contexts endless", func(t *testing.T) {
		l.tell(t, "code-contexts-endless")
		ctx := backstop(t, 2*time.Minute)
		_, err := sb.CodeContexts(ctx)
		endedByItself(t, ctx, err)
		if !strings.Contains(err.Error(), "larger than") {
			t.Errorf("error: %v", err)
		}
	})
}
