package engine

// Building the default image from the sources: `quicksand image build`.

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildOptions says what BuildImage builds and where.
type BuildOptions struct {
	// Source is a checkout of Quicksand-Go; empty: $QUICKSAND_SOURCE, else
	// the nearest folder above the working directory that holds one.
	Source string
	// Arch is the guest architecture, x86_64 or arm64; empty: the host's.
	Arch string
	// Name is the image: "debian" (empty) or a variant build/image.sh
	// knows ("debian-python", for the code interpreter).
	Name string
	// Dir is where the image is installed; empty: DefaultImageDir().
	Dir string
	// Log gets the build's own output; nil: discarded.
	Log io.Writer
}

// BuildImage builds the default image, debian-ARCH (or the variant
// o.Name), with the sources' build/image.sh, and returns its folder. As root the root file system
// comes from debootstrap; as any other user from mmdebstrap in a user
// namespace and fakeroot (the packages mmdebstrap, uidmap and fakeroot, and
// the user's subordinate ids). It needs make and Go to build the guest
// agent.
func BuildImage(ctx context.Context, o BuildOptions) (string, error) {
	src, err := findSource(o.Source)
	if err != nil {
		return "", err
	}
	arch := o.Arch
	if arch == "" {
		arch = HostArch()
	}
	if arch != "x86_64" && arch != "arm64" {
		return "", newError(KindBadRequest, nil, "no image for architecture %q: x86_64 or arm64", arch)
	}
	name := o.Name
	if name == "" {
		name = "debian"
	}
	if name != "debian" && name != "debian-python" {
		return "", newError(KindBadRequest, nil, "no image %q to build: debian or debian-python", name)
	}
	dir := o.Dir
	if dir == "" {
		dir = DefaultImageDir()
	}
	if dir, err = filepath.Abs(dir); err != nil { // the build runs in the sources
		return "", newError(KindUnknown, err, "finding the image folder")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", newError(KindUnknown, err, "finding a folder for the build")
	}
	work := filepath.Join(cache, "quicksand", "image-build")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", newError(KindUnknown, err, "making the build folder")
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	run := func(what string, cmd *exec.Cmd) error {
		cmd.Dir, cmd.Stdout, cmd.Stderr = src, log, log
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return newError(KindCancelled, context.Cause(ctx), "image build: %s", what)
			}
			return newError(KindUnknown, err, "image build: %s failed (its output is above)", what)
		}
		return nil
	}
	// The agent through the sources' own Makefile rule (and its flags),
	// into an output folder of this user's.
	out := filepath.Join(work, "out")
	agent := filepath.Join(out, "agent", "quicksand-agent-"+arch)
	if err := run("building the guest agent (needs make and Go)", exec.CommandContext(ctx, "make", "--no-print-directory", "OUT="+out, agent)); err != nil {
		return "", err
	}
	image := exec.CommandContext(ctx, "bash", filepath.Join(src, "build", "image.sh"), arch, agent, filepath.Join(out, "image"), dir, name)
	if err := run("build/image.sh", image); err != nil {
		return "", err
	}
	return filepath.Join(dir, name+"-"+arch), nil
}

// findSource returns the checkout to build from: dir if given, else
// $QUICKSAND_SOURCE, else the working directory or the nearest folder above
// it that holds build/image.sh and guest-agent/.
func findSource(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("QUICKSAND_SOURCE")
	}
	isSource := func(d string) bool {
		_, e1 := os.Stat(filepath.Join(d, "build", "image.sh"))
		fi, e2 := os.Stat(filepath.Join(d, "guest-agent"))
		return e1 == nil && e2 == nil && fi.IsDir()
	}
	if dir != "" {
		if !isSource(dir) {
			return "", newError(KindBadRequest, nil, "%s is not a Quicksand-Go checkout (no build/image.sh and guest-agent/)", dir)
		}
		return filepath.Abs(dir)
	}
	d, err := os.Getwd()
	if err != nil {
		return "", newError(KindUnknown, err, "finding the working directory")
	}
	for {
		if isSource(d) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", newError(KindBadRequest, nil, "image build needs the Quicksand-Go sources: run it inside a clone, or give --source (or QUICKSAND_SOURCE); a prebuilt image installs with `quicksand image install`")
		}
		d = parent
	}
}
