package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/quicksand-go/quicksand/engine"
	"github.com/quicksand-go/quicksand/internal/cliflags"
)

// sandboxFlags are the flags of run and shell, the same in the Python CLI.
type sandboxFlags struct {
	image, memory, accel string
	cpus                 int
	timeout              cliflags.Seconds
	verbose              bool
}

func newFlagSet(name string, sf *sandboxFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the usage is ours
	fs.StringVar(&sf.image, "image", engine.DefaultImage, "")
	fs.StringVar(&sf.memory, "memory", "512M", "")
	fs.IntVar(&sf.cpus, "cpus", engine.DefaultCPUs, "")
	fs.StringVar(&sf.accel, "accel", string(engine.AccelAuto), "")
	sf.timeout = cliflags.Seconds(10 * time.Minute)
	fs.Var(&sf.timeout, "timeout", "")
	fs.BoolVar(&sf.verbose, "v", false, "")
	fs.BoolVar(&sf.verbose, "verbose", false, "")
	return fs
}

// parse parses the flags at the front of args and returns the words after
// them as they are (a command's own flags included), saying what is wrong
// and returning false on error.
func parse(fs *flag.FlagSet, args []string) ([]string, bool) {
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "quicksand: %v\n%s\n", err, usage)
		return nil, false
	}
	return fs.Args(), true
}

func (sf *sandboxFlags) config() (engine.Config, error) {
	mem, err := engine.ParseMemory(sf.memory)
	if err != nil {
		return engine.Config{}, err
	}
	return engine.Config{Image: sf.image, MemoryMiB: mem, CPUs: sf.cpus, Accel: engine.Accel(sf.accel)}, nil
}

// start boots a sandbox as the flags say; on failure it has said why and
// returns the exit status (2: the flags, 1: the start).
func (sf *sandboxFlags) start(ctx context.Context) (*engine.Sandbox, int) {
	cfg, err := sf.config()
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand: %v\n", err)
		return nil, 2
	}
	sb, err := engine.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand: %v\n", err)
		return nil, 1
	}
	if sf.verbose {
		printBootTiming(sb)
	}
	return sb, 0
}

func printBootTiming(sb *engine.Sandbox) {
	t := sb.BootTiming()
	fmt.Fprintf(os.Stderr, "quicksand: %s guest on %s: kernel %v, agent %v, ready %v\n",
		sb.Arch(), sb.Accelerator(), t.KernelBooted.Round(time.Millisecond), t.AgentListening.Round(time.Millisecond), t.Ready.Round(time.Millisecond))
}
