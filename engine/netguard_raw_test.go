package engine

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Guest root sends hand-made TCP SYNs out of its network card (raw frames:
// its own kernel would route these addresses to its own loopback) to every
// kind of address that is the host itself: loopback, unspecified,
// IPv4-mapped, and one of the host's own addresses (the test's veth end).
// slirp opens a host connection to whatever a SYN names, so a listener of
// the host's for each target (on all addresses, its own port) counts what
// got through. In full network mode nothing may; with AllowHostLoopback the
// same frames reach every listener, which shows each case reaches its stage.
func TestRawFramesDoNotReachTheHost(t *testing.T) {
	outsideHost(t) // makes 198.18.0.1 one of the host's own addresses
	targets := []string{"127.0.0.1", "127.0.0.2", "0.0.0.0", "198.18.0.1", "::1", "::", "::ffff:127.0.0.1", "::ffff:198.18.0.1"}
	accepted := make([]atomic.Int32, len(targets))
	var dests []string
	for i, target := range targets {
		ln, err := net.Listen("tcp", ":0") // every address, IPv4 and IPv6
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		dests = append(dests, netip.AddrPortFrom(netip.MustParseAddr(target), port).String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted[i].Add(1)
				c.Close()
			}
		}()
	}
	send := func(t *testing.T, cfg Config) map[string]int32 {
		t.Helper()
		sb := startSandbox(t, cfg)
		for i := range accepted {
			accepted[i].Store(0)
		}
		putGuestProgram(t, sb, "./testdata/rawsyn", "/root/rawsyn")
		mustSh(t, sb, "/root/rawsyn "+strings.Join(dests, " "))
		time.Sleep(time.Second) // slirp connects as it reads each SYN
		got := map[string]int32{}
		for i, target := range targets {
			got[target] = accepted[i].Load()
		}
		return got
	}
	t.Run("allowed", func(t *testing.T) {
		for target, n := range send(t, Config{Network: NetworkFull, AllowHostLoopback: true}) {
			if n == 0 {
				t.Errorf("with AllowHostLoopback a raw SYN to %s did not reach the host: the test cannot see that case leak", target)
			}
		}
	})
	t.Run("guarded", func(t *testing.T) {
		for target, n := range send(t, Config{Network: NetworkFull}) {
			if n > 0 {
				t.Errorf("raw SYNs from the guest to %s reached the host (%d connections)", target, n)
			}
		}
	})
}
