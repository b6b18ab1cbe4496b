package netguard

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// Ports is an inclusive range of ports; the zero Ports means every port
// (and every protocol, ICMP included, which has none).
type Ports struct{ Lo, Hi uint16 }

// Any says whether the range is every port of every protocol.
func (p Ports) Any() bool { return p.Lo == 0 && p.Hi == 0 }

// match says whether a packet of this protocol to this port is in range:
// a rule with ports matches TCP and UDP only.
func (p Ports) match(proto byte, port uint16) bool {
	if p.Any() {
		return true
	}
	return (proto == protoTCP || proto == protoUDP) && p.Lo <= port && port <= p.Hi
}

// Rule is one parsed entry of a policy: a domain (Domain, with Wildcard for
// "*.example.com"; "*" alone is every name) or an address range (Prefix),
// each with Ports.
type Rule struct {
	Domain   string // lower case, no trailing dot
	Wildcard bool
	Prefix   netip.Prefix
	Ports    Ports
}

// ParseRule parses one entry: "pypi.org", "*.example.com", "*",
// "10.0.0.0/8", "2001:db8::1", each optionally with ":port" or
// ":lo-hi" ("api.example.com:443", "10.1.0.0/16:5432",
// "[2001:db8::/32]:80-90"). An IPv6 address with ports is in brackets.
func ParseRule(s string) (Rule, error) {
	var r Rule
	host, ports := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return r, errors.Errorf("%q: no closing ]", s)
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return r, errors.Errorf("%q: after ] comes :port or nothing", s)
			}
			ports = rest[1:]
			if ports == "" {
				return r, errors.Errorf("%q: an empty port", s)
			}
		}
	case strings.Count(s, ":") == 1:
		host, ports, _ = strings.Cut(s, ":")
		if ports == "" {
			return r, errors.Errorf("%q: an empty port", s)
		}
	}
	if ports != "" {
		p, err := parsePorts(ports)
		if err != nil {
			return r, errors.Wrapf(err, "%q", s)
		}
		r.Ports = p
	}
	if host == "" {
		return r, errors.Errorf("%q: no address or domain", s)
	}
	if strings.ContainsAny(host, "/:") || looksNumeric(host) {
		p, err := parsePrefix(host)
		if err != nil {
			return r, errors.Wrapf(err, "%q", s)
		}
		r.Prefix = p
		return r, nil
	}
	name, wild, err := parseDomain(host)
	if err != nil {
		return r, errors.Wrapf(err, "%q", s)
	}
	r.Domain, r.Wildcard = name, wild
	return r, nil
}

// looksNumeric: digits and dots only, an IPv4 address (a domain's last
// label is never all digits).
func looksNumeric(s string) bool {
	return strings.Trim(s, "0123456789.") == ""
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, errors.Errorf("%s is not an address range (CIDR)", s)
		}
		if p.Addr().Zone() != "" {
			return p, errors.Errorf("%s: zones are not allowed", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		if p.Masked() != p {
			return p, errors.Errorf("%s has bits set past its length (did you mean %s?)", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.Errorf("%s is not an IP address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parsePorts(s string) (Ports, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h, err2 := strconv.ParseUint(hi, 10, 16)
	switch {
	case err1 != nil || err2 != nil || l == 0 || h == 0:
		return Ports{}, errors.Errorf("port %q is not a port or range of ports from 1 to 65535", s)
	case l > h:
		return Ports{}, errors.Errorf("port range %q runs backwards", s)
	}
	return Ports{uint16(l), uint16(h)}, nil
}

// parseDomain checks a domain the way DNS names are written for hosts:
// labels of letters, digits, '-' and '_', 1 to 63 bytes, 253 in all, an
// optional leading "*." for subdomains (and "*" alone for every name).
func parseDomain(s string) (name string, wildcard bool, err error) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if s == "*" {
		return "", true, nil
	}
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		s, wildcard = rest, true
	}
	if err := checkName(s); err != nil {
		return "", false, err
	}
	return s, wildcard, nil
}

// checkName says whether s (lower case, no trailing dot) is a host name.
func checkName(s string) error {
	if s == "" || len(s) > 253 {
		return errors.Errorf("%q is not a domain name (1 to 253 characters)", s)
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return errors.Errorf("%q is not a domain name (a label is 1 to 63 characters)", s)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.Errorf("%q is not a domain name (%q in a label; a wildcard is only a leading *.)", s, c)
			}
		}
	}
	return nil
}
