package wire

import (
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/engine"
)

// seconds turns a number of seconds into a Duration, refusing what does
// not fit.
func seconds(f *fields, key string, dst *time.Duration) error {
	n, ok, err := f.number(key)
	if err != nil || !ok {
		return err
	}
	if n < 0 || n > float64(1<<62)/float64(time.Second) {
		return f.fail(key, "must be between 0 and %d seconds, not %v", int64(1<<62/time.Second), n)
	}
	*dst = time.Duration(n * float64(time.Second))
	return nil
}

// byteCount reads a whole, non-negative number of bytes.
func byteCount(f *fields, key string, dst *int64) error {
	var n int
	if err := f.integer(key, &n); err != nil {
		return err
	}
	if n < 0 {
		return f.fail(key, "must not be negative, not %d", n)
	}
	*dst = int64(n)
	return nil
}

// DecodeConfig reads a sandbox config map (keys in include/quicksand.h).
// Values are checked further by engine.Start.
func DecodeConfig(b []byte) (engine.Config, error) {
	f, err := decodeMap(b, "config", engine.KindInvalidConfig)
	if err != nil {
		return engine.Config{}, err
	}
	return configFrom(f)
}

// ConfigKeys are the keys DecodeConfig reads: the contract's, which
// internal/contract checks against the header and the bindings.
func ConfigKeys() []string {
	f, _ := decodeMap(nil, "config", engine.KindInvalidConfig)
	_, _ = configFrom(f)
	return f.read()
}

// RequestKeys are the keys DecodeRequest reads.
func RequestKeys() []string {
	f, _ := decodeMap(nil, "request", engine.KindBadRequest)
	_, _ = requestFrom(f)
	return f.read()
}

func configFrom(f *fields) (c engine.Config, err error) {
	if v, ok := f.get("memory"); ok {
		switch m := v.(type) {
		case string:
			if c.MemoryMiB, err = engine.ParseMemory(m); err != nil {
				return c, err
			}
		default:
			if err := f.integer("memory", &c.MemoryMiB); err != nil {
				return c, err
			}
		}
	}
	var accel, network string
	steps := []error{
		f.str("image", &c.Image),
		f.strList("image_dirs", &c.ImageDirs),
		f.str("qemu_path", &c.QEMUPath),
		f.integer("cpus", &c.CPUs),
		f.str("accel", &accel),
		f.str("network_mode", &network),
		seconds(f, "boot_timeout", &c.BootTimeout),
		f.strList("extra_qemu_args", &c.ExtraQEMUArgs),
		f.strList("extra_kernel_args", &c.ExtraKernelArgs),
		f.str("workdir", &c.WorkDir),
		f.boolean("cold_boot", &c.ColdBoot),
		f.boolean("allow_host_loopback", &c.AllowHostLoopback),
		f.str("template_dir", &c.TemplateDir),
		f.str("server", &c.Server),
		f.str("api_key", &c.APIKey),
		f.strMap("metadata", &c.Metadata),
		idleTimeout(f, "idle_timeout", &c.IdleTimeout),
		networkPolicy(f, "network_policy", &c.NetworkPolicy),
		display(f, "display", &c.Display),
	}
	for _, err := range steps {
		if err != nil {
			return c, err
		}
	}
	c.Accel, c.Network = engine.Accel(accel), engine.NetworkMode(network)
	if v, ok := f.get("port_forwards"); ok {
		list, isList := v.([]any)
		if !isList {
			return c, f.fail("port_forwards", "must be an array of {host, guest} maps, not %s", typeName(v))
		}
		for i, item := range list {
			key := fmt.Sprintf("port_forwards[%d]", i)
			pf, err := f.sub(key, item)
			if err != nil {
				return c, err
			}
			var fw engine.PortForward
			if err := pf.integer("host", &fw.Host); err != nil {
				return c, err
			}
			if err := pf.integer("guest", &fw.Guest); err != nil {
				return c, err
			}
			if err := pf.unknown(); err != nil {
				return c, err
			}
			c.PortForwards = append(c.PortForwards, fw)
		}
	}
	if v, ok := f.get("mounts"); ok {
		list, isList := v.([]any)
		if !isList {
			return c, f.fail("mounts", "must be an array of {host, guest, readonly} maps, not %s", typeName(v))
		}
		for i, item := range list {
			mf, err := f.sub(fmt.Sprintf("mounts[%d]", i), item)
			if err != nil {
				return c, err
			}
			m, err := mountFrom(mf)
			if err != nil {
				return c, err
			}
			c.Mounts = append(c.Mounts, m)
		}
	}
	return c, f.unknown()
}

// DecodeRequest reads an execute request map.
func DecodeRequest(b []byte) (engine.ExecRequest, error) {
	f, err := decodeMap(b, "request", engine.KindBadRequest)
	if err != nil {
		return engine.ExecRequest{}, err
	}
	return requestFrom(f)
}

func requestFrom(f *fields) (r engine.ExecRequest, err error) {
	steps := []error{
		f.str("command", &r.Command),
		seconds(f, "timeout", &r.Timeout),
		f.str("cwd", &r.Cwd),
		f.str("shell", &r.Shell),
		f.strMap("env", &r.Env),
		f.str("user", &r.User),
		byteCount(f, "max_output", &r.MaxOutput),
		f.bytesOrStr("stdin", &r.Stdin),
	}
	for _, err := range steps {
		if err != nil {
			return r, err
		}
	}
	if _, ok := f.m["command"]; !ok {
		return r, f.fail("command", "is required")
	}
	return r, f.unknown()
}

// BootTiming is boot_timing in the info map: seconds since the start call.
type BootTiming struct {
	Warm           bool    `msgpack:"warm"`
	QEMUStarted    float64 `msgpack:"qemu_started"`
	KernelBooted   float64 `msgpack:"kernel_booted"`
	AgentListening float64 `msgpack:"agent_listening"`
	Ready          float64 `msgpack:"ready"`
}

// Info is the msgpack form of qs_sandbox_info.
type Info struct {
	// ID is the server's id of a server's sandbox (what
	// qs_sandbox_connect takes), a random one for a local sandbox.
	ID string `msgpack:"id"`
	// Remote: a server keeps the sandbox.
	Remote      bool   `msgpack:"remote"`
	Running     bool   `msgpack:"running"`
	Accelerator string `msgpack:"accelerator"`
	Arch        string `msgpack:"arch"`
	PID         int    `msgpack:"pid"`
	AgentAddr   string `msgpack:"agent_addr"`
	// OutputChannel: commands' output travels over the output channel.
	OutputChannel bool `msgpack:"output_channel"`
	// OutputChannelError says why not, when it does not.
	OutputChannelError string `msgpack:"output_channel_error,omitempty"`
	// Last: the C tests' small reader stops at the first nested value.
	BootTiming BootTiming `msgpack:"boot_timing"`
	// Metadata: the sandbox's labels (never nil: an empty map).
	Metadata map[string]string `msgpack:"metadata"`
}

// EncodeInfo writes the info map of a sandbox.
func EncodeInfo(sb *engine.Sandbox) ([]byte, error) {
	t := sb.BootTiming()
	channel, why := sb.OutputChannel()
	metadata := sb.Metadata()
	if metadata == nil {
		metadata = map[string]string{}
	}
	info := Info{
		ID: sb.ID(), Remote: sb.Remote(), Metadata: metadata,
		OutputChannel: channel,
		Running:       sb.IsRunning(), Accelerator: string(sb.Accelerator()), Arch: sb.Arch(),
		PID: sb.PID(), AgentAddr: sb.AgentAddr(),
		BootTiming: BootTiming{
			Warm:        t.Warm,
			QEMUStarted: t.QEMUStarted.Seconds(), KernelBooted: t.KernelBooted.Seconds(),
			AgentListening: t.AgentListening.Seconds(), Ready: t.Ready.Seconds(),
		},
	}
	if why != nil {
		info.OutputChannelError = why.Error()
	}
	return msgpack.Marshal(info)
}
