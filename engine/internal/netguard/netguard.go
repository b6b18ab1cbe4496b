// Package netguard keeps a guest on QEMU's user network (slirp) from
// reaching the host's own services.
//
// slirp opens a host socket to whatever address a guest's packet names:
// its gateway (10.0.2.2) and the network's broadcast address become the
// host's 127.0.0.1, its DNS address (10.0.2.3) the host's resolver on any
// port, and a packet the guest builds by hand (the guest's own kernel
// routes 127.0.0.1 to its own loopback, but guest root can write raw
// frames) may name 127.0.0.1, ::1, ::ffff:127.0.0.1, 0.0.0.0 or any of the
// host's own addresses outright. QEMU offers no switch to turn this off. So
// in full network mode every frame the guest sends is routed through the
// engine (a QEMU filter-redirector on the netdev's receive queue, out to a
// socket and back in through another), and a Guard drops those that would
// reach the host: anything to the gateway or broadcast address except TCP
// segments that carry an ACK (the guest's half of connections the host
// opened to it, the agent's and the port forwards'; a connection the guest
// opens starts with a bare SYN), anything to the DNS address but DNS, and
// anything at all to a loopback, unspecified or host address.
package netguard

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

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
	protoICMP   = 1
	protoICMPv6 = 58
	tcpFlagACK  = 0x10
	dnsPort     = 53
)

// Guard decides the guest's frames. The zero Guard knows no host
// addresses but the loopback and unspecified ones, and has no policy;
// NewGuard learns the host's own.
type Guard struct {
	host atomic.Pointer[map[netip.Addr]bool]
	// policy, when set, decides the flows the guest opens to the outside
	// and the names it may resolve (the guard then answers its DNS).
	policy atomic.Pointer[Policy]
	// Log, if set before Run, is told every frame dropped (at Debug).
	Log *slog.Logger
	// Resolve looks a name up on the host (default: net.DefaultResolver).
	Resolve func(ctx context.Context, network, name string) ([]netip.Addr, error)

	flows  flowTable
	leases leaseTable
	dns    dnsServer
	counts counters
}

// NewGuard returns a Guard that also drops everything to the host's own
// addresses, as its interfaces have them now; Refresh learns them again.
func NewGuard() *Guard {
	g := &Guard{}
	g.Refresh()
	return g
}

// Refresh reads the host's interface addresses again (an interface that
// comes up later brings new ones). On failure the last ones are kept.
func (g *Guard) Refresh() {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return
	}
	host := map[netip.Addr]bool{}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			host[p.Addr().Unmap()] = true
		}
	}
	g.SetHostAddrs(host)
}

// SetHostAddrs sets the host's own addresses.
func (g *Guard) SetHostAddrs(host map[netip.Addr]bool) { g.host.Store(&host) }

// SetPolicy sets the policy (nil: none) for the flows opened from now
// on; flows already open are decided again by their next frame (so a
// flow the new policy denies stops), and the addresses learnt from names
// are kept only while the new policy still allows their names.
func (g *Guard) SetPolicy(p *Policy) {
	g.leases.keep(p)
	g.policy.Store(p)
}

// refreshEvery is how often Run learns the host's addresses again.
const refreshEvery = 5 * time.Second

// hostOwn says whether a packet to dst would reach the host itself rather
// than another machine: loopback (127.0.0.0/8, ::1), unspecified (0.0.0.0/8
// and ::, which a connect() on Linux takes as the host), the same as
// IPv4-mapped or IPv4-compatible IPv6, or one of the host's addresses.
func (g *Guard) hostOwn(dst netip.Addr) bool {
	if dst.Is6() {
		b := dst.As16()
		if [12]byte(b[:12]) == [12]byte{} && !dst.IsUnspecified() && dst != netip.IPv6Loopback() {
			dst = netip.AddrFrom4([4]byte(b[12:])) // ::a.b.c.d, deprecated but still routed by some stacks
		}
		dst = dst.Unmap()
	}
	if dst.IsLoopback() || dst.IsUnspecified() || dst.Is4() && dst.As4()[0] == 0 {
		return true
	}
	if h := g.host.Load(); h != nil && (*h)[dst] {
		return true
	}
	return false
}

// verdict is what becomes of a frame.
type verdict int

const (
	pass     verdict = iota
	drop             // counted and logged as dropped
	answered         // a DNS query the guard answers itself
)

// Allow says whether a frame the guest sent may reach slirp.
func (g *Guard) Allow(frame []byte) bool { return g.decide(frame) == pass }

func (g *Guard) decide(frame []byte) verdict {
	if len(frame) < etherHeader {
		return g.drop(ReasonMalformed, 0, netip.Addr{}, 0)
	}
	switch binary.BigEndian.Uint16(frame[12:]) {
	case typeARP:
		return pass
	case typeIPv4:
		return g.decideIPv4(frame, frame[etherHeader:])
	case typeIPv6:
		return g.decideIPv6(frame, frame[etherHeader:])
	}
	return g.drop(ReasonMalformed, 0, netip.Addr{}, 0) // VLAN tags and anything else slirp has no use for
}

func (g *Guard) decideIPv4(frame, p []byte) verdict {
	if len(p) < 20 || p[0]>>4 != 4 {
		return g.drop(ReasonMalformed, 0, netip.Addr{}, 0)
	}
	ihl := int(p[0]&0x0f) * 4
	if ihl < 20 || len(p) < ihl {
		return g.drop(ReasonMalformed, 0, netip.Addr{}, 0)
	}
	dst := [4]byte(p[16:20])
	addr := netip.AddrFrom4(dst)
	if g.hostOwn(addr) {
		return g.drop(ReasonHost, p[9], addr, 0)
	}
	toHost := dst == gateway || dst == broadcast || dst == allOnes
	fragment := binary.BigEndian.Uint16(p[6:]) & 0x3fff
	if !toHost && dst != dns {
		if fragment&0x1fff != 0 { // a later fragment: no transport header
			return g.outward(p[9], addr, nil, frame)
		}
		return g.outward(p[9], addr, p[ihl:], frame)
	}
	// A fragment's transport header may be elsewhere: not to these.
	if fragment != 0 {
		return g.drop(ReasonSlirpOwn, p[9], addr, 0)
	}
	if dst == dns {
		if pol := g.policy.Load(); pol != nil {
			return g.dnsQuery(pol, frame, p[9], addr, p[ihl:])
		}
	}
	return g.slirpOwn(p[9], addr, p[ihl:], toHost)
}

func (g *Guard) decideIPv6(frame, p []byte) verdict {
	if len(p) < 40 || p[0]>>4 != 6 {
		return g.drop(ReasonMalformed, 0, netip.Addr{}, 0)
	}
	addr := netip.AddrFrom16([16]byte(p[24:40]))
	if g.hostOwn(addr) {
		return g.drop(ReasonHost, p[6], addr, 0)
	}
	if [8]byte(p[24:32]) != prefix6 {
		if p[6] == protoICMPv6 && p[24] == 0xff && p[25]&0x0f == 2 {
			return pass // neighbour and router discovery (link-scope multicast): slirp answers it itself
		}
		return g.outward(p[6], addr.Unmap(), p[40:], frame)
	}
	// slirp's own addresses: host (::2) and DNS (::3) among them. Extension
	// headers are not followed: such packets are dropped.
	return g.slirpOwn(p[6], addr, p[40:], true)
}

// slirpOwn decides a packet to one of slirp's own addresses: to the host
// only TCP with ACK, to DNS only port 53.
func (g *Guard) slirpOwn(proto byte, dst netip.Addr, l4 []byte, toHost bool) verdict {
	if allowTransport(proto, l4, toHost) {
		return pass
	}
	return g.drop(ReasonSlirpOwn, proto, dst, port(proto, l4))
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
// for each frame dropped. The host's addresses are learnt again every
// refreshEvery meanwhile.
func (g *Guard) Run(out io.Reader, in io.Writer, dropped func(frame []byte)) error {
	var hdr [4]byte
	buf := make([]byte, maxFrame+4)
	refreshed := time.Now()
	for {
		if time.Since(refreshed) > refreshEvery {
			g.Refresh()
			refreshed = time.Now()
		}
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
		switch g.decide(frame) {
		case answered:
			continue
		case drop:
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
