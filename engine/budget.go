package engine

import (
	"sync"
	"time"
)

// budget is a deadline on waiting: it calls expire once it has run for its
// length, not counting the time it was paused (while the caller's own code
// runs).
type budget struct {
	mu     sync.Mutex
	timer  *time.Timer
	left   time.Duration
	since  time.Time // when it last started running
	paused bool
}

func startBudget(length time.Duration, expire func()) *budget {
	return &budget{timer: time.AfterFunc(length, expire), left: length, since: time.Now()}
}

func (b *budget) pause() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paused {
		return
	}
	if b.timer.Stop() {
		b.left -= time.Since(b.since)
	} else {
		b.left = 0 // it has expired already
	}
	b.paused = true
}

func (b *budget) resume() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.paused || b.left <= 0 {
		return
	}
	b.paused = false
	b.since = time.Now()
	b.timer.Reset(b.left)
}

func (b *budget) stop() { b.timer.Stop() }
