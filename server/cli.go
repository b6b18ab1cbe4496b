package server

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quicksand-go/quicksand/internal/cliflags"
)

// Usage is the help of `quicksand serve`, in every program that has it
// (cmd/quicksand, the Python package's quicksand through qs_serve).
const Usage = `flags of serve (docs/server-openapi.yaml is its API):
  --listen ADDR     host:port (default 127.0.0.1:7070) or unix:/path; an address
                    other than the loopback needs --tls-cert and --tls-key
  --keys FILE       API keys, one a line, owner-only (default
                    ~/.config/quicksand/server-keys, made with one key if missing)
  --mount-root DIR  sandboxes may mount host folders under DIR (none by default)
  --pool SPEC       keep sandboxes started: image=NAME,size=N[,memory=SIZE][,cpus=N]
  --idle-timeout T  stop a sandbox idle this long, unless its create says (default 300s)
  --stop-timeout T  SIGTERM saves every sandbox for the next start within T (default 120s)
  --data DIR        the tenants' saves and the sandboxes kept across a restart
  --image-dir DIR   look for images here first (repeatable)`

// Main is `quicksand serve ARGS`: it answers until SIGTERM or SIGINT, then
// saves its sandboxes for its next start (within --stop-timeout), and
// returns the exit status (2: the flags, 1: a failure), having said why on
// standard error.
func Main(args []string) int {
	opts, stopTimeout, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand serve: %v\n%s\n", err, Usage)
		return 2
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := New(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand serve: %v\n", err)
		return 1
	}
	// The signals are ours before "serving" is said: a SIGTERM sent on
	// hearing it must save the sandboxes, not kill the process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	opts.Logger.Info("serving", "address", srv.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	select {
	case err = <-done:
	case sig := <-sigs:
		opts.Logger.Info("stopping", "signal", sig.String())
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		err = srv.Close(ctx)
		cancel()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand serve: %v\n", err)
		return 1
	}
	return 0
}

// ParseArgs reads serve's flags into its options and the stop timeout,
// without starting anything (the deployment recipes' test checks theirs
// with it).
func ParseArgs(args []string) (Options, time.Duration, error) {
	var opts Options
	var mountRoots, imageDirs, poolSpecs cliflags.List
	idle := cliflags.Seconds(300 * time.Second)
	stopTimeout := cliflags.Seconds(DefaultStopTimeout)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the usage is ours
	fs.StringVar(&opts.Listen, "listen", "127.0.0.1:7070", "")
	fs.StringVar(&opts.KeysFile, "keys", "", "")
	fs.StringVar(&opts.TLSCert, "tls-cert", "", "")
	fs.StringVar(&opts.TLSKey, "tls-key", "", "")
	fs.StringVar(&opts.DataDir, "data", "", "")
	fs.Var(&mountRoots, "mount-root", "")
	fs.Var(&imageDirs, "image-dir", "")
	fs.Var(&poolSpecs, "pool", "")
	fs.Var(&idle, "idle-timeout", "")
	fs.Var(&stopTimeout, "stop-timeout", "")
	if err := fs.Parse(args); err != nil {
		return opts, 0, err
	}
	if fs.NArg() > 0 {
		return opts, 0, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	opts.MountRoots, opts.ImageDirs, opts.IdleTimeout = mountRoots, imageDirs, time.Duration(idle)
	for _, p := range poolSpecs {
		spec, err := ParsePool(p)
		if err != nil {
			return opts, 0, err
		}
		opts.Pools = append(opts.Pools, spec)
	}
	return opts, time.Duration(stopTimeout), nil
}
