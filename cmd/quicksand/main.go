// Command quicksand boots a sandbox and runs one command in it, streaming
// its output, and exits with the command's exit code; or manages images.
//
//	quicksand run [-image debian] [-memory 512] [-timeout 60s] 'uname -a'
//	quicksand image list
//	quicksand image install [-dir FOLDER] ARCHIVE.qsimage
//	quicksand image remove [-dir FOLDER] NAME
//	quicksand image pack NAME ARCHIVE.qsimage
//	quicksand image import [-name alpine] [-dir FOLDER] QUICKSAND_IMAGE_PACKAGE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quicksand-go/quicksand/engine"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

const usage = `usage: quicksand run [flags] COMMAND
       quicksand image list
       quicksand image install [-dir FOLDER] ARCHIVE.qsimage
       quicksand image remove [-dir FOLDER] NAME
       quicksand image pack NAME ARCHIVE.qsimage
       quicksand image import [-name NAME] [-dir FOLDER] QUICKSAND_IMAGE_PACKAGE_FOLDER`

func run(args []string) int {
	switch {
	case len(args) >= 2 && args[0] == "image":
		if cmd, ok := imageCommands[args[1]]; ok {
			return cmd(args[2:])
		}
		fmt.Fprintln(os.Stderr, usage)
		return 2
	case len(args) == 0 || args[0] != "run":
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("quicksand run", flag.ContinueOnError)
	img := fs.String("image", engine.DefaultImage, "image name or folder")
	mem := fs.Int("memory", engine.DefaultMemoryMiB, "guest memory in MiB")
	cpus := fs.Int("cpus", engine.DefaultCPUs, "guest CPUs")
	accel := fs.String("accel", string(engine.AccelAuto), "accelerator: auto, kvm, hvf, tcg")
	timeout := fs.Duration("timeout", 10*time.Minute, "command timeout")
	verbose := fs.Bool("v", false, "print boot timing to stderr")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	command := strings.Join(fs.Args(), " ")
	if command == "" {
		fmt.Fprintln(os.Stderr, "quicksand run: no command given")
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	sb, err := engine.Start(ctx, engine.Config{Image: *img, MemoryMiB: *mem, CPUs: *cpus, Accel: engine.Accel(*accel)})
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand: %v\n", err)
		return 1
	}
	defer sb.Stop(context.Background())
	if *verbose {
		t := sb.BootTiming()
		fmt.Fprintf(os.Stderr, "quicksand: %s guest on %s: kernel %v, agent %v, ready %v\n",
			sb.Arch(), sb.Accelerator(), t.KernelBooted.Round(time.Millisecond), t.AgentListening.Round(time.Millisecond), t.Ready.Round(time.Millisecond))
	}
	res, err := sb.ExecuteStream(ctx, engine.ExecRequest{Command: command, Timeout: *timeout}, func(s engine.Stream, p []byte) {
		if s == engine.Stdout {
			os.Stdout.Write(p)
		} else {
			os.Stderr.Write(p)
		}
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand: %v\n", err)
		if errors.Is(err, engine.ErrCancelled) {
			return 130
		}
		return 1
	}
	if res.TimedOut {
		fmt.Fprintf(os.Stderr, "quicksand: the command timed out after %v\n", *timeout)
		return 124
	}
	return res.ExitCode
}
