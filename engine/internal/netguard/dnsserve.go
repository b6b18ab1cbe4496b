package netguard

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pkg/errors"
)

// With a policy the guard answers the guest's DNS itself (UDP to
// 10.0.2.3:53; the question never reaches slirp): a name the policy
// refuses gets NXDOMAIN without any lookup (no query leaves the host for
// it, so no data leaves through DNS either); an allowed one is looked up
// on the host and its addresses leased (leases.go) before the guest has
// the answer. Answers go to the guest through a third socket (a QEMU
// filter-redirector on the netdev's transmit queue), written by
// ServeReplies.

const (
	// maxLookups bounds the host lookups in flight; a query past it is
	// dropped (the guest's resolver asks again).
	maxLookups    = 32
	lookupTimeout = 5 * time.Second
)

type dnsServer struct {
	once    sync.Once
	replies chan []byte
	slots   chan struct{}
}

func (s *dnsServer) init() {
	s.once.Do(func() {
		s.replies = make(chan []byte, 256)
		s.slots = make(chan struct{}, maxLookups)
	})
}

// send queues a frame for the guest; when the queue is full it is dropped
// (as a network would).
func (s *dnsServer) send(frame []byte) {
	s.init()
	select {
	case s.replies <- frame:
	default:
	}
}

// ServeReplies writes the frames the guard sends the guest (its DNS
// answers) to w, each a 32-bit big-endian length and the frame, until w
// fails or done is closed.
func (g *Guard) ServeReplies(w io.Writer, done <-chan struct{}) error {
	g.dns.init()
	for {
		select {
		case <-done:
			return nil
		case f := <-g.dns.replies:
			buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(f)), uint32(len(f)))
			if _, err := w.Write(append(buf, f...)); err != nil {
				return errors.Wrap(err, "sending the guest its DNS answers")
			}
		}
	}
}

// dnsQuery handles a packet to slirp's DNS address under policy p.
func (g *Guard) dnsQuery(p *Policy, frame []byte, proto byte, dst netip.Addr, l4 []byte) verdict {
	if proto == protoTCP && port(proto, l4) == dnsPort {
		return g.drop(ReasonDNSOverTCP, proto, dst, dnsPort)
	}
	if proto != protoUDP || port(proto, l4) != dnsPort || len(l4) < 8 {
		return g.drop(ReasonSlirpOwn, proto, dst, port(proto, l4))
	}
	n := int(binary.BigEndian.Uint16(l4[4:]))
	if n < 8 || n > len(l4) {
		return g.drop(ReasonMalformed, proto, dst, dnsPort)
	}
	q, err := parseDNSQuery(l4[8:n])
	if err != nil {
		return g.drop(ReasonMalformed, proto, dst, dnsPort)
	}
	q.question = bytes.Clone(q.question) // the frame's buffer is reused
	to := replyAddress(frame, l4)
	answer := func(rcode int, addrs []netip.Addr) {
		g.dns.send(udpFrame(to, dnsAnswer(q, rcode, addrs, answerTTL)))
	}
	if q.rcode != rcodeOK {
		answer(q.rcode, nil)
		return answered
	}
	if ok, _, _ := p.name(q.name); !ok || q.name == "" {
		g.counts.namesRefused.Add(1)
		if g.Log != nil {
			g.Log.Debug("network: refused a name (NXDOMAIN)", "name", q.name)
		}
		answer(rcodeNXDomain, nil)
		return answered
	}
	g.dns.init()
	select {
	case g.dns.slots <- struct{}{}:
	default:
		return g.drop("too many DNS lookups at once", proto, dst, dnsPort)
	}
	go func() {
		defer func() { <-g.dns.slots }()
		addrs, rcode := g.lookup(p, q.name, q.qtype)
		// The policy may have changed meanwhile: lease by the current one
		// (none: the name is free, and nothing needs leasing).
		ok, learn, ports := true, false, []Ports(nil)
		if p := g.policy.Load(); p != nil {
			ok, learn, ports = p.name(q.name)
		}
		if !ok {
			rcode, addrs = rcodeNXDomain, nil
		} else if learn && len(addrs) > 0 && !g.leases.learn(q.name, ports, addrs, time.Now().UnixNano()) {
			rcode, addrs = rcodeServFail, nil
		}
		if rcode == rcodeOK {
			g.counts.namesAllowed.Add(1)
		}
		answer(rcode, addrs)
	}()
	return answered
}

// lookup finds name's addresses of the question's type, from the
// policy's hosts or else the host's resolver, with the answer's rcode: a
// name that exists but has none of the type gets no addresses and no
// error.
func (g *Guard) lookup(p *Policy, name string, qtype uint16) ([]netip.Addr, int) {
	addrs, ok := p.hosts[name]
	if !ok {
		resolve := g.Resolve
		if resolve == nil {
			resolve = net.DefaultResolver.LookupNetIP
		}
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		defer cancel()
		var err error
		addrs, err = resolve(ctx, "ip", name)
		if err != nil {
			var de *net.DNSError
			if errors.As(err, &de) && de.IsNotFound {
				return nil, rcodeNXDomain
			}
			return nil, rcodeServFail
		}
	}
	var of []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if qtype == dnsTypeA && a.Is4() || qtype == dnsTypeAAAA && a.Is6() {
			of = append(of, a)
		}
	}
	return of, rcodeOK
}
