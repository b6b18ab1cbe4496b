package netguard

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRule(t *testing.T) {
	good := map[string]Rule{
		"pypi.org":              {Domain: "pypi.org"},
		"PyPI.org.":             {Domain: "pypi.org"},
		"*.example.com":         {Domain: "example.com", Wildcard: true},
		"*":                     {Wildcard: true},
		"api.example.com:443":   {Domain: "api.example.com", Ports: Ports{443, 443}},
		"10.1.0.0/16:5432":      {Prefix: netip.MustParsePrefix("10.1.0.0/16"), Ports: Ports{5432, 5432}},
		"1.2.3.4":               {Prefix: netip.MustParsePrefix("1.2.3.4/32")},
		"2001:db8::1":           {Prefix: netip.MustParsePrefix("2001:db8::1/128")},
		"[2001:db8::/32]:80-90": {Prefix: netip.MustParsePrefix("2001:db8::/32"), Ports: Ports{80, 90}},
		"[2001:db8::1]":         {Prefix: netip.MustParsePrefix("2001:db8::1/128")},
		"::ffff:1.2.3.0/120":    {Prefix: netip.MustParsePrefix("1.2.3.0/24")},
		"0.0.0.0/0":             {Prefix: netip.MustParsePrefix("0.0.0.0/0")},
	}
	for s, want := range good {
		got, err := ParseRule(s)
		if err != nil || got != want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	bad := map[string]string{
		"":                               "no address",
		"pypi.org:":                      "empty port",
		"pypi.org:0":                     "1 to 65535",
		"pypi.org:65536":                 "1 to 65535",
		"pypi.org:90-80":                 "backwards",
		"pypi.org:http":                  "not a port",
		"10.0.0.1/8":                     "bits set past",
		"10.0.0.0/33":                    "not an address range",
		"1.2.3":                          "not an IP address",
		"a..b":                           "label",
		"foo.*.com":                      "wildcard is only",
		"exa mple.com":                   "not a domain",
		"[2001:db8::1":                   "no closing",
		"[2001:db8::1]443":               "after ]",
		"fe80::1%eth0":                   "not an IP address",
		strings.Repeat("a", 64) + ".com": "63",
	}
	for s, want := range bad {
		if _, err := ParseRule(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRule(%q): %v, want an error saying %q", s, err, want)
		}
	}
}

func TestNewPolicyNamesTheEntry(t *testing.T) {
	_, err := NewPolicy([]string{"pypi.org", "10.0.0.1/8"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "allow_out[1]") {
		t.Fatalf("%v", err)
	}
	_, err = NewPolicy(nil, []string{"x:y"}, nil)
	if err == nil || !strings.Contains(err.Error(), "deny_out[0]") {
		t.Fatalf("%v", err)
	}
	for _, s := range []string{"127.0.0.1", "127.0.0.0/8", "::1", "0.0.0.0/8", "0.0.0.0/32"} {
		if _, err := NewPolicy([]string{s}, nil, nil); err == nil || !strings.Contains(err.Error(), "allow_host_loopback") {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestDecide(t *testing.T) {
	never := func() bool { return false }
	type c struct {
		dst   string
		proto byte
		port  uint16
		want  bool
	}
	cases := []struct {
		allow, deny []string
		cases       []c
	}{
		{nil, nil, []c{ // an empty policy: all but the special ranges
			{"198.51.100.1", protoTCP, 80, true},
			{"2001:db8::1", protoUDP, 53, true},
			{"10.1.2.3", protoTCP, 80, false},
			{"172.16.0.1", protoTCP, 80, false},
			{"192.168.1.1", protoTCP, 80, false},
			{"169.254.169.254", protoTCP, 80, false},
			{"224.0.0.251", protoUDP, 5353, false},
			{"fd00::1", protoTCP, 80, false},
			{"fe80::1", protoTCP, 80, false},
			{"ff05::1", protoUDP, 80, false},
		}},
		{[]string{"0.0.0.0/0", "::/0"}, nil, []c{ // allowing everything still leaves the special ranges out
			{"198.51.100.1", protoTCP, 80, true},
			{"169.254.169.254", protoTCP, 80, false},
			{"10.1.2.3", protoICMP, 0, false},
			{"fe80::1", protoTCP, 80, false},
		}},
		{[]string{"169.254.169.254:80", "10.1.0.0/16:5432", "8.0.0.0/5"}, nil, []c{ // named inside the range
			{"169.254.169.254", protoTCP, 80, true},
			{"169.254.169.254", protoTCP, 81, false},
			{"169.254.169.253", protoTCP, 80, false},
			{"10.1.2.3", protoTCP, 5432, true},
			{"10.1.2.3", protoUDP, 5432, true},
			{"10.1.2.3", protoICMP, 0, false},
			{"10.2.0.1", protoTCP, 5432, false}, // 8.0.0.0/5 holds all of 10/8: not specific
			{"9.9.9.9", protoICMP, 0, true},
			{"1.1.1.1", protoTCP, 80, false},
		}},
		{[]string{"198.51.100.0/24:443"}, []string{"198.51.100.7"}, []c{ // allow beats deny
			{"198.51.100.7", protoTCP, 443, true},
			{"198.51.100.7", protoTCP, 80, false},
		}},
		{nil, []string{"198.51.100.0/24", "[2001:db8::/32]:80-90"}, []c{
			{"198.51.100.7", protoTCP, 443, false},
			{"198.51.101.7", protoTCP, 443, true},
			{"2001:db8::5", protoTCP, 85, false},
			{"2001:db8::5", protoTCP, 91, true},
		}},
	}
	for _, tc := range cases {
		p, err := NewPolicy(tc.allow, tc.deny, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tc.cases {
			if got, why := p.decide(c.proto, netip.MustParseAddr(c.dst), c.port, never); got != c.want {
				t.Errorf("allow %v deny %v: %s proto %d port %d: %v (%s), want %v", tc.allow, tc.deny, c.dst, c.proto, c.port, got, why, c.want)
			}
		}
	}
	// A name's address is allowed, unless it is a special one (rebinding).
	p, _ := NewPolicy([]string{"pypi.org"}, nil, nil)
	always := func() bool { return true }
	if ok, _ := p.decide(protoTCP, netip.MustParseAddr("198.51.100.1"), 443, always); !ok {
		t.Error("a leased address was refused")
	}
	if ok, _ := p.decide(protoTCP, netip.MustParseAddr("169.254.169.254"), 80, always); ok {
		t.Error("a name resolving to the metadata address opened it")
	}
}

func TestNames(t *testing.T) {
	p, err := NewPolicy([]string{"pypi.org", "*.example.com:443", "files.pythonhosted.org"}, []string{"evil.example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"pypi.org": true, "www.pypi.org": false, "a.example.com": true, "a.b.example.com": true,
		"example.com": false, "evil.example.com": true /* allow beats deny */, "other.org": false, "notexample.com": false,
	} {
		if ok, learn, _ := p.name(name); ok != want || ok && !learn {
			t.Errorf("%s: %v %v, want %v", name, ok, learn, want)
		}
	}
	d, _ := NewPolicy(nil, []string{"*.evil.com"}, nil)
	if ok, _, _ := d.name("x.evil.com"); ok {
		t.Error("a denied name resolves")
	}
	if ok, learn, _ := d.name("good.com"); !ok || learn {
		t.Error("without an allow list a name resolves, and its addresses obey the IP rules only")
	}
	star, _ := NewPolicy([]string{"*"}, nil, nil)
	if ok, _, _ := star.name("anything.org"); !ok {
		t.Error("* allows every name")
	}
}

// BenchmarkDecide: a policy of 1,000 entries of many lengths decided on
// an address that none holds (the slowest case: every length is looked
// at) and on one that the last holds.
func BenchmarkDecide(b *testing.B) {
	var allow []string
	for i := range 1000 {
		pre := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(11 + i%100), byte(i / 200), byte(i), 0}), 16+i%9).Masked()
		allow = append(allow, fmt.Sprintf("%s:%d", pre, 1000+i))
	}
	p, err := NewPolicy(allow, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	never := func() bool { return false }
	dst := netip.MustParseAddr("198.51.100.1")
	for b.Loop() {
		p.decide(protoTCP, dst, 443, never)
	}
}
