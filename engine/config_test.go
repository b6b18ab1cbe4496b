package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Image != "debian" || c.MemoryMiB != 512 || c.CPUs != 1 || c.Accel != AccelAuto ||
		c.Network != NetworkRestricted || c.BootTimeout != DefaultBootTimeout || c.WorkDir == "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigRejectsBadValuesNamingTheField(t *testing.T) {
	cases := []struct {
		cfg   Config
		field string
	}{
		{Config{MemoryMiB: 10}, "memory"},
		{Config{CPUs: -1}, "cpus"},
		{Config{Accel: "warp"}, "accel"},
		{Config{Network: "open"}, "network_mode"},
		{Config{BootTimeout: -time.Second}, "boot_timeout"},
		{Config{PortForwards: []PortForward{{Host: 0, Guest: 80}}}, "port_forwards[0]"},
		{Config{PortForwards: []PortForward{{Host: 8080, Guest: 80}, {Host: 8080, Guest: 81}}}, "port_forwards[1]"},
		{Config{ExtraKernelArgs: []string{"two words"}}, "extra_kernel_args[0]"},
		{Config{ExtraKernelArgs: []string{"quicksand_token=x"}}, "extra_kernel_args[0]"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: error %v, want invalid config naming %s", c.cfg, err, c.field)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	err := newError(KindNotRunning, errors.New("QEMU exited"), "executing %q", "ls")
	if !errors.Is(err, ErrNotRunning) || errors.Is(err, ErrBootFailed) {
		t.Fatal("errors.Is does not match by kind")
	}
	if KindOf(err) != KindNotRunning || KindOf(errors.New("x")) != KindUnknown || KindOf(nil) != 0 {
		t.Fatal("KindOf")
	}
	if got := err.Error(); got != `executing "ls": QEMU exited` {
		t.Fatalf("message %q", got)
	}
}

func TestExecRequestToWire(t *testing.T) {
	w, timeout, err := ExecRequest{Command: "ls", Stdin: []byte{0xff, 0}}.toWire()
	if err != nil || timeout != DefaultTimeout || *w.Timeout != 30 || w.StdinB64 != "/wA=" || w.Stdin != "" {
		t.Fatalf("%+v %v %v", w, timeout, err)
	}
	w, _, _ = ExecRequest{Command: "ls", Stdin: []byte("text"), Timeout: 1500 * time.Millisecond}.toWire()
	if w.Stdin != "text" || *w.Timeout != 1.5 {
		t.Fatalf("%+v", w)
	}
	for _, bad := range []ExecRequest{{Command: " "}, {Command: "ls", Timeout: -1}} {
		if _, _, err := bad.toWire(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestParseMemory(t *testing.T) {
	good := map[string]int{"512M": 512, "512MiB": 512, "512mb": 512, "2G": 2048, "2GiB": 2048, "1.5G": 1536, "1024": 1024, "1T": 1 << 20, "1048576K": 1024}
	for in, want := range good {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1G", "0", "1.3M", "G"} {
		if _, err := ParseMemory(in); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "memory") {
			t.Errorf("ParseMemory(%q): %v", in, err)
		}
	}
}

func TestWithoutCmdlineToken(t *testing.T) {
	got := withoutCmdlineToken("root=/dev/vda quicksand_token=abc quicksand_port=1 quiet")
	if got != "root=/dev/vda quicksand_port=1 quiet" {
		t.Fatalf("%q", got)
	}
}
