// rawsyn runs in a guest as root and sends hand-made TCP SYN frames out of
// eth0 to each address and port named, bypassing the guest's own routing (which
// would keep 127.0.0.1 and ::1 inside the guest): what a hostile guest does
// to reach the host's loopback through slirp. The engine's tests build it
// (CGO_ENABLED=0) and run it in a sandbox.
//
//	rawsyn 127.0.0.1:5432 [::1]:5433 [::ffff:127.0.0.1]:5434
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	iface := flag.String("iface", "eth0", "interface to send on")
	flood := flag.Duration("flood", 0, "send the SYNs over and over, as fast as it can, for this long (a flood)")
	flag.Parse()
	ifc, err := net.InterfaceByName(*iface)
	if err != nil {
		fail(err)
	}
	src4, src6 := ownAddrs(ifc)
	gw := gatewayMAC()
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
	if err != nil {
		fail(err)
	}
	to := &syscall.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
	copy(to.Addr[:], gw)
	var frames [][]byte
	for _, a := range flag.Args() {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			fail(err)
		}
		dst := ap.Addr()
		var frame []byte
		if dst.Is4() {
			frame = ipv4SYN(ifc.HardwareAddr, gw, src4, dst, ap.Port())
		} else {
			frame = ipv6SYN(ifc.HardwareAddr, gw, src6, dst, ap.Port())
		}
		if *flood > 0 {
			frames = append(frames, frame)
			continue
		}
		for range 3 { // slirp may be busy: a few tries, a connection each at most
			if err := syscall.Sendto(fd, frame, 0, to); err != nil {
				fail(fmt.Errorf("sending to %s: %w", dst, err))
			}
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Println("sent", dst)
	}
	if *flood > 0 {
		sent := 0
		for end := time.Now().Add(*flood); time.Now().Before(end); {
			for _, f := range frames {
				if syscall.Sendto(fd, f, 0, to) == nil {
					sent++
				}
			}
		}
		fmt.Println("sent", sent)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "rawsyn:", err)
	os.Exit(1)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ownAddrs are the interface's IPv4 address and an IPv6 one in slirp's
// network (fec0::/64) if it has one.
func ownAddrs(ifc *net.Interface) (netip.Addr, netip.Addr) {
	src4, src6 := netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("fec0::15")
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		switch {
		case p.Addr().Is4():
			src4 = p.Addr()
		case strings.HasPrefix(p.Addr().String(), "fec0:"):
			src6 = p.Addr()
		}
	}
	return src4, src6
}

// gatewayMAC is slirp's, from the guest's ARP table or slirp's fixed one.
func gatewayMAC() net.HardwareAddr {
	raw, _ := os.ReadFile("/proc/net/arp")
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "10.0.2.2" {
			if mac, err := net.ParseMAC(f[3]); err == nil {
				return mac
			}
		}
	}
	return net.HardwareAddr{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}
}

func ether(src, dst net.HardwareAddr, typ uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:], dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], typ)
	return append(f, payload...)
}

// tcpSYN is a bare SYN from port 40000+ to port, its checksum left to fill.
func tcpSYN(port uint16) []byte {
	t := make([]byte, 20)
	binary.BigEndian.PutUint16(t[0:], uint16(40000+os.Getpid()%20000))
	binary.BigEndian.PutUint16(t[2:], port)
	binary.BigEndian.PutUint32(t[4:], 0x01020304) // sequence number
	t[12] = 5 << 4                                // header length
	t[13] = 0x02                                  // SYN
	binary.BigEndian.PutUint16(t[14:], 64240)     // window
	return t
}

func checksum(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func ipv4SYN(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, port uint16) []byte {
	tcp := tcpSYN(port)
	s4, d4 := src.As4(), dst.As4()
	pseudo := append(append(append([]byte{}, s4[:]...), d4[:]...), 0, 6, 0, byte(len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], fold(checksum(checksum(0, pseudo), tcp)))
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
	ip[8] = 64 // TTL
	ip[9] = 6  // TCP
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	binary.BigEndian.PutUint16(ip[10:], fold(checksum(0, ip)))
	return ether(srcMAC, dstMAC, 0x0800, append(ip, tcp...))
}

func ipv6SYN(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, port uint16) []byte {
	tcp := tcpSYN(port)
	s16, d16 := src.As16(), dst.As16()
	pseudo := append(append(append([]byte{}, s16[:]...), d16[:]...), 0, 0, 0, byte(len(tcp)), 0, 0, 0, 6)
	binary.BigEndian.PutUint16(tcp[16:], fold(checksum(checksum(0, pseudo), tcp)))
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
	ip[6] = 6  // TCP
	ip[7] = 64 // hop limit
	copy(ip[8:], s16[:])
	copy(ip[24:], d16[:])
	return ether(srcMAC, dstMAC, 0x86dd, append(ip, tcp...))
}
