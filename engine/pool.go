package engine

import (
	"context"
	"sync"
	"time"

	"github.com/pkg/errors"
)

// Pool keeps sandboxes of one configuration started, warmed (their first
// request done) and waiting, so that a start takes one in milliseconds; a
// start refills the pool in the background. What Start hands out is as a
// fresh start's: a token of its own, issued when it is taken (never one
// another sandbox had), the guest's clock set and its RNG reseeded then,
// its own overlay. A pool that cannot refill (the image gone, QEMU
// failing) makes Start fall back to a normal start, with the reason logged;
// it never waits for a refill. Close stops every waiting sandbox; the ones
// handed out are the caller's.
type Pool struct {
	cfg   Config
	size  int
	ready chan *Sandbox

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // a start took one: refill
	done   chan struct{} // the filler has stopped

	mu      sync.Mutex
	lastErr error // why the last refill failed, nil once one succeeds
}

// MaxPoolSize bounds a pool: each waiting sandbox is a running VM.
const MaxPoolSize = 256

// refillRetry is how long the filler waits after a failed start.
const refillRetry = 2 * time.Second

// NewPool checks cfg and starts filling a pool of size sandboxes in the
// background (one start at a time: starts in parallel compete for the same
// CPUs and each takes longer).
func NewPool(cfg Config, size int) (*Pool, error) {
	checked, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if size < 1 || size > MaxPoolSize {
		return nil, newError(KindInvalidConfig, nil, "a pool holds 1 to %d sandboxes, not %d", MaxPoolSize, size)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{cfg: checked, size: size, ready: make(chan *Sandbox, size), ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go p.fill()
	return p, nil
}

// fill keeps the pool full until Close.
func (p *Pool) fill() {
	defer close(p.done)
	for p.ctx.Err() == nil {
		if len(p.ready) >= p.size {
			select {
			case <-p.wake:
				continue
			case <-p.ctx.Done():
				return
			}
		}
		sb, err := p.prepare()
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		if err != nil {
			p.cfg.Logger.Warn("the pool could not start a sandbox: starts fall back to normal ones", "err", err)
			select {
			case <-time.After(refillRetry):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		select {
		case p.ready <- sb:
		case <-p.ctx.Done():
			sb.kill()
			return
		}
	}
}

// prepare starts one sandbox and makes its first request, which under
// emulation costs most of a warm start (the guest's code translated anew).
func (p *Pool) prepare() (*Sandbox, error) {
	sb, err := Start(p.ctx, p.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := sb.Execute(p.ctx, ExecRequest{Command: "true"}); err != nil {
		sb.kill()
		return nil, errors.Wrap(err, "warming the pooled sandbox")
	}
	return sb, nil
}

// Start takes a waiting sandbox, gives it a new token and sets its clock,
// or starts one normally when none waits (or the one taken died).
func (p *Pool) Start(ctx context.Context) (*Sandbox, error) {
	if p.ctx.Err() != nil {
		return nil, newError(KindNotRunning, nil, "the pool is closed")
	}
	for {
		select {
		case sb := <-p.ready:
			p.refill()
			if err := sb.takeFromPool(ctx); err != nil {
				sb.kill()
				if ctx.Err() != nil {
					return nil, newError(KindCancelled, err, "taking a sandbox from the pool")
				}
				p.cfg.Logger.Warn("a pooled sandbox did not wake: trying the next", "err", err)
				continue
			}
			return sb, nil
		default:
		}
		p.mu.Lock()
		why := p.lastErr
		p.mu.Unlock()
		if why != nil {
			p.cfg.Logger.Warn("the pool cannot refill: a normal start", "err", why)
		} else {
			p.cfg.Logger.Info("the pool is empty: a normal start")
		}
		return Start(ctx, p.cfg)
	}
}

func (p *Pool) refill() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Waiting is how many sandboxes wait in the pool now.
func (p *Pool) Waiting() int { return len(p.ready) }

// Close stops filling and stops every waiting sandbox. Safe to call more
// than once.
func (p *Pool) Close() error {
	p.cancel()
	<-p.done
	var wg sync.WaitGroup
	for {
		select {
		case sb := <-p.ready:
			wg.Add(1)
			go func() {
				defer wg.Done()
				sb.Stop(context.Background())
			}()
			continue
		default:
		}
		break
	}
	wg.Wait()
	return nil
}

// takeFromPool makes a waiting sandbox a fresh one: a new token (the one it
// was started with is retired), the guest's clock set to now and its RNG
// reseeded (rekey).
func (sb *Sandbox) takeFromPool(ctx context.Context) error {
	if cause := context.Cause(sb.alive); cause != nil {
		return cause
	}
	token, err := newToken()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, takeLimit)
	defer cancel()
	sb.snapshots.Lock()
	defer sb.snapshots.Unlock()
	sb.token = token
	_, err = sb.rekey(ctx, 0)
	return err
}

// takeLimit bounds waking a pooled sandbox: one round trip when it is well.
const takeLimit = 10 * time.Second
