package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// The desktop's figures (issue 28): cold boot to a usable desktop, warm
// start, a screenshot's latency, a key press until the screen shows it,
// and the debian-desktop image's size.

var desktopConfig = engine.Config{Image: "debian-desktop", MemoryMiB: 1536, Display: &engine.Display{}}

func desktopFigures(ctx context.Context, n sizes) []figure {
	cold := figure{Name: "desktop: cold boot to a usable desktop", Via: "Go", Unit: "s", Runs: 1,
		Command: "engine.Start(ColdBoot, Display) until the window manager runs (the image's desktop_ready)"}
	dir, err := os.MkdirTemp("", "qsbench-desktop")
	if err != nil {
		return []figure{failed(cold, err)}
	}
	defer os.RemoveAll(dir)
	cfg := desktopConfig
	cfg.TemplateDir = dir
	began := time.Now()
	coldCfg := cfg
	coldCfg.ColdBoot = true
	sb, err := engine.Start(ctx, coldCfg)
	if err != nil {
		return []figure{failed(cold, err)}
	}
	d := time.Since(began).Seconds()
	cold.Median, cold.Min, cold.Max = d, d, d
	sb.Stop(ctx)
	out := []figure{cold}
	out = append(out, warmStart(ctx, cfg, ", desktop", n.warm)...)

	sb, err = engine.Start(ctx, cfg)
	if err != nil {
		return append(out, failed(figure{Name: "desktop: screenshot", Via: "Go"}, err))
	}
	defer sb.Stop(ctx)
	shot := figure{Name: "desktop: screenshot (1280x800 PNG)", Via: "Go", Unit: "ms", Warmup: 3, Command: "sb.Screenshot(ctx)"}
	var s sample
	for i := 0; i < 50+shot.Warmup; i++ {
		t := time.Now()
		if _, err := sb.Screenshot(ctx); err != nil {
			return append(out, failed(shot, err))
		}
		if i >= shot.Warmup {
			s.addDuration(time.Since(t))
		}
	}
	out = append(out, fill(shot, &s))
	return append(out, keyToScreen(ctx, sb, 10), imageSize("debian-desktop-"+hostArch()))
}

// keyToScreen opens a terminal, then times a typed character until a
// screenshot shows it.
func keyToScreen(ctx context.Context, sb *engine.Sandbox, n int) figure {
	f := figure{Name: "desktop: key press until the screen shows it", Via: "Go", Unit: "ms", Warmup: 1,
		Command: "sb.TypeText(ctx, \"x\") in a terminal, then sb.Screenshot until it differs"}
	if err := sb.PressKey(ctx, "ctrl", "alt", "t"); err != nil {
		return failed(f, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := sb.Execute(ctx, engine.ExecRequest{Command: "pgrep -x xterm"})
		if err == nil && r.ExitCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			return failed(f, errors.New("no terminal opened in 2 minutes"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // its prompt
	var s sample
	for i := 0; i < n+f.Warmup; i++ {
		before, err := sb.Screenshot(ctx)
		if err != nil {
			return failed(f, err)
		}
		t := time.Now()
		if err := sb.TypeText(ctx, "x"); err != nil {
			return failed(f, err)
		}
		for {
			now, err := sb.Screenshot(ctx)
			if err != nil {
				return failed(f, err)
			}
			if !bytes.Equal(now, before) {
				break
			}
			if time.Since(t) > 30*time.Second {
				return failed(f, errors.New("the screen did not change in 30 s"))
			}
		}
		if i >= f.Warmup {
			s.addDuration(time.Since(t))
		}
	}
	return fill(f, &s)
}
