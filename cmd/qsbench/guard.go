package main

import (
	"context"

	"github.com/quicksand-go/quicksand/engine"
)

// guardCost measures what the network guard of full network mode costs:
// the execute round trip through it against the same mode without it
// (AllowHostLoopback), rounds alternating between the two sandboxes so that
// the machine's drift falls on both alike, and a warm start with it.
func guardCost(ctx context.Context, n sizes) []figure {
	guarded := figure{Name: "execute `true`, round trip, full network (guarded)", Via: "Go", Unit: "ms",
		Command: `Execute("true") on Config{Network: full}, alternating rounds with the next row`}
	open := figure{Name: "execute `true`, round trip, full network, host loopback allowed (no guard)", Via: "Go", Unit: "ms",
		Command: `Execute("true") on Config{Network: full, AllowHostLoopback: true}`}
	g, err := engine.Start(ctx, engine.Config{Network: engine.NetworkFull})
	if err != nil {
		return []figure{failed(guarded, err)}
	}
	defer g.Stop(ctx)
	o, err := engine.Start(ctx, engine.Config{Network: engine.NetworkFull, AllowHostLoopback: true})
	if err != nil {
		return []figure{failed(open, err)}
	}
	defer o.Stop(ctx)
	var sg, so sample
	const rounds = 6
	for r := 0; r < rounds; r++ {
		for _, side := range []struct {
			sb *engine.Sandbox
			s  *sample
		}{{g, &sg}, {o, &so}} {
			f := roundTrip(ctx, side.sb, max(n.execs/rounds, 10))
			if f.Failed != "" {
				return []figure{failed(guarded, errorString(f.Failed))}
			}
			side.s.add(f.Median)
		}
	}
	warm := warmStart(ctx, engine.Config{Network: engine.NetworkFull}, ", full network (guarded)", n.warm)
	return append([]figure{fill(guarded, &sg), fill(open, &so)}, warm[1:]...)
}

type errorString string

func (e errorString) Error() string { return string(e) }
