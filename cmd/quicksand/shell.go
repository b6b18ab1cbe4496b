package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/quicksand-go/quicksand/engine"
)

// runShell opens an interactive shell on a terminal in a fresh sandbox (or
// a save): the local terminal goes raw, the guest's terminal follows the
// window's size, every key (^C, ^D) goes to the guest; when the shell ends
// the terminal is restored and the sandbox stopped, or saved first with
// --save.
func runShell(args []string) int {
	var sf sandboxFlags
	fs := newFlagSet("quicksand shell", &sf)
	save := fs.String("save", "", "")
	shell := fs.String("shell", "/bin/bash", "")
	words, ok := parse(fs, args)
	if !ok {
		return 2
	}
	if len(words) > 0 {
		fmt.Fprintf(os.Stderr, "quicksand shell: unexpected %q (run takes a command)\n%s\n", words[0], usage)
		return 2
	}
	if *save != "" {
		if _, err := engine.SaveDir(*save); err != nil {
			fmt.Fprintf(os.Stderr, "quicksand shell: --save %q: %v\n", *save, err)
			return 2
		}
	}
	// Until the terminal is raw, ^C stops the start; after, it is a key.
	startCtx, cancelStart := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	sb, status := sf.start(startCtx)
	cancelStart()
	if sb == nil {
		return status
	}
	defer sb.Stop(context.Background())
	code, err := interact(sb, *shell)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand: %v\n", err)
		code = 1
	}
	if *save != "" {
		path, err := sb.Save(context.Background(), *save)
		if err != nil {
			fmt.Fprintf(os.Stderr, "quicksand: saving: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "quicksand: saved to %s (quicksand shell --image %s resumes it)\n", path, *save)
	}
	return code
}

// interact runs shell on a terminal in sb, wired to this process's
// terminal, until it exits; it returns the shell's exit code.
func interact(sb *engine.Sandbox, shell string) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rows, cols := terminalSize(os.Stdin)
	term := os.Getenv("TERM")
	if term == "" {
		term = "xterm-256color"
	}
	p, err := sb.StartProcess(ctx, engine.ProcessRequest{
		Command: "exec " + shell + " -i", Env: map[string]string{"TERM": term},
		PTY: &engine.TerminalSize{Rows: rows, Cols: cols},
	})
	if err != nil {
		return 1, err
	}
	raw, err := makeRaw(os.Stdin)
	if err != nil {
		p.Kill(ctx)
		return 1, fmt.Errorf("making the terminal raw: %w", err)
	}
	defer raw.restore()

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGWINCH, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	go func() {
		for s := range signals {
			if s == syscall.SIGWINCH {
				r, c := terminalSize(os.Stdin)
				_ = p.Resize(ctx, r, c)
				continue
			}
			_ = p.Kill(ctx) // the terminal went away, or we were told to stop
		}
	}()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := os.Stdin.Read(buf)
			if n > 0 && p.Write(ctx, buf[:n]) != nil {
				return
			}
			if err != nil {
				_ = p.CloseStdin(ctx)
				return
			}
		}
	}()
	res, err := p.Attach(ctx, 1, func(_ engine.Stream, b []byte) error {
		_, werr := os.Stdout.Write(b)
		return werr
	})
	if err != nil {
		return 1, err
	}
	return res.ExitCode, nil
}
