package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/engine"
)

func pack(t testing.TB, v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeConfigAllKeys(t *testing.T) {
	c, err := DecodeConfig(pack(t, map[string]any{
		"image": "debian", "memory": "1G", "cpus": 2.0, "accel": "tcg", "network_mode": "full",
		"port_forwards": []any{map[string]any{"host": 8080, "guest": uint8(80)}},
		"boot_timeout":  int8(20), "extra_qemu_args": []string{"-s"}, "extra_kernel_args": []string{"debug"},
		"workdir": "/tmp/w", "cold_boot": true, "template_dir": "/tmp/t", "allow_host_loopback": true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Image != "debian" || c.MemoryMiB != 1024 || c.CPUs != 2 || c.Accel != engine.AccelTCG ||
		c.Network != engine.NetworkFull || len(c.PortForwards) != 1 || c.PortForwards[0] != (engine.PortForward{Host: 8080, Guest: 80}) ||
		c.BootTimeout != 20*time.Second || c.ExtraQEMUArgs[0] != "-s" || c.ExtraKernelArgs[0] != "debug" || c.WorkDir != "/tmp/w" || !c.ColdBoot || c.TemplateDir != "/tmp/t" || !c.AllowHostLoopback {
		t.Fatalf("decoded %+v", c)
	}
	c, err = DecodeConfig(pack(t, map[string]any{"memory": 768, "image": nil}))
	if err != nil || c.MemoryMiB != 768 || c.Image != "" {
		t.Fatalf("%+v %v", c, err)
	}
	if c, err := DecodeConfig(nil); err != nil || c.Image != "" {
		t.Fatalf("empty config: %+v %v", c, err)
	}
}

func TestDecodeErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{map[string]any{"colour": "blue"}, `"colour" is not a known key`},
		{map[string]any{"cpus": "two"}, `"cpus" must be a number`},
		{map[string]any{"cpus": 1.5}, `"cpus" must be a whole number`},
		{map[string]any{"memory": "lots"}, `memory`},
		{map[string]any{"port_forwards": []any{map[string]any{"host": 1, "guest": 2, "proto": "udp"}}}, `"proto" is not a known key`},
		{map[string]any{"port_forwards": []any{"8080:80"}}, `"port_forwards[0]" must be a map`},
		{map[string]any{"extra_qemu_args": []any{"-s", 3}}, `"extra_qemu_args[1]" must be a string`},
		{map[string]any{"boot_timeout": -1}, `"boot_timeout" must be between`},
		{map[string]any{"cold_boot": 1}, `"cold_boot" must be a boolean`},
		{[]int{1, 2}, "must be a msgpack map"},
	}
	for _, c := range cases {
		_, err := DecodeConfig(pack(t, c.in))
		if !errors.Is(err, engine.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want invalid config with %q", c.in, err, c.want)
		}
	}
	if _, err := DecodeConfig([]byte{0xc1}); !errors.Is(err, engine.ErrInvalidConfig) || !strings.Contains(err.Error(), "msgpack") {
		t.Errorf("garbage: %v", err)
	}
	if _, err := DecodeConfig(append(pack(t, map[string]any{}), 0x01)); err == nil {
		t.Error("trailing bytes accepted")
	}
}

func TestDecodeRequest(t *testing.T) {
	r, err := DecodeRequest(pack(t, map[string]any{
		"command": "ls", "timeout": 20, "cwd": "/tmp", "shell": "/bin/bash",
		"env": map[string]string{"A": "1"}, "stdin": []byte{0, 0xff}, "user": "nobody",
	}))
	if err != nil || r.Command != "ls" || r.Timeout != 20*time.Second || r.Cwd != "/tmp" || r.Shell != "/bin/bash" ||
		r.Env["A"] != "1" || string(r.Stdin) != "\x00\xff" || r.User != "nobody" {
		t.Fatalf("%+v %v", r, err)
	}
	r, _ = DecodeRequest(pack(t, map[string]any{"command": "ls", "timeout": 20.5, "stdin": "text"}))
	if r.Timeout != 20500*time.Millisecond || string(r.Stdin) != "text" {
		t.Fatalf("%+v", r)
	}
	for in, want := range map[string]map[string]any{
		`"command" is required`:        {"cwd": "/"},
		`"env.A" must be a string`:     {"command": "ls", "env": map[string]any{"A": 1}},
		`"timeout" must be a number`:   {"command": "ls", "timeout": "soon"},
		`"verbose" is not a known key`: {"command": "ls", "verbose": true},
	} {
		_, err := DecodeRequest(pack(t, want))
		if !errors.Is(err, engine.ErrBadRequest) || !strings.Contains(err.Error(), in) {
			t.Errorf("%v: error %v, want %q", want, err, in)
		}
	}
}

func TestEncodeResultRoundTrip(t *testing.T) {
	b := EncodeResult(&engine.ExecResult{Stdout: []byte("out"), ExitCode: 3, Duration: 1500 * time.Microsecond}, func(n int) []byte { return make([]byte, n) })
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["stdout"].([]byte)) != "out" || len(m["stderr"].([]byte)) != 0 || m["exit_code"] != int8(3) || m["duration"] != 0.0015 || m["timed_out"] != false {
		t.Fatalf("%#v", m)
	}
}

// FuzzDecode feeds arbitrary bytes to both decoders: they must return a
// value or an error of the right kind, never panic.
func FuzzDecode(f *testing.F) {
	seeds := []any{
		map[string]any{"image": "debian", "memory": "512M", "port_forwards": []any{map[string]any{"host": 1, "guest": 2}}},
		map[string]any{"command": "ls", "timeout": 1.5, "env": map[string]any{"A": "b"}, "stdin": []byte{1}},
		map[string]any{"cpus": 1e300}, []any{nil}, "str", 12,
	}
	for _, s := range seeds {
		f.Add(pack(f, s))
	}
	f.Add([]byte{0xde, 0xff, 0xff}) // map32 header promising far more than given
	f.Add(nested(40))
	f.Fuzz(func(t *testing.T, b []byte) {
		// What the shape check lets through, the decoder can walk.
		if checkShape(b) == nil {
			if err := msgpack.NewDecoder(bytes.NewReader(b)).Skip(); err != nil {
				t.Fatalf("shape accepted what msgpack cannot skip: %v", err)
			}
		}
		if _, err := DecodeConfig(b); err != nil && engine.KindOf(err) != engine.KindInvalidConfig {
			t.Fatalf("config error of kind %v: %v", engine.KindOf(err), err)
		}
		if _, err := DecodeRequest(b); err != nil && engine.KindOf(err) != engine.KindBadRequest {
			t.Fatalf("request error of kind %v: %v", engine.KindOf(err), err)
		}
	})
}

// Output the engine put in the slots of a result buffer (ResultSlots, for
// ExecRequest.OutputMemory) is encoded in place: the buffer decodes to the
// result, whatever the exit code, and the output was not copied.
func TestEncodeResultInPlace(t *testing.T) {
	for _, size := range []int{0, 1, 255, 256, 65536} {
		for _, code := range []int{0, -1, -33, 1 << 40} {
			buf := make([]byte, ResultSize(size, 3))
			out, errOut := ResultSlots(buf, size, 3)
			for i := range out {
				out[i] = byte(i)
			}
			copy(errOut, "err")
			b := EncodeResultInto(buf, &engine.ExecResult{Stdout: out, Stderr: errOut, ExitCode: code})
			var r struct {
				Stdout   []byte `msgpack:"stdout"`
				Stderr   []byte `msgpack:"stderr"`
				ExitCode int    `msgpack:"exit_code"`
			}
			if err := msgpack.Unmarshal(b, &r); err != nil || len(r.Stdout) != size || string(r.Stderr) != "err" || r.ExitCode != code {
				t.Fatalf("size %d, code %d: %v, %d bytes, %q, %d", size, code, err, len(r.Stdout), r.Stderr, r.ExitCode)
			}
			for i, c := range r.Stdout {
				if c != byte(i) {
					t.Fatalf("size %d: byte %d is %d", size, i, c)
				}
			}
			if &b[0] != &buf[0] {
				t.Fatal("encoded elsewhere than the buffer")
			}
		}
	}
}

// The hand-written result encoder writes what a msgpack decoder reads
// back, at every size class of bin and int, into exactly what it asked for.
func TestEncodeResultSizes(t *testing.T) {
	for _, size := range []int{0, 1, 255, 256, 65535, 65536, 1 << 20} {
		for _, code := range []int{0, 127, 128, -1, -32, -33, 137, 1 << 40} {
			out := bytes.Repeat([]byte{'x'}, size)
			asked := 0
			b := EncodeResult(&engine.ExecResult{Stdout: out, Stderr: []byte("e"), ExitCode: code, TimedOut: true, StderrTruncated: true},
				func(n int) []byte { asked = n; return make([]byte, n) })
			if len(b) != asked {
				t.Fatalf("wrote %d of the %d bytes asked for", len(b), asked)
			}
			var r struct {
				Stdout          []byte  `msgpack:"stdout"`
				Stderr          []byte  `msgpack:"stderr"`
				ExitCode        int     `msgpack:"exit_code"`
				TimedOut        bool    `msgpack:"timed_out"`
				Duration        float64 `msgpack:"duration"`
				StdoutTruncated bool    `msgpack:"stdout_truncated"`
				StderrTruncated bool    `msgpack:"stderr_truncated"`
			}
			if err := msgpack.Unmarshal(b, &r); err != nil {
				t.Fatalf("size %d, code %d: %v", size, code, err)
			}
			if !bytes.Equal(r.Stdout, out) || string(r.Stderr) != "e" || r.ExitCode != code || !r.TimedOut || r.StdoutTruncated || !r.StderrTruncated {
				t.Fatalf("size %d, code %d: %+v", size, code, r)
			}
		}
	}
}
