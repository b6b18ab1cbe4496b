package netguard

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/pkg/errors"
)

// Policy is a parsed network policy, immutable once made: which
// destinations the guest may open flows to and which names it may
// resolve. Allow beats deny; with any allow entry, everything not allowed
// is denied. Private, link-local and multicast addresses are denied unless
// an allow entry lies wholly inside their range (see special).
type Policy struct {
	allowIP, denyIP     prefixSet
	allowName, denyName nameSet
	hasAllow            bool
	hosts               map[string][]netip.Addr
}

// NewPolicy parses the entries (see ParseRule); an error names the entry.
// hosts are names the engine answers itself, with these addresses, before
// asking the host's resolver.
func NewPolicy(allow, deny []string, hosts map[string][]netip.Addr) (*Policy, error) {
	p := &Policy{hasAllow: len(allow) > 0, hosts: map[string][]netip.Addr{}}
	for i, list := range [][]string{allow, deny} {
		field := [...]string{"allow_out", "deny_out"}[i]
		for j, s := range list {
			r, err := ParseRule(s)
			if err != nil {
				return nil, errors.Wrapf(err, "%s[%d]", field, j)
			}
			if r.Domain == "" && !r.Wildcard && hostOwnPrefix(r.Prefix) {
				return nil, errors.Errorf("%s[%d]: %q is the host itself (loopback or unspecified): the guest reaches the host's loopback only with allow_host_loopback", field, j, s)
			}
			ips, names := &p.allowIP, &p.allowName
			if i == 1 {
				ips, names = &p.denyIP, &p.denyName
			}
			if r.Domain != "" || r.Wildcard {
				names.add(r)
			} else {
				ips.add(r.Prefix, r.Ports)
			}
		}
	}
	for name, addrs := range hosts {
		n := strings.ToLower(strings.TrimSuffix(name, "."))
		if err := checkName(n); err != nil {
			return nil, errors.Wrap(err, "hosts")
		}
		for _, a := range addrs {
			if !a.IsValid() || a.Zone() != "" {
				return nil, errors.Errorf("hosts[%q]: %v is not an address", name, a)
			}
			p.hosts[n] = append(p.hosts[n], a.Unmap())
		}
	}
	return p, nil
}

// hostOwnPrefix: a range that holds or overlaps the host's loopback or
// unspecified addresses, which allow_host_loopback governs.
func hostOwnPrefix(p netip.Prefix) bool {
	for _, h := range []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("::/128"),
	} {
		if p.Bits() >= h.Bits() && h.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// specialRanges are denied unless an allow entry lies inside them: a LAN,
// a cloud's metadata service (169.254.169.254), multicast.
var specialRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// special returns the length of the special range holding dst, or -1.
func special(dst netip.Addr) int {
	for _, r := range specialRanges {
		if r.Contains(dst) {
			return r.Bits()
		}
	}
	return -1
}

// Reason says why a flow was allowed or dropped (for the log).
type Reason string

const (
	ReasonAllowed    Reason = "allowed by allow_out"
	ReasonLearnt     Reason = "an address of an allowed name"
	ReasonNoAllow    Reason = "not in allow_out"
	ReasonDenied     Reason = "in deny_out"
	ReasonSpecial    Reason = "a private, link-local or multicast address not named in allow_out"
	ReasonNoPolicy   Reason = "no policy"
	ReasonHost       Reason = "the host itself"
	ReasonMalformed  Reason = "not a packet the guard passes"
	ReasonSlirpOwn   Reason = "the user network's own address"
	ReasonDNSOverTCP Reason = "DNS over TCP (the engine answers over UDP)"
)

// decide decides a new flow of proto to dst:port; learnt says whether an
// allowed name's address covers it (consulted only where it matters).
func (p *Policy) decide(proto byte, dst netip.Addr, port uint16, learnt func() bool) (bool, Reason) {
	bits := special(dst)
	if p.allowIP.match(dst, proto, port, max(bits, 0)) {
		return true, ReasonAllowed
	}
	if bits >= 0 {
		return false, ReasonSpecial // a name resolving here does not count: DNS rebinding
	}
	if learnt() {
		return true, ReasonLearnt
	}
	if p.denyIP.match(dst, proto, port, 0) {
		return false, ReasonDenied
	}
	if p.hasAllow {
		return false, ReasonNoAllow
	}
	return true, ReasonNoPolicy
}

// name decides whether the guest may resolve name (lower case, no
// trailing dot): allowed names are resolved and their addresses let
// through with ports; with learn false the addresses obey the IP rules
// only (a name allowed because there is no allow list).
func (p *Policy) name(name string) (ok, learn bool, ports []Ports) {
	if ports := p.allowName.match(name); ports != nil {
		return true, true, ports
	}
	if p.denyName.match(name) != nil || p.hasAllow {
		return false, false, nil
	}
	return true, false, nil
}

// prefixSet finds the entries holding an address with one map lookup per
// prefix length in use (at most 33 or 129), not a scan of every entry.
type prefixSet struct {
	v4, v6 []lengthTable // longest first
}

type lengthTable struct {
	bits int
	m    map[netip.Addr][]Ports // by the masked address
}

func (s *prefixSet) add(p netip.Prefix, ports Ports) {
	tables := &s.v4
	if p.Addr().Is6() {
		tables = &s.v6
	}
	i, found := slices.BinarySearchFunc(*tables, p.Bits(), func(t lengthTable, bits int) int { return bits - t.bits })
	if !found {
		*tables = slices.Insert(*tables, i, lengthTable{bits: p.Bits(), m: map[netip.Addr][]Ports{}})
	}
	t := (*tables)[i]
	t.m[p.Addr()] = append(t.m[p.Addr()], ports)
}

// match says whether an entry at least minBits long holds dst and its
// ports admit proto and port.
func (s *prefixSet) match(dst netip.Addr, proto byte, port uint16, minBits int) bool {
	tables := s.v4
	if dst.Is6() {
		tables = s.v6
	}
	for _, t := range tables {
		if t.bits < minBits {
			break
		}
		key, _ := dst.Prefix(t.bits)
		for _, p := range t.m[key.Addr()] {
			if p.match(proto, port) {
				return true
			}
		}
	}
	return false
}

// nameSet holds domain entries: exact names, "*.parent" by parent, "*".
type nameSet struct {
	exact, under map[string][]Ports
	every        []Ports
}

func (s *nameSet) add(r Rule) {
	if s.exact == nil {
		s.exact, s.under = map[string][]Ports{}, map[string][]Ports{}
	}
	switch {
	case r.Domain == "":
		s.every = append(s.every, r.Ports)
	case r.Wildcard:
		s.under[r.Domain] = append(s.under[r.Domain], r.Ports)
	default:
		s.exact[r.Domain] = append(s.exact[r.Domain], r.Ports)
	}
}

// match returns the ports of every entry naming name, nil if none does.
func (s *nameSet) match(name string) []Ports {
	var ports []Ports
	ports = append(ports, s.every...)
	ports = append(ports, s.exact[name]...)
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			ports = append(ports, s.under[name[i+1:]]...)
		}
	}
	return ports
}
