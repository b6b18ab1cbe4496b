package engine

import (
	"fmt"
	"path"
	"strings"

	"github.com/quicksand-go/quicksand/engine/internal/image"
)

// remoteOptions is the server the config names, the environment's when it
// names none.
func (c Config) remoteOptions() RemoteOptions {
	return RemoteOptions{Server: c.Server, APIKey: c.APIKey}.resolved()
}

// refuseRemote stops what starts a VM on this host (withDefaults' callers:
// a local start, a pool, a template) from taking a config that is a
// server's, or that has a server's options without one.
func (c Config) refuseRemote() error {
	bad := func(field, format string, args ...any) error {
		return newError(KindInvalidConfig, nil, "config field %s: %s", field, fmt.Sprintf(format, args...))
	}
	o := c.remoteOptions()
	switch {
	case o.Server != "":
		return bad("server", "a sandbox of a server is started by Start (a pool of them is the server's: quicksand serve --pool)")
	case o.APIKey != "":
		return o.check() // says that a key needs a server
	case c.IdleTimeout != 0:
		return bad("idle_timeout", "only a server's sandboxes have an idle timeout (config field server)")
	}
	return nil
}

// validateRemote checks a config that names a server: the options of this
// host's VMs are refused, naming them; the rest is checked as locally, and
// again by the server.
func (c Config) validateRemote() error {
	o := c.remoteOptions()
	if err := o.check(); err != nil {
		return err
	}
	bad := func(field, format string, args ...any) error {
		return newError(KindInvalidConfig, nil, "config field %s: %s", field, fmt.Sprintf(format, args...))
	}
	notRemote := func(field string) error {
		return bad(field, "not allowed with a server (%s): it is an option of this host's VMs, and the server chooses its own", o.Server)
	}
	switch {
	case len(c.ImageDirs) > 0:
		return notRemote("image_dirs")
	case c.QEMUPath != "":
		return notRemote("qemu_path")
	case c.WorkDir != "":
		return notRemote("work_dir")
	case c.TemplateDir != "":
		return notRemote("template_dir")
	case len(c.ExtraQEMUArgs) > 0:
		return notRemote("extra_qemu_args")
	case len(c.ExtraKernelArgs) > 0:
		return notRemote("extra_kernel_args")
	case len(c.PortForwards) > 0:
		return bad("port_forwards", "not allowed with a server (%s): its ports would be bound on the server's host", o.Server)
	case c.AllowHostLoopback:
		return bad("allow_host_loopback", "not allowed with a server (%s): it would open the server host's loopback services to the guest", o.Server)
	case c.Accel != "" && c.Accel != AccelAuto:
		return bad("accel", "%q is not allowed with a server (%s): the server chooses the accelerator (auto)", c.Accel, o.Server)
	case c.Image != "" && image.IsPath(c.Image):
		return bad("image", "%q is a path on this host; a server takes the name of one of its images or saves", c.Image)
	}
	for k := range c.Metadata {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(c.Metadata[k], "\x00") {
			return bad("metadata", "the label %q: keys are non-empty, without '=' or NUL bytes, and values without NUL bytes", k)
		}
	}
	for i, m := range c.Mounts {
		switch {
		case m.HostPath == "" || !path.IsAbs(m.HostPath):
			return bad(fmt.Sprintf("mounts[%d]", i), "a server's mount names an absolute folder of the server's host, not %q", m.HostPath)
		case m.GuestPath == "" || !path.IsAbs(m.GuestPath) || path.Clean(m.GuestPath) == "/":
			return bad(fmt.Sprintf("mounts[%d]", i), "the guest path %q must be absolute and not the root", m.GuestPath)
		case strings.IndexByte(m.HostPath+m.GuestPath, 0) >= 0:
			return bad(fmt.Sprintf("mounts[%d]", i), "a path contains a NUL byte")
		}
	}
	// The rest as locally: the ranges of memory, cpus, boot timeout, the
	// network mode, the image's name.
	local := c
	local.Server, local.APIKey, local.IdleTimeout, local.Mounts = "", "", 0, nil
	local.Logger = nil
	_, err := local.defaulted()
	return err
}
