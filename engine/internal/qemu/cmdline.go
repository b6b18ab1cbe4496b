// Package qemu builds QEMU command lines and finds a working accelerator.
package qemu

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/quicksand-go/quicksand/internal/protocol"
)

// Forward is one host-to-guest TCP port forward. The host side is bound to
// 127.0.0.1 only.
type Forward struct {
	Host, Guest int
}

// Spec is everything a QEMU command line is made from.
type Spec struct {
	Arch      string // "x86_64" or "arm64"
	Accel     string // "kvm", "hvf" or "tcg"
	MemoryMiB int
	CPUs      int
	Kernel    string
	Initrd    string
	Append    string // kernel command line
	Disk      string // qcow2 overlay, the guest's /dev/vda
	Forwards  []Forward
	// Restricted cuts the guest off from everything but the forwards.
	Restricted bool
	// GuestAnnounce lets virtio-net ask the guest, after an incoming
	// migration, to announce itself on the network (a gratuitous ARP, an
	// IPv6 neighbour advertisement, multicast reports; several rounds).
	// Off, the default: the VM's only peer is QEMU's own user network,
	// which needs none of it, and a clone would run that guest code, and
	// under TCG translate it, each time. (QEMU's announce-rounds=0 would
	// stop it too, but QEMU 7.2 then crashes on the device's next reset,
	// which every revert does.) On only for a save made before it was off:
	// its state holds the feature, which the device must still offer.
	GuestAnnounce bool
	// GuardOut and GuardIn, if set, are unix sockets through which every
	// frame the guest sends passes the engine before it reaches the user
	// network (see engine/internal/netguard): out to GuardOut, back in
	// through GuardIn. QEMU waits for the engine to connect to both before
	// the VM runs, so no frame ever passes unchecked.
	GuardOut, GuardIn string
	// GuardReply, if set (with the other two), is a unix socket through
	// which the engine sends frames to the guest (its DNS answers under a
	// network policy): a redirector on the transmit queue.
	GuardReply string
	// QMPSocket, if set, is a unix socket path for QMP.
	QMPSocket string
	// ChannelSocket, if set, is the unix socket QEMU serves the guest's
	// output channel port on (a virtio-serial port named
	// protocol.ChannelPortName). Snapshots need the same devices on both
	// sides, so a sandbox resumed from one has it if the one saved had it.
	ChannelSocket string
	// MuxSocket, if set (with ChannelSocket), is the unix socket QEMU
	// serves the agent's mux port on (protocol.MuxPortName): the engine's
	// calls to the agent without the guest's network (internal/mux).
	MuxSocket string
	// RAMFile, if set, backs guest RAM with this file: written through
	// (RAMShared, for a template being made) or mapped copy-on-write (clones
	// resumed from it, which then share its pages until they write).
	RAMFile   string
	RAMShared bool
	// Incoming starts the VM paused, waiting for migrate-incoming.
	Incoming bool
	// TokenFile, if set, is an owner-only file holding the agent's token,
	// handed to the guest as the fw_cfg file protocol.FwCfgToken. QEMU
	// reads it at start; the token itself never appears on the command
	// line, which every local user can read.
	TokenFile string
	// VMGenID is the VM generation id (a UUID) of the vmgenid device, where
	// the machine has one: a new id tells a resumed guest to reseed its RNG.
	VMGenID string
	// Display, if set, gives the VM a screen (virtio-gpu), a keyboard and
	// an absolute pointer (virtio tablet), driven through QMP.
	Display *Display
	Extra   []string
}

// Display is a VM's screen.
type Display struct {
	Width, Height int
	// VNC, when set, serves the screen on 127.0.0.1 (a free port of
	// 5900-5999, its password set through QMP).
	VNC bool
}

// ChannelChardev is the QEMU id of the output channel's socket, as
// query-chardev reports it.
const ChannelChardev = "qschannel"

// ramBackendID names guest RAM the same in every sandbox, cold or resumed,
// so that migration streams (templates, checkpoints, saves) load anywhere.
const ramBackendID = "mem0"

// Binary is the QEMU system emulator for an architecture.
func Binary(arch string) string {
	if arch == "arm64" {
		return "qemu-system-aarch64"
	}
	return "qemu-system-" + arch
}

// InstallHint says how to install QEMU for guests of arch, on the systems
// people use.
func InstallHint(arch string) string {
	deb, rpm := "qemu-system-x86", "qemu-system-x86-core"
	if arch == "arm64" {
		deb, rpm = "qemu-system-arm", "qemu-system-aarch64-core"
	}
	return fmt.Sprintf("install QEMU: `sudo apt install %s` on Debian/Ubuntu, `sudo dnf install %s` on Fedora, `brew install qemu` on macOS", deb, rpm)
}

// Args returns QEMU's arguments (without the binary).
//
// The serial console goes to QEMU's stdout; QEMU's own messages go to its
// stderr. See machine for the machine type of each architecture.
func (s Spec) Args() []string {
	m := s.machine()
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-accel", s.Accel,
		"-M", m.name + ",memory-backend=" + ramBackendID,
		"-m", strconv.Itoa(s.MemoryMiB),
		"-object", s.ramBackend(),
		"-smp", strconv.Itoa(s.CPUs),
	}
	if m.cpu != "" {
		args = append(args, "-cpu", m.cpu)
	}
	args = append(args,
		"-serial", "stdio",
		"-kernel", s.Kernel,
		"-initrd", s.Initrd,
		"-append", strings.TrimSpace(s.Append+" "+m.kernelArgs),
		"-drive", "file="+escapeOpt(s.Disk)+",if=none,id=disk0,format=qcow2,discard=unmap",
		"-device", "virtio-blk-"+m.bus+",drive=disk0",
		"-netdev", s.netdev(),
		"-device", "virtio-net-"+m.bus+",id="+NICID+",netdev=net0"+s.announce(),
	)
	if s.GuardOut != "" {
		args = append(args,
			"-chardev", "socket,id=qsguardout,path="+escapeOpt(s.GuardOut)+",server=on,wait=on",
			"-chardev", "socket,id=qsguardin,path="+escapeOpt(s.GuardIn)+",server=on,wait=on",
			// Frames the guest sends (queue=rx: received by the netdev)
			// visit filters in reverse order, so the one that injects the
			// passed frames comes first: they go from it to the netdev.
			"-object", "filter-redirector,id=qsguardi,netdev=net0,queue=rx,indev=qsguardin",
			"-object", "filter-redirector,id=qsguardo,netdev=net0,queue=rx,outdev=qsguardout",
		)
		if s.GuardReply != "" {
			args = append(args,
				"-chardev", "socket,id=qsguardreply,path="+escapeOpt(s.GuardReply)+",server=on,wait=on",
				// queue=tx: what it reads goes on as if slirp sent it, to the guest.
				"-object", "filter-redirector,id=qsguardr,netdev=net0,queue=tx,indev=qsguardreply",
			)
		}
	}
	args = append(args,
		"-device", "virtio-rng-"+m.bus,
	)
	if s.ChannelSocket != "" {
		args = append(args,
			"-device", "virtio-serial-"+m.bus+",id=qsserial,max_ports=3",
			"-chardev", "socket,id="+ChannelChardev+",path="+escapeOpt(s.ChannelSocket)+",server=on,wait=off",
			"-device", "virtserialport,bus=qsserial.0,nr=1,chardev="+ChannelChardev+",name="+protocol.ChannelPortName,
		)
		if s.MuxSocket != "" {
			args = append(args,
				"-chardev", "socket,id=qsmux,path="+escapeOpt(s.MuxSocket)+",server=on,wait=off",
				"-device", "virtserialport,bus=qsserial.0,nr=2,chardev=qsmux,name="+protocol.MuxPortName,
			)
		}
	}
	if d := s.Display; d != nil {
		args = append(args,
			"-device", fmt.Sprintf("virtio-gpu-%s,xres=%d,yres=%d", m.bus, d.Width, d.Height),
			"-device", "virtio-keyboard-"+m.bus,
			"-device", "virtio-tablet-"+m.bus,
		)
		if d.VNC {
			// Display :0-:99 of the loopback, the first free one; the
			// password is set (and required) before anyone is told the port.
			args = append(args, "-vnc", "127.0.0.1:0,to=99,password=on")
		}
	}
	if s.TokenFile != "" {
		args = append(args, "-fw_cfg", "name="+protocol.FwCfgToken+",file="+escapeOpt(s.TokenFile))
	}
	if m.vmgenid {
		guid := s.VMGenID
		if guid == "" {
			guid = "auto"
		}
		args = append(args, "-device", "vmgenid,guid="+guid)
	}
	if s.QMPSocket != "" {
		args = append(args, "-qmp", "unix:"+escapeOpt(s.QMPSocket)+",server=on,wait=off")
	}
	if s.Incoming {
		args = append(args, "-incoming", "defer", "-S")
	}
	return append(args, s.Extra...)
}

func (s Spec) ramBackend() string {
	size := strconv.Itoa(s.MemoryMiB) + "M"
	if s.RAMFile == "" {
		return "memory-backend-ram,id=" + ramBackendID + ",size=" + size
	}
	share := "off"
	if s.RAMShared {
		share = "on"
	}
	return "memory-backend-file,id=" + ramBackendID + ",size=" + size + ",mem-path=" + escapeOpt(s.RAMFile) + ",share=" + share
}

// machineChoice is a machine type, its CPU model, the bus its virtio
// devices sit on ("device" for MMIO, "pci"), kernel arguments it wants, and
// whether it has the ACPI that a vmgenid device needs.
type machineChoice struct {
	name, cpu, bus, kernelArgs string
	vmgenid                    bool
}

// machine picks the machine type.
//
//   - x86_64 with a hardware accelerator: microvm, no PCI bus and almost no
//     firmware, the fastest boot; kvmclock gives the guest its clock.
//   - x86_64 under TCG: pc. microvm would boot about 0.4 s sooner, but it has
//     no HPET or ACPI PM timer, and when the host is busy the guest kernel's
//     TSC calibration against the PIT fails, leaving it without a clock: it
//     hangs at boot (seen with four boots at once on two cores). acpi=noirq
//     routes PCI interrupts by the BIOS table instead of ACPI link devices,
//     which cost about 0.1 s each to set up under TCG.
//   - arm64: virt, with the architected timer.
//
// Under TCG the guest also runs without address-space randomisation
// (norandmaps): TCG caches translated code by virtual address, so a
// program mapped somewhere new on every exec is translated anew every
// time. With it, spawning a process in the guest costs about 5 ms instead
// of 22 ms. The VM stays the security boundary; KVM guests keep ASLR.
func (s Spec) machine() machineChoice {
	hw := s.Accel != "tcg"
	switch {
	case s.Arch == "arm64" && hw:
		return machineChoice{"virt", "host", "device", "", false}
	case s.Arch == "arm64":
		// Cheap pointer authentication: much faster under TCG.
		return machineChoice{"virt", "max,pauth-impdef=on", "device", "norandmaps", false}
	case hw:
		return machineChoice{"microvm,x-option-roms=off,rtc=on", "host", "device", "", false}
	default:
		return machineChoice{"pc", "", "pci", "acpi=noirq norandmaps", true}
	}
}

// NICID is the guest's network device's id (for -set, in tests).
const NICID = "nic0"

// announce is the virtio-net option that GuestAnnounce sets.
func (s Spec) announce() string {
	if s.GuestAnnounce {
		return ""
	}
	return ",guest_announce=off"
}

func (s Spec) netdev() string {
	var b strings.Builder
	b.WriteString("user,id=net0")
	if s.Restricted {
		b.WriteString(",restrict=on")
	}
	for _, f := range s.Forwards {
		fmt.Fprintf(&b, ",hostfwd=tcp:127.0.0.1:%d-:%d", f.Host, f.Guest)
	}
	return b.String()
}

// escapeOpt escapes a value inside a QEMU option list, where ',' is doubled.
func escapeOpt(v string) string { return strings.ReplaceAll(v, ",", ",,") }
