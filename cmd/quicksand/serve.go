package main

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

	"github.com/quicksand-go/quicksand/server"
)

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return fmt.Sprint(*l) }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runServe is `quicksand serve`: it answers until SIGTERM or SIGINT, then
// saves its sandboxes for its next start (within --stop-timeout).
func runServe(args []string) int {
	var opts server.Options
	var mountRoots, imageDirs, poolSpecs listFlag
	idle := seconds(300 * time.Second)
	stopTimeout := seconds(server.DefaultStopTimeout)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
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
	if _, ok := parse(fs, args); !ok {
		return 2
	}
	opts.MountRoots, opts.ImageDirs, opts.IdleTimeout = mountRoots, imageDirs, time.Duration(idle)
	for _, p := range poolSpecs {
		spec, err := server.ParsePool(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "quicksand serve: %v\n", err)
			return 2
		}
		opts.Pools = append(opts.Pools, spec)
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := server.New(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand serve: %v\n", err)
		return 1
	}
	// The signals are ours before "serving" is said: a SIGTERM sent on
	// hearing it must save the sandboxes, not kill the process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	opts.Logger.Info("serving", "address", srv.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	select {
	case err = <-done:
	case sig := <-sigs:
		opts.Logger.Info("stopping", "signal", sig.String())
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(stopTimeout))
		err = srv.Close(ctx)
		cancel()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand serve: %v\n", err)
		return 1
	}
	return 0
}
