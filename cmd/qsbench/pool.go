package main

import (
	"context"
	"errors"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// poolStarts times starts from a pool with a sandbox waiting: each take,
// then a wait until the pool refilled before the next.
func poolStarts(ctx context.Context, n int) figure {
	f := figure{Name: "start from a pool with a sandbox waiting", Via: "Go", Unit: "ms",
		Command: "pool.Start(ctx) (engine.NewPool(cfg, 2)), the pool full each time"}
	p, err := engine.NewPool(engine.Config{}, 2)
	if err != nil {
		return failed(f, err)
	}
	defer p.Close()
	full := func() error {
		deadline := time.Now().Add(3 * time.Minute)
		for p.Waiting() < 2 {
			if time.Now().After(deadline) {
				return errors.New("the pool did not fill in 3 minutes")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	}
	var s sample
	for i := 0; i < n; i++ {
		if err := full(); err != nil {
			return failed(f, err)
		}
		start := time.Now()
		sb, err := p.Start(ctx)
		if err != nil {
			return failed(f, err)
		}
		s.addDuration(time.Since(start))
		sb.Stop(ctx)
	}
	return fill(f, &s)
}
