package netguard

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
)

// ipv4 builds an Ethernet frame carrying an IPv4 packet to dst with the
// given protocol, destination port and TCP flags.
func ipv4(dst [4]byte, proto byte, port uint16, flags byte) []byte {
	f := make([]byte, etherHeader+20+20)
	binary.BigEndian.PutUint16(f[12:], typeIPv4)
	ip := f[etherHeader:]
	ip[0] = 0x45
	ip[9] = proto
	copy(ip[12:], []byte{10, 0, 2, 15})
	copy(ip[16:], dst[:])
	l4 := ip[20:]
	binary.BigEndian.PutUint16(l4[0:], 40000)
	binary.BigEndian.PutUint16(l4[2:], port)
	l4[13] = flags
	return f
}

func ipv6(dst [16]byte, proto byte, port uint16, flags byte) []byte {
	f := make([]byte, etherHeader+40+20)
	binary.BigEndian.PutUint16(f[12:], typeIPv6)
	ip := f[etherHeader:]
	ip[0] = 0x60
	ip[6] = proto
	copy(ip[24:], dst[:])
	l4 := ip[40:]
	binary.BigEndian.PutUint16(l4[2:], port)
	l4[13] = flags
	return f
}

func TestAllow(t *testing.T) {
	const syn, synack, ack = 0x02, 0x12, 0x10
	outside := [4]byte{198, 18, 0, 2}
	host6 := [16]byte{0xfe, 0xc0, 15: 2}
	cases := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"connect to the host", ipv4(gateway, protoTCP, 5432, syn), false},
		{"answer a port forward", ipv4(gateway, protoTCP, 40000, synack), true},
		{"data on a port forward", ipv4(gateway, protoTCP, 40000, ack), true},
		{"connect to the broadcast address", ipv4(broadcast, protoTCP, 80, syn), false},
		{"connect to 255.255.255.255", ipv4(allOnes, protoTCP, 80, syn), false},
		{"UDP to the host", ipv4(gateway, protoUDP, 53, 0), false},
		{"ICMP to the host", ipv4(gateway, 1, 0, 0), false},
		{"DNS over UDP", ipv4(dns, protoUDP, 53, 0), true},
		{"DNS over TCP", ipv4(dns, protoTCP, 53, syn), true},
		{"another port of the DNS address", ipv4(dns, protoTCP, 5432, syn), false},
		{"connect outside", ipv4(outside, protoTCP, 80, syn), true},
		{"UDP outside", ipv4(outside, protoUDP, 123, 0), true},
		{"IPv6 to slirp's host", ipv6(host6, protoTCP, 80, syn), false},
		{"IPv6 outside", ipv6([16]byte{0x20, 0x01, 0xd, 0xb8, 15: 1}, protoTCP, 80, syn), true},
		{"ARP", append(make([]byte, 12), 0x08, 0x06, 0, 1), true},
		{"VLAN", append(make([]byte, 12), 0x81, 0x00, 0, 1), false},
		{"runt", make([]byte, 13), false},
		{"truncated IPv4", ipv4(gateway, protoTCP, 80, ack)[:etherHeader+20+10], false},
		// Frames guest root builds by hand: slirp connects to whatever
		// address they name, and these are all the host itself.
		{"connect to 127.0.0.1", ipv4([4]byte{127, 0, 0, 1}, protoTCP, 5432, syn), false},
		{"connect to 127.1.2.3", ipv4([4]byte{127, 1, 2, 3}, protoTCP, 5432, syn), false},
		{"data to 127.0.0.1", ipv4([4]byte{127, 0, 0, 1}, protoTCP, 5432, ack), false},
		{"UDP to 127.0.0.1", ipv4([4]byte{127, 0, 0, 1}, protoUDP, 53, 0), false},
		{"connect to 0.0.0.0", ipv4([4]byte{}, protoTCP, 5432, syn), false},
		{"connect to 0.1.2.3", ipv4([4]byte{0, 1, 2, 3}, protoTCP, 5432, syn), false},
		{"connect to the host's address", ipv4([4]byte{192, 0, 2, 7}, protoTCP, 5432, syn), false},
		{"connect to the host's other address", ipv4([4]byte{198, 18, 0, 1}, protoTCP, 5432, syn), false},
		{"connect to ::1", ipv6(netip.IPv6Loopback().As16(), protoTCP, 5432, syn), false},
		{"connect to ::", ipv6([16]byte{}, protoTCP, 5432, syn), false},
		{"connect to ::ffff:127.0.0.1", ipv6(netip.MustParseAddr("::ffff:127.0.0.1").As16(), protoTCP, 5432, syn), false},
		{"connect to ::127.0.0.1", ipv6(netip.MustParseAddr("::127.0.0.1").As16(), protoTCP, 5432, syn), false},
		{"connect to ::ffff:0.0.0.0", ipv6(netip.MustParseAddr("::ffff:0.0.0.0").As16(), protoTCP, 5432, syn), false},
		{"connect to ::ffff:<the host's address>", ipv6(netip.MustParseAddr("::ffff:192.0.2.7").As16(), protoTCP, 5432, syn), false},
		{"connect to the host's IPv6 address", ipv6(netip.MustParseAddr("2001:db8::7").As16(), protoTCP, 5432, syn), false},
		{"connect to another IPv4-mapped address", ipv6(netip.MustParseAddr("::ffff:198.18.0.2").As16(), protoTCP, 80, syn), true},
	}
	g := &Guard{}
	g.SetHostAddrs(map[netip.Addr]bool{
		netip.MustParseAddr("192.0.2.7"): true, netip.MustParseAddr("198.18.0.1"): true, netip.MustParseAddr("2001:db8::7"): true,
	})
	for _, c := range cases {
		if got := g.Allow(c.frame); got != c.want {
			t.Errorf("%s: Allow = %v, want %v", c.name, got, c.want)
		}
	}
	frag := ipv4(gateway, protoTCP, 80, ack)
	binary.BigEndian.PutUint16(frag[etherHeader+6:], 0x2000) // more fragments
	if g.Allow(frag) {
		t.Error("a fragment to the host was allowed")
	}
}

func TestRunPassesAllowedFramesOnly(t *testing.T) {
	var out bytes.Buffer
	frames := [][]byte{ipv4(gateway, protoTCP, 80, 0x02), ipv4([4]byte{1, 2, 3, 4}, protoTCP, 80, 0x02), ipv4(gateway, protoTCP, 80, 0x10)}
	for _, f := range frames {
		binary.Write(&out, binary.BigEndian, uint32(len(f)))
		out.Write(f)
	}
	var in bytes.Buffer
	dropped := 0
	err := (&Guard{}).Run(&out, &in, func([]byte) { dropped++ })
	if err == nil || dropped != 1 {
		t.Fatalf("err %v, dropped %d", err, dropped)
	}
	var want bytes.Buffer
	for _, f := range frames[1:] {
		binary.Write(&want, binary.BigEndian, uint32(len(f)))
		want.Write(f)
	}
	if !bytes.Equal(in.Bytes(), want.Bytes()) {
		t.Fatal("the allowed frames did not pass as they came")
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	if err := (&Guard{}).Run(bytes.NewReader(huge), &in, nil); err == nil {
		t.Fatal("a 4 GiB frame length was accepted")
	}
}

// FuzzAllow: any frame is decided without a panic.
func FuzzAllow(f *testing.F) {
	f.Add(ipv4(gateway, protoTCP, 80, 0x02))
	f.Add(ipv6([16]byte{0xfe, 0xc0, 15: 2}, protoUDP, 53, 0))
	f.Add(ipv6(netip.MustParseAddr("::ffff:127.0.0.1").As16(), protoTCP, 80, 0x02))
	g := NewGuard()
	// And one with a policy: frames to the DNS address are parsed as DNS.
	pg := NewGuard()
	p, err := NewPolicy([]string{"198.18.0.0/15:80", "*.test"}, []string{"198.18.0.9"}, map[string][]netip.Addr{"a.test": {netip.MustParseAddr("198.18.1.1")}})
	if err != nil {
		f.Fatal(err)
	}
	pg.SetPolicy(p)
	pg.Resolve = func(ctx context.Context, network, name string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("198.18.1.2")}, nil // never the host's resolver: nothing leaves the machine
	}
	f.Add(ipv4(dns, protoUDP, 53, 0))
	f.Fuzz(func(t *testing.T, frame []byte) {
		g.Allow(frame)
		pg.Allow(frame)
	})
}

// NewGuard knows this machine's own addresses (its loopback at least,
// which every interface list has).
func TestNewGuardLearnsTheHostsAddresses(t *testing.T) {
	g := NewGuard()
	h := g.host.Load()
	if h == nil || !(*h)[netip.MustParseAddr("127.0.0.1")] {
		t.Fatalf("the host's addresses: %v", h)
	}
}
