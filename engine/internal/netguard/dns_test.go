package netguard

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// query builds a DNS query for name of qtype.
func query(id uint16, name string, qtype uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD, one question
	for _, l := range splitLabels(name) {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, dnsClassIN)
}

func splitLabels(name string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			out = append(out, name[start:i])
			start = i + 1
		}
	}
	return out
}

// dnsFrame wraps a DNS payload in a frame from the guest to 10.0.2.3:53.
func dnsFrame(payload []byte) []byte {
	f := ipv4(dns, protoUDP, dnsPort, 0)[:etherHeader+20]
	copy(f[0:], []byte{0x52, 0x55, 10, 0, 2, 3})
	copy(f[6:], []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56})
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp, 40001)
	binary.BigEndian.PutUint16(udp[2:], dnsPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	return append(f, append(udp, payload...)...)
}

// answerOf reads the guard's next answer: its rcode and addresses.
func answerOf(t *testing.T, g *Guard) (int, []netip.Addr) {
	t.Helper()
	var f []byte
	select {
	case f = <-g.dns.replies:
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
	ip := f[etherHeader:]
	if checksum(0, ip[:20]) != 0xffff {
		t.Fatal("a bad IP checksum")
	}
	if [4]byte(ip[12:16]) != dns || [6]byte(f[0:6]) != [6]byte{0x52, 0x54, 0, 0x12, 0x34, 0x56} || binary.BigEndian.Uint16(ip[22:]) != 40001 {
		t.Fatalf("the answer is not addressed back: % x", f[:42])
	}
	if checksum(uint32(checksum(0, ip[12:20]))+protoUDP+uint32(len(ip)-20), ip[20:]) != 0xffff {
		t.Fatal("a bad UDP checksum")
	}
	d := ip[28:]
	rcode := int(d[3] & 0xf)
	var addrs []netip.Addr
	i := dnsHeader
	for i < len(d) && d[i] != 0 {
		i += int(d[i]) + 1
	}
	i += 5
	for range binary.BigEndian.Uint16(d[6:]) {
		n := int(binary.BigEndian.Uint16(d[i+10:]))
		a, _ := netip.AddrFromSlice(d[i+12 : i+12+n])
		addrs = append(addrs, a)
		i += 12 + n
	}
	return rcode, addrs
}

// The guard answers DNS under a policy: refused names NXDOMAIN (and no
// lookup), allowed ones their addresses, which then open on the allowed
// ports only; a wildcard matches subdomains, not the parent.
func TestGuardAnswersDNS(t *testing.T) {
	var logged bytes.Buffer
	g := &Guard{Log: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	looked := 0
	g.Resolve = func(ctx context.Context, network, name string) ([]netip.Addr, error) {
		looked++
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	api, other := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("198.51.100.11")
	p, err := NewPolicy([]string{"api.test:443", "*.wild.test"}, nil, map[string][]netip.Addr{
		"api.test": {api, netip.MustParseAddr("2001:db8::10")}, "denied.test": {other},
		"a.wild.test": {other}, "wild.test": {other},
	})
	if err != nil {
		t.Fatal(err)
	}
	g.SetPolicy(p)
	syn := func(a netip.Addr, port uint16) bool { return g.Allow(ipv4(a.As4(), protoTCP, port, 0x02)) }
	if syn(api, 443) {
		t.Fatal("an address opened before its name was resolved")
	}
	if g.decide(dnsFrame(query(7, "API.test", dnsTypeA))) != answered {
		t.Fatal("the query was not answered")
	}
	if rcode, addrs := answerOf(t, g); rcode != rcodeOK || len(addrs) != 1 || addrs[0] != api {
		t.Fatalf("api.test: rcode %d %v", rcode, addrs)
	}
	if !syn(api, 443) || syn(api, 80) {
		t.Fatal("the name's address is not open on its port alone")
	}
	g.decide(dnsFrame(query(8, "api.test", dnsTypeAAAA)))
	if rcode, addrs := answerOf(t, g); rcode != rcodeOK || len(addrs) != 1 || !addrs[0].Is6() {
		t.Fatalf("AAAA: %d %v", rcode, addrs)
	}
	for _, name := range []string{"denied.test", "wild.test", "x.api.test"} {
		g.decide(dnsFrame(query(9, name, dnsTypeA)))
		if rcode, _ := answerOf(t, g); rcode != rcodeNXDomain {
			t.Fatalf("%s: rcode %d", name, rcode)
		}
	}
	if syn(other, 443) {
		t.Fatal("a refused name's address opened")
	}
	if !strings.Contains(logged.String(), "destination=198.51.100.11 port=443") || !strings.Contains(logged.String(), "name=denied.test") {
		t.Fatalf("the drops and refusals were not logged with their destination:\n%s", logged.String())
	}
	g.decide(dnsFrame(query(10, "a.wild.test", dnsTypeA)))
	if rcode, _ := answerOf(t, g); rcode != rcodeOK || !syn(other, 80) {
		t.Fatal("a subdomain of a wildcard")
	}
	g.decide(dnsFrame(query(11, "b.wild.test", dnsTypeA)))
	if rcode, _ := answerOf(t, g); rcode != rcodeNXDomain || looked != 1 {
		t.Fatalf("a name the host does not know: rcode %d, %d lookups", rcode, looked)
	}
	// A new policy without the name: its address closes at once.
	p2, _ := NewPolicy([]string{"*.wild.test"}, nil, nil)
	g.SetPolicy(p2)
	if syn(api, 443) {
		t.Fatal("SetPolicy left a refused name's address open")
	}
	if s := g.Stats(); s.NamesRefused != 3 || s.NamesAllowed != 3 || s.Dropped == 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestParseDNSQuery(t *testing.T) {
	q, err := parseDNSQuery(query(1, "Pypi.ORG", dnsTypeA))
	if err != nil || q.name != "pypi.org" || q.qtype != dnsTypeA || q.rcode != rcodeOK {
		t.Fatalf("%+v %v", q, err)
	}
	dotted := query(1, "x", dnsTypeA)
	dotted = append(append(dotted[:12], 5, 'a', '.', 'o', 'r', 'g', 0), dotted[len(dotted)-4:]...)
	if q, _ := parseDNSQuery(dotted); q.name != "" {
		t.Fatalf("a label with a dot: %q", q.name)
	}
	pointer := append(query(1, "", dnsTypeA)[:12], 0xc0, 12, 0, 1, 0, 1)
	if q, _ := parseDNSQuery(pointer); q.rcode != rcodeFormErr {
		t.Fatal("a compressed question")
	}
	if _, err := parseDNSQuery([]byte{1, 2, 3}); err == nil {
		t.Fatal("a short query")
	}
}

// FuzzDNS: any payload to the DNS address under a policy is answered or
// dropped, never a panic; an answer is a well-formed frame.
func FuzzDNS(f *testing.F) {
	f.Add(query(1, "pypi.org", dnsTypeA))
	f.Add(query(2, "a.wild.test", dnsTypeAAAA))
	f.Add(query(3, "x", 16))
	g := &Guard{}
	g.Resolve = func(ctx context.Context, network, name string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")}, nil
	}
	p, _ := NewPolicy([]string{"pypi.org", "*.wild.test"}, nil, map[string][]netip.Addr{"pypi.org": {netip.MustParseAddr("198.51.100.2")}})
	g.SetPolicy(p)
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > 1400 {
			return
		}
		q, err := parseDNSQuery(payload)
		if err == nil {
			a := dnsAnswer(q, rcodeOK, []netip.Addr{netip.MustParseAddr("198.51.100.1")}, 60)
			if len(a) > maxDNSAnswer || len(a) < dnsHeader {
				t.Fatalf("an answer of %d bytes", len(a))
			}
		}
		g.decide(dnsFrame(payload))
		for len(g.dns.replies) > 0 {
			<-g.dns.replies
		}
	})
}

// A policy removed while a name is looked up (SetNetwork(nil) meanwhile):
// the answer comes, nothing panics.
func TestPolicyRemovedDuringALookup(t *testing.T) {
	g := &Guard{}
	g.Resolve = func(ctx context.Context, network, name string) ([]netip.Addr, error) {
		g.SetPolicy(nil)
		return []netip.Addr{netip.MustParseAddr("198.51.100.1")}, nil
	}
	p, _ := NewPolicy([]string{"*"}, nil, nil)
	g.SetPolicy(p)
	g.decide(dnsFrame(query(1, "a.test", dnsTypeA)))
	if rcode, addrs := answerOf(t, g); rcode != rcodeOK || len(addrs) != 1 {
		t.Fatalf("rcode %d %v", rcode, addrs)
	}
}
