package qemu

import (
	"slices"
	"strings"
	"testing"
)

// argAfter returns the value that follows flag the n-th time it appears.
func argsAfter(args []string, flag string) []string {
	var vals []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			vals = append(vals, args[i+1])
		}
	}
	return vals
}

func TestArgsPerArchAndAccel(t *testing.T) {
	cases := []struct {
		arch, accel   string
		machine, cpu  string
		wantCPUAbsent bool
		wantBinary    string
	}{
		{"x86_64", "tcg", "pc", "", true, "qemu-system-x86_64"},
		{"x86_64", "kvm", "microvm,x-option-roms=off,rtc=on", "host", false, "qemu-system-x86_64"},
		{"arm64", "tcg", "virt", "max,pauth-impdef=on", false, "qemu-system-aarch64"},
		{"arm64", "hvf", "virt", "host", false, "qemu-system-aarch64"},
	}
	for _, c := range cases {
		t.Run(c.arch+"/"+c.accel, func(t *testing.T) {
			s := Spec{Arch: c.arch, Accel: c.accel, MemoryMiB: 512, CPUs: 2, Kernel: "/img/k", Initrd: "/img/i",
				Append: "root=/dev/vda quicksand_port=7", Disk: "/w/overlay.qcow2"}
			args := s.Args()
			if got := argsAfter(args, "-M"); len(got) != 1 || got[0] != c.machine+",memory-backend=mem0" {
				t.Errorf("machine %v, want %s", got, c.machine)
			}
			cpu := argsAfter(args, "-cpu")
			if c.wantCPUAbsent && len(cpu) != 0 || !c.wantCPUAbsent && (len(cpu) != 1 || cpu[0] != c.cpu) {
				t.Errorf("cpu %v, want %q", cpu, c.cpu)
			}
			if got := argsAfter(args, "-accel"); !slices.Equal(got, []string{c.accel}) {
				t.Errorf("accel %v", got)
			}
			if got := argsAfter(args, "-m"); !slices.Equal(got, []string{"512"}) {
				t.Errorf("memory %v", got)
			}
			if got := argsAfter(args, "-smp"); !slices.Equal(got, []string{"2"}) {
				t.Errorf("cpus %v", got)
			}
			if got := argsAfter(args, "-append"); len(got) != 1 || !strings.HasPrefix(got[0], "root=/dev/vda quicksand_port=7") {
				t.Errorf("append %v", got)
			}
			if got := argsAfter(args, "-serial"); !slices.Equal(got, []string{"stdio"}) {
				t.Errorf("serial %v", got)
			}
			if !slices.Contains(args, "-no-reboot") || !slices.Contains(args, "-nodefaults") {
				t.Errorf("missing -no-reboot or -nodefaults: %v", args)
			}
			if Binary(c.arch) != c.wantBinary {
				t.Errorf("binary %s", Binary(c.arch))
			}
		})
	}
}

func TestNetdev(t *testing.T) {
	s := Spec{Arch: "x86_64", Accel: "tcg", Restricted: true, Forwards: []Forward{{Host: 4000, Guest: 4000}, {Host: 8080, Guest: 80}}}
	nd := argsAfter(s.Args(), "-netdev")
	want := "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:4000-:4000,hostfwd=tcp:127.0.0.1:8080-:80"
	if len(nd) != 1 || nd[0] != want {
		t.Fatalf("netdev %v, want %s", nd, want)
	}
	s.Restricted = false
	if nd := argsAfter(s.Args(), "-netdev"); strings.Contains(nd[0], "restrict") {
		t.Fatalf("full network still restricted: %s", nd[0])
	}
}

// The NIC offers no guest announcements unless a snapshot's state needs
// the feature (engine/save.go: saves made before it was turned off).
func TestNICAnnouncesOnlyForOldSaves(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		s := Spec{Arch: arch, Accel: "tcg"}
		nic := ""
		for _, d := range argsAfter(s.Args(), "-device") {
			if strings.HasPrefix(d, "virtio-net-") {
				nic = d
			}
		}
		if !strings.HasSuffix(nic, ",id=nic0,netdev=net0,guest_announce=off") {
			t.Errorf("%s: NIC %q offers guest announcements", arch, nic)
		}
		s.GuestAnnounce = true
		for _, d := range argsAfter(s.Args(), "-device") {
			if strings.Contains(d, "guest_announce") {
				t.Errorf("%s: NIC %q for an old save does not offer them", arch, d)
			}
		}
	}
}

func TestDiskPathWithCommaIsEscaped(t *testing.T) {
	s := Spec{Arch: "x86_64", Accel: "tcg", Disk: "/tmp/a,b/overlay.qcow2", QMPSocket: "/tmp/x,y/qmp.sock"}
	args := s.Args()
	drive := argsAfter(args, "-drive")
	if len(drive) != 1 || !strings.HasPrefix(drive[0], "file=/tmp/a,,b/overlay.qcow2,") {
		t.Fatalf("drive %v", drive)
	}
	if q := argsAfter(args, "-qmp"); len(q) != 1 || q[0] != "unix:/tmp/x,,y/qmp.sock,server=on,wait=off" {
		t.Fatalf("qmp %v", q)
	}
}

func TestExtraArgsComeLast(t *testing.T) {
	s := Spec{Arch: "x86_64", Accel: "tcg", Extra: []string{"-device", "virtio-balloon-device"}}
	args := s.Args()
	if !slices.Equal(args[len(args)-2:], []string{"-device", "virtio-balloon-device"}) {
		t.Fatalf("extra args not last: %v", args)
	}
}

func TestTCGGuestsRunWithoutASLR(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		tcg := argsAfter(Spec{Arch: arch, Accel: "tcg", Append: "quiet"}.Args(), "-append")[0]
		hw := argsAfter(Spec{Arch: arch, Accel: "kvm", Append: "quiet"}.Args(), "-append")[0]
		if !strings.Contains(tcg, "norandmaps") || strings.Contains(hw, "norandmaps") {
			t.Errorf("%s: tcg append %q, kvm append %q", arch, tcg, hw)
		}
	}
}

func TestOutputChannelPort(t *testing.T) {
	for _, c := range []struct{ arch, accel, serial string }{
		{"x86_64", "tcg", "virtio-serial-pci,"},
		{"x86_64", "kvm", "virtio-serial-device,"},
		{"arm64", "tcg", "virtio-serial-device,"},
	} {
		args := Spec{Arch: c.arch, Accel: c.accel, ChannelSocket: "/w,d/channel.sock"}.Args()
		devs := strings.Join(argsAfter(args, "-device"), " ")
		if !strings.Contains(devs, c.serial) || !strings.Contains(devs, "virtserialport,bus=qsserial.0,nr=1,chardev=qschannel,name=quicksand.data") {
			t.Errorf("%s/%s devices: %s", c.arch, c.accel, devs)
		}
		if cd := argsAfter(args, "-chardev"); len(cd) != 1 || cd[0] != "socket,id=qschannel,path=/w,,d/channel.sock,server=on,wait=off" {
			t.Errorf("%s/%s chardev: %v", c.arch, c.accel, cd)
		}
	}
	if cd := argsAfter(Spec{Arch: "x86_64", Accel: "tcg"}.Args(), "-chardev"); len(cd) != 0 {
		t.Errorf("no channel socket, still a chardev: %v", cd)
	}
}

// The token file goes to the guest as fw_cfg by its path: QEMU's command
// line, which every local user can read, names the file, never the token.
func TestTokenFileIsFwCfg(t *testing.T) {
	s := Spec{Arch: "x86_64", Accel: "tcg", MemoryMiB: 256, CPUs: 1, TokenFile: "/w,1/token"}
	if got := argsAfter(s.Args(), "-fw_cfg"); !slices.Equal(got, []string{"name=opt/quicksand/token,file=/w,,1/token"}) {
		t.Fatalf("fw_cfg %v", got)
	}
	s.TokenFile = ""
	if got := argsAfter(s.Args(), "-fw_cfg"); len(got) != 0 {
		t.Fatalf("fw_cfg without a token file: %v", got)
	}
}

// The guard's injecting redirector comes before the capturing one: frames
// the guest sends visit filters in reverse order.
func TestGuardArgs(t *testing.T) {
	s := Spec{Arch: "x86_64", Accel: "tcg", MemoryMiB: 256, CPUs: 1, GuardOut: "/w/o.sock", GuardIn: "/w/i.sock", GuardReply: "/w/r.sock"}
	objs := argsAfter(s.Args(), "-object")
	var guard []string
	for _, o := range objs {
		if strings.HasPrefix(o, "filter-redirector") {
			guard = append(guard, o)
		}
	}
	if len(guard) != 3 || !strings.Contains(guard[0], "indev=qsguardin") || !strings.Contains(guard[1], "outdev=qsguardout") ||
		!strings.Contains(guard[0], "queue=rx") || !strings.Contains(guard[1], "queue=rx") ||
		!strings.Contains(guard[2], "queue=tx") || !strings.Contains(guard[2], "indev=qsguardreply") {
		t.Fatalf("redirectors %v", guard)
	}
	for _, c := range argsAfter(s.Args(), "-chardev") {
		if strings.Contains(c, "qsguard") && !strings.Contains(c, "wait=on") {
			t.Fatalf("QEMU must wait for the guard: %s", c)
		}
	}
	s.GuardOut, s.GuardIn, s.GuardReply = "", "", ""
	if strings.Contains(strings.Join(s.Args(), " "), "filter-redirector") {
		t.Fatal("a guard without sockets")
	}
}
