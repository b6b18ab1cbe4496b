package netguard

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Flows: the guard decides the first frame of each flow the guest opens
// to the outside (protocol, destination address and port, source port or
// ICMP echo id) by the policy, and lets the flow's later frames through
// on one map lookup. This keeps a connection to an allowed name's address
// open after the address's lease ends, and costs allowed traffic one
// lookup whatever the size of the policy.

const (
	maxFlows = 1 << 16
	// flowIdle: a flow unused this long is forgotten (and decided anew
	// should it carry on).
	flowIdle = 30 * time.Minute
)

type flowKey struct {
	proto        byte
	dst          [16]byte
	sport, dst16 uint16
}

type flowTable struct {
	mu     sync.Mutex
	policy *Policy // the policy the flows were decided by
	m      map[flowKey]int64
	swept  int64
}

// seen says whether key is an open flow under policy p, and marks it used.
func (t *flowTable) seen(key flowKey, p *Policy, now int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.policy != p || t.m == nil {
		t.policy, t.m = p, map[flowKey]int64{} // a new policy decides every flow again
	}
	if _, ok := t.m[key]; ok {
		t.m[key] = now
		return true
	}
	return false
}

// add records an allowed flow; a full table first forgets idle flows, and
// adds nothing if none were (later frames are then decided one by one).
func (t *flowTable) add(key flowKey, p *Policy, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.policy != p {
		return
	}
	if len(t.m) >= maxFlows && now-t.swept > int64(time.Second) {
		t.swept = now
		for k, used := range t.m {
			if now-used > int64(flowIdle) {
				delete(t.m, k)
			}
		}
	}
	if len(t.m) < maxFlows {
		t.m[key] = now
	}
}

// counters are the guard's statistics.
type counters struct {
	allowed, dropped, namesAllowed, namesRefused atomic.Uint64
}

// Stats are a guard's counts since it started.
type Stats struct {
	// Allowed counts the flows the guest opened to the outside.
	Allowed uint64
	// Dropped counts every frame stopped (a connection retried counts each
	// try).
	Dropped uint64
	// NamesAllowed and NamesRefused count DNS questions answered (policy
	// set) and refused with NXDOMAIN.
	NamesAllowed, NamesRefused uint64
}

// Stats returns the counts so far.
func (g *Guard) Stats() Stats {
	return Stats{g.counts.allowed.Load(), g.counts.dropped.Load(), g.counts.namesAllowed.Load(), g.counts.namesRefused.Load()}
}

// port returns the destination port of a TCP or UDP packet, 0 otherwise.
func port(proto byte, l4 []byte) uint16 {
	if (proto == protoTCP || proto == protoUDP) && len(l4) >= 4 {
		return binary.BigEndian.Uint16(l4[2:])
	}
	return 0
}

// outward decides a packet to the outside: l4 is nil for a fragment
// after the first (no transport header), decided by the address only.
func (g *Guard) outward(proto byte, dst netip.Addr, l4 []byte, frame []byte) verdict {
	key := flowKey{proto: proto, dst: dst.As16()}
	switch proto {
	case protoTCP, protoUDP:
		if l4 == nil {
			proto = 0 // matches entries without ports only
		} else if len(l4) < 4 {
			return g.drop(ReasonMalformed, proto, dst, 0)
		} else {
			key.sport, key.dst16 = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		}
	case protoICMP, protoICMPv6:
		if len(l4) >= 6 {
			key.sport = binary.BigEndian.Uint16(l4[4:]) // an echo's id
		}
	}
	p := g.policy.Load()
	now := time.Now().UnixNano()
	if g.flows.seen(key, p, now) {
		return pass
	}
	if p != nil {
		ok, why := p.decide(proto, dst, key.dst16, func() bool { return g.leases.allows(dst, proto, key.dst16, now) })
		if !ok {
			return g.drop(why, proto, dst, key.dst16)
		}
	}
	g.counts.allowed.Add(1)
	if l4 != nil {
		g.flows.add(key, p, now)
	}
	return pass
}

// drop counts a dropped frame and tells the log why, with its destination.
func (g *Guard) drop(why Reason, proto byte, dst netip.Addr, port uint16) verdict {
	g.counts.dropped.Add(1)
	if g.Log != nil && g.Log.Enabled(context.Background(), slog.LevelDebug) {
		g.Log.Debug("network: dropped a frame from the guest", "reason", string(why), "protocol", proto, "destination", dst.String(), "port", port)
	}
	return drop
}
