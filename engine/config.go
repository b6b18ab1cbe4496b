package engine

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/image"
)

// Accel names a QEMU accelerator.
type Accel string

const (
	AccelAuto Accel = "auto" // KVM (Linux) or HVF (macOS) when they work, else TCG
	AccelKVM  Accel = "kvm"
	AccelHVF  Accel = "hvf"
	AccelTCG  Accel = "tcg" // software emulation: works everywhere, slowly
)

// NetworkMode says what the guest may reach.
type NetworkMode string

const (
	// NetworkRestricted: the guest reaches nothing outside the VM; the
	// host's port forwards into it (the agent's included) still work.
	NetworkRestricted NetworkMode = "restricted"
	// NetworkFull: the guest also reaches out through the host (NAT), but
	// not the host's own loopback services (unless AllowHostLoopback).
	NetworkFull NetworkMode = "full"
)

// PortForward forwards 127.0.0.1:Host on the host to Guest in the guest.
type PortForward struct {
	Host  int
	Guest int
}

// Defaults for the zero values of Config.
const (
	DefaultImage       = "debian"
	DefaultMemoryMiB   = 512
	DefaultCPUs        = 1
	DefaultBootTimeout = 60 * time.Second
)

// Config describes a sandbox. The zero value of every field means its
// default.
type Config struct {
	// Image is an image name looked up in the image folders, or a path to
	// an image folder.
	Image string
	// ImageDirs are searched for Image before $QUICKSAND_IMAGE_PATH and the
	// default data folder.
	ImageDirs []string
	MemoryMiB int
	CPUs      int
	Accel     Accel
	Network   NetworkMode
	// AllowHostLoopback, in full network mode, lets the guest reach the
	// host's loopback services (127.0.0.1) as 10.0.2.2. Off by default:
	// they trust their callers to be local, and the guest is not.
	AllowHostLoopback bool
	// NetworkPolicy, if set, narrows full network mode to the destinations
	// it allows (see NetworkPolicy); Network then defaults to full.
	NetworkPolicy *NetworkPolicy
	// PortForwards are bound on 127.0.0.1 only.
	PortForwards []PortForward
	// Mounts are host folders shared into the guest once it is up (see
	// Sandbox.Mount).
	Mounts []Mount
	// BootTimeout bounds the time from QEMU's start to a ready agent.
	BootTimeout time.Duration
	// ExtraQEMUArgs are appended to QEMU's command line.
	ExtraQEMUArgs []string
	// ExtraKernelArgs are appended to the kernel command line.
	ExtraKernelArgs []string
	// WorkDir is where sandboxes keep their overlay, console log and
	// sockets, one folder each. Default: $XDG_RUNTIME_DIR/quicksand, else
	// the temporary folder's quicksand-<uid>.
	WorkDir string
	// QEMUPath overrides the QEMU binary (default: qemu-system-<arch> on PATH).
	QEMUPath string
	// ColdBoot boots the kernel even when a template of the image could be
	// resumed (see Start).
	ColdBoot bool
	// TemplateDir is where templates are kept. Default:
	// $XDG_CACHE_HOME/quicksand/templates, else ~/.cache/quicksand/templates.
	TemplateDir string
	// Server, when set, makes the sandbox a server's (`quicksand serve`):
	// Start asks the server for it and every method goes there, with the
	// same results and error kinds as locally. http://host:port (a
	// loopback host only), https://host:port or unix:/path/to.sock. Empty:
	// $QUICKSAND_SERVER, with $QUICKSAND_API_KEY as the key unless APIKey
	// is set (see RemoteOptions). The options of this host's VMs
	// (ImageDirs, QEMUPath, WorkDir, TemplateDir, ExtraQEMUArgs,
	// ExtraKernelArgs, PortForwards, AllowHostLoopback, an Accel other than
	// auto, an image path) are the server's business and refused with it.
	Server string
	// APIKey is the server's key for this client (a key without a server is
	// an error).
	APIKey string
	// Metadata are labels of the sandbox (Sandbox.Metadata); a server
	// lists its sandboxes by them (ListSandboxes).
	Metadata map[string]string
	// IdleTimeout: a server stops its sandbox once no call came for this
	// long (0: the server's default, 300 s unless it says otherwise;
	// negative: never). Only a server's sandboxes have one.
	IdleTimeout time.Duration
	// Display gives the sandbox a screen, a keyboard and a mouse, driven
	// from the host (desktop.go), in an image with a desktop
	// (debian-desktop). nil: none.
	Display *Display
	// Logger is told the decisions the engine takes on its own: the
	// accelerator and any fallback from it, templates built and rebuilt
	// and why, the output channel not used and why, retries, stale folders
	// swept. Default: none.
	Logger *slog.Logger
}

// Validate checks every field as Start will, naming the field at fault
// (an *Error of KindInvalidConfig), without starting anything. Zero fields
// are valid: they mean their defaults.
func (c Config) Validate() error {
	if c.remoteOptions().Server != "" {
		return c.validateRemote()
	}
	_, err := c.withDefaults()
	return err
}

// withDefaults fills zero fields and checks every field, naming the field
// in the error. Nothing is started before this passes.
func (c Config) withDefaults() (Config, error) {
	if err := c.refuseRemote(); err != nil {
		return c, err
	}
	return c.defaulted()
}

// defaulted is withDefaults without the server's options (which a
// server's config checks as well, in validateRemote).
func (c Config) defaulted() (Config, error) {
	if c.Image == "" {
		c.Image = DefaultImage
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = DefaultMemoryMiB
	}
	if c.CPUs == 0 {
		c.CPUs = DefaultCPUs
	}
	if c.Accel == "" {
		c.Accel = AccelAuto
	}
	if c.Network == "" {
		c.Network = NetworkRestricted
		if c.NetworkPolicy != nil {
			c.Network = NetworkFull
		}
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = DefaultBootTimeout
	}
	if c.WorkDir == "" {
		c.WorkDir = defaultWorkDir()
	}
	if c.TemplateDir == "" {
		c.TemplateDir = defaultTemplateDir()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Logger = slog.New(plainErrors(c.Logger.Handler()))
	bad := func(field, format string, args ...any) (Config, error) {
		return c, newError(KindInvalidConfig, nil, "config field %s: %s", field, fmt.Sprintf(format, args...))
	}
	if !image.IsPath(c.Image) {
		if err := image.CheckName(c.Image); err != nil {
			return bad("image", "%v", err)
		}
	}
	switch {
	case c.MemoryMiB < 64 || c.MemoryMiB > 1<<20:
		return bad("memory", "%d MiB is out of range (64 MiB to 1 TiB)", c.MemoryMiB)
	case c.CPUs < 1 || c.CPUs > 256:
		return bad("cpus", "%d is out of range (1 to 256)", c.CPUs)
	case c.BootTimeout < 0:
		return bad("boot_timeout", "must be positive, not %v", c.BootTimeout)
	}
	switch c.Accel {
	case AccelAuto, AccelKVM, AccelHVF, AccelTCG:
	default:
		return bad("accel", "%q is not one of auto, kvm, hvf, tcg", c.Accel)
	}
	switch c.Network {
	case NetworkRestricted, NetworkFull:
	default:
		return bad("network_mode", "%q is not one of restricted, full", c.Network)
	}
	if c.AllowHostLoopback && c.Network != NetworkFull {
		return bad("allow_host_loopback", "needs network_mode full")
	}
	if c.NetworkPolicy != nil {
		switch {
		case c.Network != NetworkFull:
			return bad("network_policy", "needs network_mode full")
		case c.AllowHostLoopback:
			return bad("network_policy", "cannot be used with allow_host_loopback (the policy's guard keeps the host out)")
		}
		if _, err := c.NetworkPolicy.compile(); err != nil {
			return bad("network_policy", "%v", err)
		}
		c.NetworkPolicy = c.NetworkPolicy.clone()
	}
	if c.Display != nil {
		d := *c.Display
		if d.Width == 0 && d.Height == 0 {
			d.Width, d.Height = DefaultDisplayWidth, DefaultDisplayHeight
		}
		if d.Width < 320 || d.Width > 3840 || d.Height < 200 || d.Height > 2160 {
			return bad("display", "%dx%d is out of range (320x200 to 3840x2160)", d.Width, d.Height)
		}
		c.Display = &d
	}
	seen := map[int]bool{}
	for i, pf := range c.PortForwards {
		if pf.Host < 1 || pf.Host > 65535 || pf.Guest < 1 || pf.Guest > 65535 {
			return bad(fmt.Sprintf("port_forwards[%d]", i), "ports must be 1 to 65535 (host %d, guest %d)", pf.Host, pf.Guest)
		}
		if seen[pf.Host] {
			return bad(fmt.Sprintf("port_forwards[%d]", i), "host port %d is forwarded twice", pf.Host)
		}
		seen[pf.Host] = true
	}
	guestPaths := map[string]bool{}
	c.Mounts = slices.Clone(c.Mounts)
	for i, m := range c.Mounts {
		checked, err := checkMount(m)
		if err != nil {
			return bad(fmt.Sprintf("mounts[%d]", i), "%v", err)
		}
		if guestPaths[checked.GuestPath] {
			return bad(fmt.Sprintf("mounts[%d]", i), "%s is mounted twice", checked.GuestPath)
		}
		guestPaths[checked.GuestPath] = true
		c.Mounts[i] = checked
	}
	for i, a := range c.ExtraKernelArgs {
		if a == "" || strings.ContainsAny(a, " \t\n") {
			return bad(fmt.Sprintf("extra_kernel_args[%d]", i), "%q must be one word", a)
		}
		if strings.HasPrefix(a, "quicksand_") {
			return bad(fmt.Sprintf("extra_kernel_args[%d]", i), "%q would override the agent's settings", a)
		}
	}
	return c, nil
}

func defaultTemplateDir() string {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "quicksand", "templates")
}

func defaultWorkDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "quicksand")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("quicksand-%d", os.Getuid()))
}
