package engine

import (
	"net/netip"
	"strings"
	"testing"
)

// A policy is checked by Validate, naming the field and the entry.
func TestNetworkPolicyConfig(t *testing.T) {
	ok := Config{NetworkPolicy: &NetworkPolicy{AllowOut: []string{"pypi.org", "*.example.com:443", "10.1.0.0/16:5432", "[2001:db8::/32]:80-90"}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if c, err := ok.withDefaults(); err != nil || c.Network != NetworkFull {
		t.Fatalf("a policy without a mode: %v %v", c.Network, err)
	}
	bad := map[string]Config{
		"needs network_mode full": {Network: NetworkRestricted, NetworkPolicy: &NetworkPolicy{}},
		"allow_host_loopback":     {Network: NetworkFull, AllowHostLoopback: true, NetworkPolicy: &NetworkPolicy{}},
		`allow_out[1]: "10.0.0.1/8": 10.0.0.1/8 has bits set past`: {NetworkPolicy: &NetworkPolicy{AllowOut: []string{"a.org", "10.0.0.1/8"}}},
		`deny_out[0]: "x.org:99999"`:                               {NetworkPolicy: &NetworkPolicy{DenyOut: []string{"x.org:99999"}}},
		`allow_out[0]: "127.0.0.1" is the host itself`:             {NetworkPolicy: &NetworkPolicy{AllowOut: []string{"127.0.0.1"}}},
		`hosts: "bad name" is not a domain name`:                   {NetworkPolicy: &NetworkPolicy{Hosts: map[string][]netip.Addr{"bad name": nil}}},
		`hosts["a.org"]: invalid IP is not an address`:             {NetworkPolicy: &NetworkPolicy{Hosts: map[string][]netip.Addr{"a.org": {{}}}}},
	}
	for want, c := range bad {
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "network_policy") || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error naming network_policy and saying %q, got %v", want, err)
		}
	}
	// The config keeps its own copy.
	p := &NetworkPolicy{AllowOut: []string{"a.org"}}
	c, _ := Config{NetworkPolicy: p}.withDefaults()
	p.AllowOut[0] = "b.org"
	if c.NetworkPolicy.AllowOut[0] != "a.org" {
		t.Fatal("the caller's change reached the config")
	}
}
