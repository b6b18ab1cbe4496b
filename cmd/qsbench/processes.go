package main

import (
	"bytes"
	"context"
	"io"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// processFigures times background processes: a keystroke through a
// terminal and back (the echo), stdin into cat, and a start to its first
// output.
func processFigures(ctx context.Context, sb *engine.Sandbox, keystrokes, stdinBytes, starts int) []figure {
	echo := figure{Name: "keystroke echo through a terminal, round trip", Via: "Go", Unit: "ms", Warmup: 10,
		Command: "Process.Write of 1 byte to `cat` on a PTY, until the echo arrives on an attach"}
	in := figure{Name: "stdin into a background `cat > /dev/null`", Via: "Go", Unit: "MB/s",
		Command: "Process.WriteFrom of 256 MiB, then CloseStdin and Wait"}
	first := figure{Name: "start of a background process to its first output", Via: "Go", Unit: "ms", Warmup: 2,
		Command: "StartProcess(`echo hi`) until Attach hands over the first chunk"}

	// Echo: every byte typed comes back from the terminal's line discipline.
	p, err := sb.StartProcess(ctx, engine.ProcessRequest{Command: "cat", PTY: &engine.TerminalSize{Rows: 24, Cols: 80}})
	if err != nil {
		return []figure{failed(echo, err), failed(in, err), failed(first, err)}
	}
	chunks := make(chan []byte, 1024)
	go p.Attach(ctx, 1<<20, func(_ engine.Stream, b []byte) error {
		chunks <- append([]byte(nil), b...)
		return nil
	})
	var es sample
	for i := 0; i < keystrokes+echo.Warmup; i++ {
		start := time.Now()
		if err := p.Write(ctx, []byte{'a'}); err != nil {
			return []figure{failed(echo, err), failed(in, err), failed(first, err)}
		}
		select {
		case <-chunks:
		case <-time.After(10 * time.Second):
			return []figure{failed(echo, errTimeout("no echo within 10 s")), failed(in, err), failed(first, err)}
		}
		if i >= echo.Warmup {
			es.addDuration(time.Since(start))
		}
	}
	p.Kill(ctx)

	// Stdin throughput.
	var is sample
	for i := 0; i < 3; i++ {
		cat, err := sb.StartProcess(ctx, engine.ProcessRequest{Command: "cat > /dev/null"})
		if err != nil {
			return []figure{fill(echo, &es), failed(in, err), failed(first, err)}
		}
		start := time.Now()
		if err := cat.WriteFrom(ctx, io.LimitReader(zeros{}, int64(stdinBytes))); err != nil {
			return []figure{fill(echo, &es), failed(in, err), failed(first, err)}
		}
		cat.CloseStdin(ctx)
		if _, err := cat.Wait(ctx); err != nil {
			return []figure{fill(echo, &es), failed(in, err), failed(first, err)}
		}
		is.add(float64(stdinBytes) / 1e6 / time.Since(start).Seconds())
	}

	// Start to first output.
	var fs sample
	for i := 0; i < starts+first.Warmup; i++ {
		start := time.Now()
		q, err := sb.StartProcess(ctx, engine.ProcessRequest{Command: "echo hi"})
		if err != nil {
			return []figure{fill(echo, &es), fill(in, &is), failed(first, err)}
		}
		var took time.Duration
		if _, err := q.Attach(ctx, 0, func(_ engine.Stream, b []byte) error {
			if took == 0 && bytes.Contains(b, []byte("hi")) {
				took = time.Since(start)
			}
			return nil
		}); err != nil {
			return []figure{fill(echo, &es), fill(in, &is), failed(first, err)}
		}
		if i >= first.Warmup {
			fs.addDuration(took)
		}
	}
	return []figure{fill(echo, &es), fill(in, &is), fill(first, &fs)}
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type errTimeout string

func (e errTimeout) Error() string { return string(e) }
