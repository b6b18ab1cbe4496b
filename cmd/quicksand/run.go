package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

// runCommand boots a sandbox, runs one command in it with its output
// streamed, and exits with the command's exit code.
func runCommand(args []string) int {
	var sf sandboxFlags
	words, ok := parse(newFlagSet("quicksand run", &sf), args)
	if !ok {
		return 2
	}
	command := strings.Join(words, " ")
	if command == "" {
		fmt.Fprintln(os.Stderr, "quicksand run: no command given")
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	sb, status := sf.start(ctx)
	if sb == nil {
		return status
	}
	defer sb.Stop(context.Background())
	timeout := time.Duration(sf.timeout)
	res, err := sb.Execute(ctx, engine.ExecRequest{Command: command, Timeout: timeout, OnOutput: func(s engine.Stream, p []byte) error {
		if s == engine.Stdout {
			os.Stdout.Write(p)
		} else {
			os.Stderr.Write(p)
		}
		return nil
	}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand: %v\n", err)
		if errors.Is(err, engine.ErrCancelled) {
			return 130
		}
		return 1
	}
	if res.TimedOut {
		fmt.Fprintf(os.Stderr, "quicksand: the command timed out after %v\n", timeout)
		return 124
	}
	return res.ExitCode
}
