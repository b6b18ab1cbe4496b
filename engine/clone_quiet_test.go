package engine

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// guestCounters are what a guest has sent on its network and written to its
// disk, read from inside it in one command.
const guestCounters = `awk '{print "vda_sectors_written", $7}' /sys/block/vda/stat
grep -E '^(Ip6OutRequests|Icmp6OutNeighborAdvertisements|Icmp6OutRouterSolicits)[[:space:]]' /proc/net/snmp6`

func readGuestCounters(t *testing.T, sb *Sandbox) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(mustSh(t, sb, guestCounters)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			got[f[0]] = f[1]
		}
	}
	if len(got) != 4 {
		t.Fatalf("reading the guest's counters gave %v", got)
	}
	return got
}

// A clone finds its boot's leftover work done (template.go's warm-up, the
// network set by build/init, no self-announcement after the state loads):
// whatever a clone still had to do, every clone would do again in its own
// QEMU, and under TCG translate afresh. So an idle clone writes nothing to
// its disk and sends nothing on IPv6; it never solicits a router nor
// announces itself; the IPv6 its template set up is there from its first
// command and reaches QEMU's network; and under TCG its QEMU runs without
// transparent huge pages (proc.StartWithoutHugePages).
func TestAnIdleCloneStaysQuiet(t *testing.T) {
	sb := startSandbox(t, Config{})
	if !sb.BootTiming().Warm {
		t.Fatal("the sandbox was not a warm start: this test is about clones")
	}
	if v6 := mustSh(t, sb, "cat /proc/net/if_inet6"); !strings.Contains(v6, "fec00000000000000000000000000015 ") ||
		!hasLinkLocal(v6) {
		t.Errorf("the clone's first command sees eth0's IPv6 unset (no fec0::15 or no link-local address yet):\n%s", v6)
	}
	before := readGuestCounters(t, sb)
	time.Sleep(3 * time.Second)
	after := readGuestCounters(t, sb)
	for name, v := range after {
		if v != before[name] {
			t.Errorf("%s went from %s to %s while the clone sat idle for 3 s", name, before[name], v)
		}
	}
	for _, name := range []string{"Icmp6OutNeighborAdvertisements", "Icmp6OutRouterSolicits"} {
		if after[name] != "0" {
			t.Errorf("%s is %s: the guest announced itself or asked for a router", name, after[name])
		}
	}
	// QEMU's network answers for its router: refused, not unreachable.
	if out, _ := sh(t, sb, "timeout 10 bash -c 'echo > /dev/tcp/fec0::2/9'"); !strings.Contains(out, "Connection refused") {
		t.Errorf("a connection to fec0::2 over IPv6 was not refused by QEMU's network: %q", out)
	}
	if sb.Accelerator() == AccelTCG {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", sb.PID()))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(status), "THP_enabled:\t0") {
			_, line, _ := strings.Cut(string(status), "THP_enabled:")
			line, _, _ = strings.Cut(line, "\n")
			t.Errorf("QEMU under TCG runs with transparent huge pages allowed (THP_enabled:%s)", line)
		}
	}
}

// hasLinkLocal says whether /proc/net/if_inet6 lists a link-local
// (scope 20) address of eth0.
func hasLinkLocal(ifInet6 string) bool {
	for _, line := range strings.Split(ifInet6, "\n") {
		if f := strings.Fields(line); len(f) == 6 && f[5] == "eth0" && f[3] == "20" {
			return true
		}
	}
	return false
}
