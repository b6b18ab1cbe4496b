package engine

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestBudgetDoesNotCountPauses(t *testing.T) {
	var expired atomic.Bool
	b := startBudget(100*time.Millisecond, func() { expired.Store(true) })
	time.Sleep(60 * time.Millisecond)
	b.pause()
	time.Sleep(150 * time.Millisecond)
	if expired.Load() {
		t.Fatal("expired while paused")
	}
	b.resume()
	time.Sleep(150 * time.Millisecond)
	if !expired.Load() {
		t.Fatal("did not expire once its time was used up")
	}
	b.pause() // after expiry: stays expired, no panic
	b.resume()
	b.stop()
}
