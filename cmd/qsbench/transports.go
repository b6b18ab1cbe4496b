package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// transportFigures compares the engine's two transports to the agent, the
// mux port (the default) and the port forward (engine.TransportEnv=forward), alternated start by start and batch by batch in one run: a
// warm start to ready, a warm start and its first execute, and the round
// trip of execute("true") on a sandbox that has run a while.
func transportFigures(ctx context.Context, rounds, execs int) []figure {
	transports := []string{"mux", "forward"}
	type row struct {
		f figure
		s sample
	}
	rows := map[string][]*row{}
	for _, tr := range transports {
		label := ", mux port (default)"
		if tr == "forward" {
			label = ", port forward"
		}
		rows[tr] = []*row{
			{f: figure{Name: "warm start to ready" + label, Via: "Go", Unit: "s", Command: "engine.Start, BootTiming().Ready, transports alternated start by start"}},
			{f: figure{Name: "warm start and first execute(`true`)" + label, Via: "Go", Unit: "s", Command: "engine.Start then one Execute, wall time"}},
			{f: figure{Name: "execute `true`, round trip" + label, Via: "Go", Unit: "ms", Warmup: 20, Command: "Execute on a sandbox of each, batches of 20 alternated"}},
		}
	}
	fail := func(err error) []figure {
		var out []figure
		for _, tr := range transports {
			for _, r := range rows[tr] {
				out = append(out, failed(r.f, err))
			}
		}
		return out
	}
	defer os.Unsetenv(engine.TransportEnv)
	dir, err := os.MkdirTemp("", "qsbench-transports")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	cfg := engine.Config{TemplateDir: dir}
	if sb, err := engine.Start(ctx, cfg); err != nil { // the template
		return fail(err)
	} else {
		sb.Stop(ctx)
	}
	for i := 0; i < rounds; i++ {
		for _, tr := range transports {
			os.Setenv(engine.TransportEnv, tr)
			start := time.Now()
			sb, err := engine.Start(ctx, cfg)
			if err != nil {
				return fail(err)
			}
			ready := sb.BootTiming().Ready
			_, err = sb.Execute(ctx, engine.ExecRequest{Command: "true"})
			first := time.Since(start)
			sb.Stop(ctx)
			if err != nil {
				return fail(err)
			}
			rows[tr][0].s.add(ready.Seconds())
			rows[tr][1].s.add(first.Seconds())
		}
	}
	running := map[string]*engine.Sandbox{}
	for _, tr := range transports {
		os.Setenv(engine.TransportEnv, tr)
		sb, err := engine.Start(ctx, cfg)
		if err != nil {
			return fail(err)
		}
		defer sb.Stop(ctx)
		running[tr] = sb
		for range 20 { // warm-up
			if _, err := sb.Execute(ctx, engine.ExecRequest{Command: "true"}); err != nil {
				return fail(err)
			}
		}
	}
	for done := 0; done < execs; done += 20 {
		for _, tr := range transports {
			for range 20 {
				start := time.Now()
				if _, err := running[tr].Execute(ctx, engine.ExecRequest{Command: "true"}); err != nil {
					return fail(fmt.Errorf("%s: %w", tr, err))
				}
				rows[tr][2].s.addDuration(time.Since(start))
			}
		}
	}
	var out []figure
	for i := range rows["mux"] {
		for _, tr := range transports {
			out = append(out, fill(rows[tr][i].f, &rows[tr][i].s))
		}
	}
	return out
}
