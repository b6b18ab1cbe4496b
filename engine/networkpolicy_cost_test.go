package engine

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNetworkPolicyCost measures (QS_NETPOLICY_BENCH=rounds) an allowed
// connection under a policy of 1,000 entries against full mode without a
// policy, in alternating rounds on one sandbox: connections opened and
// greeted one after another, a 16 MiB download and a 16 MiB upload; then
// the host CPU that a guest flooding SYNs to denied addresses costs.
func TestNetworkPolicyCost(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("QS_NETPOLICY_BENCH"))
	if rounds == 0 {
		t.Skip("set QS_NETPOLICY_BENCH=rounds to measure")
	}
	policyHosts(t)
	big := &NetworkPolicy{}
	for i := range 999 {
		pre := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(11 + i%90), byte(i / 90), byte(i), 0}), 16+i%9).Masked()
		big.AllowOut = append(big.AllowOut, fmt.Sprintf("%s:%d", pre, 1000+i))
	}
	big.AllowOut = append(big.AllowOut, nsA+":8080")
	sb := startSandbox(t, Config{Network: NetworkFull})
	const conns = 50
	seconds := func(cmd string) float64 {
		out := mustSh(t, sb, "s=$(date +%s%N); "+cmd+" >/dev/null 2>&1; e=$(date +%s%N); echo $((e-s))")
		ns, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", cmd, out)
		}
		return float64(ns) / 1e9
	}
	connect := fmt.Sprintf(`bash -c 'for i in $(seq %d); do exec 3<>/dev/tcp/%s/8080; head -n1 <&3; exec 3<&-; done'`, conns, nsA)
	down := fmt.Sprintf(`bash -c 'exec 3<>/dev/tcp/%s/8080; head -n1 <&3; echo big256 >&3; cat <&3'`, nsA)
	up := fmt.Sprintf(`bash -c 'exec 3<>/dev/tcp/%s/8080; head -n1 <&3; { echo up16777216; head -c 16777216 /dev/zero; } >&3; head -n1 <&3'`, nsA)
	sums := map[string][3]float64{}
	for r := range rounds {
		for _, name := range []string{"none", "1000 rules"} {
			if name == "none" {
				setNetwork(t, sb, nil)
			} else {
				setNetwork(t, sb, big)
			}
			c, d, u := seconds(connect), seconds(down), seconds(up)
			t.Logf("round %d, %s: %.2f ms a connection, down %.1f MiB/s, up %.1f MiB/s", r, name, c*1000/conns, 16/d, 16/u)
			s := sums[name]
			sums[name] = [3]float64{s[0] + c, s[1] + d, s[2] + u}
		}
	}
	for name, s := range sums {
		n := float64(rounds)
		t.Logf("mean of %d rounds, %s: %.2f ms a connection, down %.1f MiB/s, up %.1f MiB/s", rounds, name, s[0]*1000/conns/n, 16*n/s[1], 16*n/s[2])
	}

	// A flood: the CPU of this process (the guard) and of QEMU over 10 s
	// of flood against 10 s of quiet.
	setNetwork(t, sb, big)
	putGuestProgram(t, sb, "./testdata/rawsyn", "/root/rawsyn")
	cpu := func() (self, qemu time.Duration) {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sb.PID()))
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		ut, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		return self, time.Duration(ut+st) * 10 * time.Millisecond
	}
	measure := func(name string, during func()) {
		s0, q0 := cpu()
		b0, _ := sb.NetworkStats()
		start := time.Now()
		during()
		el := time.Since(start)
		s1, q1 := cpu()
		b1, _ := sb.NetworkStats()
		t.Logf("%s over %.1f s: engine %.0f%% of a core, QEMU %.0f%%, %d frames dropped (%.0f a second)", name, el.Seconds(),
			100*(s1-s0).Seconds()/el.Seconds(), 100*(q1-q0).Seconds()/el.Seconds(), b1.Dropped-b0.Dropped, float64(b1.Dropped-b0.Dropped)/el.Seconds())
	}
	measure("quiet", func() { time.Sleep(10 * time.Second) })
	var dests []string
	for p := 1; p <= 64; p++ {
		dests = append(dests, fmt.Sprintf("%s:%d", nsB, 20000+p))
	}
	measure("flood of denied SYNs", func() { mustSh(t, sb, "/root/rawsyn -flood 10s "+strings.Join(dests, " ")) })
}
