package netguard

import (
	"net/netip"
	"sync"
	"time"
)

// Leases: the addresses the guard's DNS answers gave for allowed names,
// let through (on the name's entries' ports) until the lease ends.

const (
	// answerTTL is the time to live of the guard's answers. The host's
	// resolver (net.Resolver) does not say a record's own, so the guard
	// gives one of its own, short enough for a changed record to be
	// asked for again soon.
	answerTTL = 60
	// leaseTime is how long an answered address stays allowed: longer
	// than answerTTL, for a client that keeps an answer a little past it.
	leaseTime = 5 * time.Minute
	maxLeases = 1 << 14
)

type lease struct {
	name  string
	ports []Ports
	until int64
}

type leaseTable struct {
	mu sync.Mutex
	m  map[netip.Addr][]lease
}

// learn lets addrs through for name on ports until now+leaseTime; it
// says false when the table is full of live leases.
func (t *leaseTable) learn(name string, ports []Ports, addrs []netip.Addr, now int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[netip.Addr][]lease{}
	}
	if len(t.m)+len(addrs) > maxLeases {
		t.sweep(now)
		if len(t.m)+len(addrs) > maxLeases {
			return false
		}
	}
	until := now + int64(leaseTime)
	for _, a := range addrs {
		ls := t.m[a][:0:0]
		for _, l := range t.m[a] {
			if l.name != name && l.until > now {
				ls = append(ls, l)
			}
		}
		t.m[a] = append(ls, lease{name, ports, until})
	}
	return true
}

func (t *leaseTable) sweep(now int64) {
	for a, ls := range t.m {
		live := ls[:0]
		for _, l := range ls {
			if l.until > now {
				live = append(live, l)
			}
		}
		if len(live) == 0 {
			delete(t.m, a)
		} else {
			t.m[a] = live
		}
	}
}

// allows says whether a live lease lets proto to dst:port through.
func (t *leaseTable) allows(dst netip.Addr, proto byte, port uint16, now int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.m[dst] {
		if l.until <= now {
			continue
		}
		for _, p := range l.ports {
			if p.match(proto, port) {
				return true
			}
		}
	}
	return false
}

// keep keeps the leases of names p still allows, on p's ports for them.
func (t *leaseTable) keep(p *Policy) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for a, ls := range t.m {
		kept := ls[:0]
		for _, l := range ls {
			if p == nil {
				continue
			}
			if ok, learn, ports := p.name(l.name); ok && learn {
				l.ports = ports
				kept = append(kept, l)
			}
		}
		if len(kept) == 0 {
			delete(t.m, a)
		} else {
			t.m[a] = kept
		}
	}
}
