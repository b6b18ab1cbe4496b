package engine

import (
	"context"
	"maps"
	"net/netip"
	"slices"

	"github.com/quicksand-go/quicksand/engine/internal/netguard"
)

// NetworkPolicy narrows what a sandbox in full network mode may reach
// (Config.NetworkPolicy, Sandbox.SetNetwork). Each entry is a domain
// ("pypi.org"), a wildcard domain ("*.example.com": its subdomains, not
// example.com itself; "*": every name), or an IP address or CIDR range,
// IPv4 or IPv6, each optionally with a port or port range
// ("api.example.com:443", "10.1.0.0/16:5432", "[2001:db8::/32]:80-90"; an
// entry with ports matches TCP and UDP, one without every protocol, ICMP
// included).
//
// Allow beats deny; with any AllowOut entry, everything not allowed is
// denied. Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7),
// link-local ones (169.254/16, so a cloud's metadata service, and
// fe80::/10) and multicast are denied unless an AllowOut entry lies
// inside them ("10.1.0.0/16", "169.254.169.254:80"; "0.0.0.0/0" does not
// count). The host itself (its loopback and its own addresses) is never
// reached: that is AllowHostLoopback's, which a policy cannot be used with.
//
// Domains work through DNS: the engine answers the guest's DNS itself. A
// name no entry allows gets NXDOMAIN without being looked up (with an
// AllowOut list, every name not in it; without one, the names DenyOut
// names). An allowed name is looked up on the host and its addresses let
// through (on that entry's ports) for a few minutes after each answer.
// Connections to an address typed by hand obey the IP entries only. See
// docs/security.md for what this does not catch.
type NetworkPolicy struct {
	AllowOut []string
	DenyOut  []string
	// Hosts are names the engine's DNS answers with these addresses
	// without asking the host's resolver (as /etc/hosts would): pinned
	// services, tests. A name here still needs an AllowOut entry (or no
	// AllowOut list) to be answered.
	Hosts map[string][]netip.Addr
}

// compile parses the policy; the error names the entry at fault.
func (p *NetworkPolicy) compile() (*netguard.Policy, error) {
	if p == nil {
		return nil, nil
	}
	return netguard.NewPolicy(p.AllowOut, p.DenyOut, p.Hosts)
}

// clone copies the policy, so a caller's later changes do not reach it.
func (p *NetworkPolicy) clone() *NetworkPolicy {
	if p == nil {
		return nil
	}
	c := &NetworkPolicy{AllowOut: slices.Clone(p.AllowOut), DenyOut: slices.Clone(p.DenyOut), Hosts: maps.Clone(p.Hosts)}
	for name, addrs := range c.Hosts {
		c.Hosts[name] = slices.Clone(addrs)
	}
	return c
}

// NetworkStats are the counts of a sandbox's network guard since it
// started (full network mode only).
type NetworkStats struct {
	// Allowed counts the flows (TCP connections, UDP and ICMP
	// conversations) the guest opened to the outside.
	Allowed uint64
	// Dropped counts every frame the guard stopped: by the policy, to the
	// host itself, malformed; a connection retried counts each try. Each
	// is logged at Debug with its destination (Config.Logger).
	Dropped uint64
	// NamesAllowed and NamesRefused count the DNS questions the engine
	// answered under a policy and those it refused with NXDOMAIN.
	NamesAllowed, NamesRefused uint64
}

// SetNetwork replaces the sandbox's network policy (nil: none, plain full
// mode) at once: new flows obey it, and a flow already open is decided
// again by its next frame, so one the new policy denies stops too. Only a
// sandbox in full network mode (without AllowHostLoopback) has a policy.
func (sb *Sandbox) SetNetwork(ctx context.Context, policy *NetworkPolicy) error {
	if sb.remote != nil {
		return sb.remote.setNetwork(ctx, policy)
	}
	if sb.guard == nil {
		return newError(KindBadRequest, nil, "SetNetwork: the sandbox has no network guard (a policy needs network mode full, without allow_host_loopback)")
	}
	p, err := policy.compile()
	if err != nil {
		return newError(KindInvalidConfig, err, "network policy")
	}
	if err := ctx.Err(); err != nil {
		return newError(KindCancelled, err, "SetNetwork")
	}
	sb.guard.SetPolicy(p)
	return nil
}

// NetworkStats returns the guard's counts (a KindBadRequest error for a
// sandbox without one: restricted mode, AllowHostLoopback, a server's).
func (sb *Sandbox) NetworkStats() (NetworkStats, error) {
	if sb.remote != nil {
		return sb.remote.networkStats()
	}
	if sb.guard == nil {
		return NetworkStats{}, newError(KindBadRequest, nil, "NetworkStats: the sandbox has no network guard (network mode full, without allow_host_loopback)")
	}
	s := sb.guard.Stats()
	return NetworkStats{s.Allowed, s.Dropped, s.NamesAllowed, s.NamesRefused}, nil
}
