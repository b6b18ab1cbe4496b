// Package netguard keeps a guest on QEMU's user network (slirp) from
// reaching the host's own loopback services.
//
// slirp forwards a guest's connection to its gateway address (10.0.2.2),
// and to the network's broadcast address, to the host's 127.0.0.1, and its
// DNS address (10.0.2.3) to the host's resolver on any port; QEMU offers no
// switch to turn this off. So in full network mode every frame the guest
// sends is routed through the engine (a QEMU filter-redirector on the
// netdev's receive queue, out to a socket and back in through another),
// and Allow drops those that would open a connection to the host: anything
// to the gateway or broadcast address except TCP segments that carry an ACK
// (the guest's half of connections the host opened to it, the agent's and
// the port forwards'; a connection the guest opens starts with a bare SYN),
// and anything to the DNS address but DNS.
package netguard

import (
	"encoding/binary"
	"io"

	"github.com/pkg/errors"
)

// The addresses of QEMU's user network as the engine sets it up (QEMU's
// defaults): the guest is 10.0.2.15/24.
var (
	gateway   = [4]byte{10, 0, 2, 2}
	dns       = [4]byte{10, 0, 2, 3}
	broadcast = [4]byte{10, 0, 2, 255}
	allOnes   = [4]byte{255, 255, 255, 255}
	// slirp's IPv6 network, fec0::/64: its host and DNS addresses live there.
	prefix6 = [8]byte{0xfe, 0xc0}
)

const (
	etherHeader = 14
	typeIPv4    = 0x0800
	typeARP     = 0x0806
	typeIPv6    = 0x86dd
	protoTCP    = 6
	protoUDP    = 17
	tcpFlagACK  = 0x10
	dnsPort     = 53
)

// Allow says whether a frame the guest sent may reach slirp.
func Allow(frame []byte) bool {
	if len(frame) < etherHeader {
		return false
	}
	switch binary.BigEndian.Uint16(frame[12:]) {
	case typeARP:
		return true
	case typeIPv4:
		return allowIPv4(frame[etherHeader:])
	case typeIPv6:
		return allowIPv6(frame[etherHeader:])
	}
	return false // VLAN tags and anything else slirp has no use for
}

func allowIPv4(p []byte) bool {
	if len(p) < 20 || p[0]>>4 != 4 {
		return false
	}
	ihl := int(p[0]&0x0f) * 4
	if ihl < 20 || len(p) < ihl {
		return false
	}
	dst := [4]byte(p[16:20])
	toHost := dst == gateway || dst == broadcast || dst == allOnes
	if !toHost && dst != dns {
		return true
	}
	// A fragment's transport header may be elsewhere: not to these.
	if binary.BigEndian.Uint16(p[6:])&0x3fff != 0 {
		return false
	}
	return allowTransport(p[9], p[ihl:], toHost)
}

func allowIPv6(p []byte) bool {
	if len(p) < 40 || p[0]>>4 != 6 {
		return false
	}
	if [8]byte(p[24:32]) != prefix6 {
		return true
	}
	// slirp's own addresses: host (::2) and DNS (::3) among them. Extension
	// headers are not followed: such packets are dropped.
	return allowTransport(p[6], p[40:], true)
}

// allowTransport decides a packet to one of slirp's own addresses: to the
// host only TCP with ACK, to DNS only port 53.
func allowTransport(proto byte, l4 []byte, toHost bool) bool {
	switch proto {
	case protoTCP:
		if len(l4) < 14 {
			return false
		}
		if toHost {
			return l4[13]&tcpFlagACK != 0
		}
		return binary.BigEndian.Uint16(l4[2:]) == dnsPort
	case protoUDP:
		return !toHost && len(l4) >= 4 && binary.BigEndian.Uint16(l4[2:]) == dnsPort
	}
	return false
}

// maxFrame bounds one frame from QEMU: the largest Ethernet frame with
// room for offloads, far below what a length field could claim.
const maxFrame = 128 << 10

// Run passes the frames QEMU's redirector writes to out (each a 32-bit
// big-endian length and the frame) that Allow accepts on to in, in the same
// format, and returns when out or in fails. dropped, if not nil, is called
// for each frame dropped.
func Run(out io.Reader, in io.Writer, dropped func(frame []byte)) error {
	var hdr [4]byte
	buf := make([]byte, maxFrame+4)
	for {
		if _, err := io.ReadFull(out, hdr[:]); err != nil {
			return errors.Wrap(err, "reading the guest's frames")
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxFrame {
			return errors.Errorf("a frame of %d bytes from QEMU", n)
		}
		frame := buf[4 : 4+n]
		if _, err := io.ReadFull(out, frame); err != nil {
			return errors.Wrap(err, "reading the guest's frames")
		}
		if !Allow(frame) {
			if dropped != nil {
				dropped(frame)
			}
			continue
		}
		copy(buf, hdr[:])
		if _, err := in.Write(buf[:4+n]); err != nil {
			return errors.Wrap(err, "passing the guest's frames on")
		}
	}
}
