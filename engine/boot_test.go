package engine

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A boot that outlasts its timeout is a boot timeout that shows what the
// console said, once.
func TestBootTimeoutSaysWhyOnce(t *testing.T) {
	_, err := Start(context.Background(), Config{ColdBoot: true, Accel: AccelTCG, BootTimeout: 1800 * time.Millisecond})
	if KindOf(err) != KindBootTimeout {
		t.Fatalf("Start: %v, want a boot timeout", err)
	}
	if n := strings.Count(err.Error(), "--- last console lines ---"); n > 1 {
		t.Fatalf("the console tail is shown %d times:\n%v", n, err)
	}
}
