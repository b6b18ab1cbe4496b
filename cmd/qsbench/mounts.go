package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// mountFigures times a shared folder: a big file read and written through
// it, find and stat over many small files, and what a mount adds to a warm
// start (alternating starts with and without one).
func mountFigures(ctx context.Context, n, size, smallFiles, starts int) []figure {
	read := figure{Name: fmt.Sprintf("read a %d MiB file through a mount", size>>20), Via: "shell", Unit: "MB/s", Command: "cat /mnt/bench/big > /dev/null (time in the guest)"}
	write := figure{Name: fmt.Sprintf("write a %d MiB file through a mount", size>>20), Via: "shell", Unit: "MB/s", Command: "dd if=/dev/zero of=/mnt/bench/out bs=1M (time in the guest; each write reaches the host's page cache before it returns)"}
	walk := figure{Name: fmt.Sprintf("find + stat over %d files in a mount", smallFiles), Via: "shell", Unit: "s", Command: "find /mnt/bench/tree -printf '%s %m\\n' | wc -l (time in the guest)"}
	extra := figure{Name: "warm start to ready with one mount, minus without", Via: "Go", Unit: "ms", Command: "engine.Start with Config.Mounts, alternated with engine.Start without; medians' difference"}
	all := func(err error) []figure {
		return []figure{failed(read, err), failed(write, err), failed(walk, err), failed(extra, err)}
	}
	host, err := os.MkdirTemp("", "qsbench-mount")
	if err != nil {
		return all(err)
	}
	defer os.RemoveAll(host)
	if err := os.WriteFile(filepath.Join(host, "big"), bytes.Repeat([]byte("0123456789abcdef"), size/16), 0o644); err != nil {
		return all(err)
	}
	for i := 0; i < smallFiles; i++ {
		dir := filepath.Join(host, "tree", fmt.Sprintf("d%03d", i%100))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), []byte("x"), 0o644)
	}
	sb, err := engine.Start(ctx, engine.Config{Mounts: []engine.Mount{{HostPath: host, GuestPath: "/mnt/bench"}}})
	if err != nil {
		return all(err)
	}
	defer sb.Stop(ctx)
	// guestSeconds runs command and returns the seconds it took in the guest.
	guestSeconds := func(command string) (float64, error) {
		r, err := sb.Execute(ctx, engine.ExecRequest{Command: "s=$(date +%s.%N); " + command + " >/dev/null; e=$(date +%s.%N); awk \"BEGIN{print $e - $s}\"", Timeout: 10 * time.Minute})
		if err != nil {
			return 0, err
		}
		if r.ExitCode != 0 {
			return 0, fmt.Errorf("%s: exit %d: %s", command, r.ExitCode, r.Stderr)
		}
		var d float64
		_, err = fmt.Sscan(strings.TrimSpace(string(r.Stdout)), &d)
		return d, err
	}
	var rs, ws, fs sample
	for i := 0; i < n; i++ {
		d, err := guestSeconds("cat /mnt/bench/big")
		if err != nil {
			return all(err)
		}
		rs.add(float64(size) / 1e6 / d)
		d, err = guestSeconds(fmt.Sprintf("dd if=/dev/zero of=/mnt/bench/out bs=1M count=%d 2>/dev/null", size>>20))
		if err != nil {
			return all(err)
		}
		ws.add(float64(size) / 1e6 / d)
		d, err = guestSeconds("find /mnt/bench/tree -printf '%s %m\\n' | wc -l")
		if err != nil {
			return all(err)
		}
		fs.add(d)
	}
	sb.Stop(ctx)
	var with, without sample
	for i := 0; i < starts+1; i++ {
		for _, mounted := range []bool{true, false} {
			cfg := engine.Config{}
			if mounted {
				cfg.Mounts = []engine.Mount{{HostPath: host, GuestPath: "/mnt/bench"}}
			}
			start := time.Now()
			s, err := engine.Start(ctx, cfg)
			if err != nil {
				return []figure{fill(read, &rs), fill(write, &ws), fill(walk, &fs), failed(extra, err)}
			}
			took := time.Since(start)
			s.Stop(ctx)
			if i == 0 {
				continue // the first start of each kind warms caches
			}
			if mounted {
				with.addDuration(took)
			} else {
				without.addDuration(took)
			}
		}
	}
	extra.Median = with.median() - without.median()
	extra.Min, extra.Max, extra.Runs = extra.Median, extra.Median, starts
	return []figure{fill(read, &rs), fill(write, &ws), fill(walk, &fs), extra}
}
