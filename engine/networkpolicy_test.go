package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// policyServer answers on every address of its namespace: TCP on 8080 and
// 8081 with "hi ADDR:PORT" (then, asked "bigN", N × 64 KiB), UDP on 7777
// with an echo, and on 7 (slirp sends a guest's ICMP echo as UDP to the
// echo port when the host gives it no ICMP socket, as here: QEMU runs as
// root and net.ipv4.ping_group_range is "1 0").
const policyServer = `
import socket, sys, threading
def serve(c):
    a = c.getsockname()
    c.sendall(("hi %s:%d\n" % (a[0], a[1])).encode())
    try:
        c.settimeout(5)
        d = b""
        while b"\n" not in d:
            more = c.recv(65536)
            if not more:
                break
            d += more
        line, _, rest = d.partition(b"\n")
        if line.startswith(b"big"):
            buf = b"x" * 65536
            for _ in range(int(line[3:])):
                c.sendall(buf)
        elif line.startswith(b"up"):
            n, want = len(rest), int(line[2:])
            while n < want:
                more = c.recv(65536)
                if not more:
                    break
                n += len(more)
            c.sendall(b"got %d\n" % n)
    except Exception:
        pass
    c.close()
def tcp(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
def udp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port)) # answers from the address asked
    while True:
        d, a = s.recvfrom(2048)
        s.sendto(d, a)
for p in (8080, 8081):
    threading.Thread(target=tcp, args=(p,), daemon=True).start()
for a in sys.argv[1:]:
    for p in (7, 7777):
        threading.Thread(target=udp, args=(a, p), daemon=True).start()
threading.Event().wait()
`

// Addresses of the test's own hosts: one network namespace, joined to the
// host by a veth pair (198.19.0.1 is the host's end, so the host's own).
const (
	nsA, nsB, nsC, nsD = "198.19.0.2", "198.19.0.3", "198.19.0.4", "198.19.0.5"
	nsLinkLocal        = "169.254.77.7" // link-local, as a cloud's metadata address is
)

func policyHosts(t *testing.T) {
	t.Helper()
	ns, hostEnd, nsEnd, sh := testNamespace(t, "qs-policy-", "qph", "qpn")
	sh("ip", "addr", "add", "198.19.0.1/24", "dev", hostEnd)
	sh("ip", "link", "set", hostEnd, "up")
	for _, a := range []string{nsA, nsB, nsC, nsD} {
		sh("ip", "-n", ns, "addr", "add", a+"/24", "dev", nsEnd)
	}
	sh("ip", "-n", ns, "addr", "add", nsLinkLocal+"/32", "dev", nsEnd)
	sh("ip", "route", "add", nsLinkLocal+"/32", "dev", hostEnd)
	sh("ip", "-n", ns, "link", "set", nsEnd, "up")
	sh("ip", "-n", ns, "route", "add", "default", "dev", nsEnd)
	sh("ip", "-n", ns, "link", "set", "lo", "up")
	srv := exec.Command("ip", "netns", "exec", ns, "python3", "-c", policyServer, nsA, nsB, nsC, nsD, nsLinkLocal)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for _, a := range []string{nsA, nsLinkLocal} {
		for i := 0; ; i++ {
			c, err := net.DialTimeout("tcp", a+":8081", time.Second)
			if err == nil {
				c.Close()
				break
			}
			if i == 100 {
				t.Fatalf("the test's hosts did not start: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// policyNames are the test's names, given to the engine's resolver.
var policyNames = map[string][]netip.Addr{
	"api.qs.test":    {netip.MustParseAddr(nsB)},
	"denied.qs.test": {netip.MustParseAddr(nsC)},
	"a.wild.qs.test": {netip.MustParseAddr(nsD)},
	"wild.qs.test":   {netip.MustParseAddr(nsD)},
}

// guestTCP connects from the guest to host:port (a name or an address)
// and says whether the server's greeting came back within 3 s: a denied
// connection is dropped, so each denial waits all of it, and an allowed
// one answers in well under a second even under load.
func guestTCP(t *testing.T, sb *Sandbox, host string, port int) bool {
	t.Helper()
	out, _ := sh(t, sb, fmt.Sprintf(`timeout 3 bash -c 'exec 3<>/dev/tcp/%s/%d && head -n1 <&3' 2>&1`, host, port))
	return strings.HasPrefix(out, "hi ")
}

func guestUDP(t *testing.T, sb *Sandbox, addr string) bool {
	t.Helper()
	out, _ := sh(t, sb, fmt.Sprintf(`timeout 3 bash -c 'exec 3<>/dev/udp/%s/7777; for i in 1 2 3; do echo ping >&3; done; head -n1 <&3'`, addr))
	return strings.TrimSpace(out) == "ping"
}

// guestPing sends ICMP echo requests from the guest (a raw socket: the
// image has no ping) and says whether one was answered.
func guestPing(t *testing.T, sb *Sandbox, addr string) bool {
	t.Helper()
	out, _ := sh(t, sb, "python3 -c '"+guestPingScript+"' "+addr)
	return strings.TrimSpace(out) == "pong"
}

const guestPingScript = `
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1)
m = struct.pack("!BBHHH", 8, 0, 0, 0x5153, 1) + b"qsping"
x = sum(struct.unpack("!7H", m))
x = (x >> 16) + (x & 0xffff)
x += x >> 16
m = m[:2] + struct.pack("!H", ~x & 0xffff) + m[4:]
for _ in range(3):
    s.sendto(m, (sys.argv[1], 0))
    try:
        while True:
            d, a = s.recvfrom(2048)
            if a[0] == sys.argv[1] and d[20] == 0:
                print("pong")
                sys.exit(0)
    except socket.timeout:
        pass
`

// guestResolve returns the guest's answer for name (getent), "" if none.
func guestResolve(t *testing.T, sb *Sandbox, name string) string {
	t.Helper()
	out, code := sh(t, sb, "getent ahostsv4 "+name+" | head -n1")
	if code != 0 || out == "" {
		return ""
	}
	return strings.Fields(out)[0]
}

func setNetwork(t *testing.T, sb *Sandbox, p *NetworkPolicy) {
	t.Helper()
	if err := sb.SetNetwork(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkPolicy(t *testing.T) {
	policyHosts(t)
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	hostPort := host.Addr().(*net.TCPAddr).Port
	sb := startSandbox(t, Config{NetworkPolicy: &NetworkPolicy{
		AllowOut: []string{nsA + ":8080", nsA + ":7777", "api.qs.test:8081", "*.wild.qs.test", "[2001:db8::/32]:80-90"},
		DenyOut:  []string{"denied.qs.test"},
		Hosts:    policyNames,
	}})
	t.Log(mustSh(t, sb, "cat /etc/resolv.conf; which curl wget nc ping getent bash || true"))

	t.Run("addresses and ports", func(t *testing.T) {
		if !guestTCP(t, sb, nsA, 8080) {
			t.Error("an allowed address and port did not answer")
		}
		if guestTCP(t, sb, nsA, 8081) {
			t.Error("an allowed address answered on a port not allowed")
		}
		if guestTCP(t, sb, nsB, 8081) {
			t.Error("an address not allowed (nor yet resolved) answered")
		}
	})
	t.Run("names", func(t *testing.T) {
		if got := guestResolve(t, sb, "api.qs.test"); got != nsB {
			t.Fatalf("an allowed name resolved to %q", got)
		}
		if !guestTCP(t, sb, "api.qs.test", 8081) {
			t.Error("an allowed name did not answer")
		}
		if guestTCP(t, sb, "api.qs.test", 8080) {
			t.Error("an allowed name answered on a port not allowed")
		}
		if got := guestResolve(t, sb, "denied.qs.test"); got != "" {
			t.Errorf("a denied name resolved to %s", got)
		}
		if out, code := sh(t, sb, "getent hosts denied.qs.test; echo $?"); code != 0 || strings.TrimSpace(out) != "2" {
			t.Errorf("a denied name: getent said %q, not 2 (NXDOMAIN: not found)", out)
		}
		if guestTCP(t, sb, nsC, 8080) {
			t.Error("a denied name's address, typed by hand, answered")
		}
		if got := guestResolve(t, sb, "unknown.qs.test"); got != "" {
			t.Errorf("a name not allowed resolved to %s", got)
		}
		if got := guestResolve(t, sb, "wild.qs.test"); got != "" {
			t.Errorf("a wildcard's bare parent resolved to %s", got)
		}
		if guestTCP(t, sb, nsD, 8080) {
			t.Error("a wildcard's address answered before its name was resolved")
		}
		if !guestTCP(t, sb, "a.wild.qs.test", 8080) {
			t.Error("a subdomain of a wildcard did not answer")
		}
	})
	t.Run("UDP", func(t *testing.T) {
		if !guestUDP(t, sb, nsA) {
			t.Error("allowed UDP was not echoed")
		}
		if guestUDP(t, sb, nsB) {
			t.Error("UDP to an address not allowed was echoed")
		}
	})
	t.Run("SetNetwork and deny", func(t *testing.T) {
		setNetwork(t, sb, &NetworkPolicy{DenyOut: []string{nsB + "/32"}})
		if !guestTCP(t, sb, nsA, 8081) {
			t.Error("after SetNetwork without an allow list, a port the old policy refused still does not answer")
		}
		if guestTCP(t, sb, nsB, 8081) {
			t.Error("a denied CIDR answered")
		}
		if !guestUDP(t, sb, nsC) || guestUDP(t, sb, nsB) {
			t.Error("UDP does not follow the deny list")
		}
		if !guestPing(t, sb, nsA) {
			t.Error("ICMP echo to an allowed address got no answer")
		}
		if guestPing(t, sb, nsB) {
			t.Error("ICMP echo to a denied address was answered")
		}
	})
	t.Run("special addresses", func(t *testing.T) {
		setNetwork(t, sb, &NetworkPolicy{AllowOut: []string{"0.0.0.0/0"}})
		if !guestTCP(t, sb, nsC, 8080) {
			t.Error("allow 0.0.0.0/0 did not let a public address through")
		}
		if guestTCP(t, sb, nsLinkLocal, 8080) {
			t.Error("allow 0.0.0.0/0 let a link-local address through")
		}
		if guestTCP(t, sb, "10.0.2.2", hostPort) {
			t.Error("allow 0.0.0.0/0 let the host's loopback through")
		}
		setNetwork(t, sb, &NetworkPolicy{AllowOut: []string{"0.0.0.0/0", nsLinkLocal + ":8080"}})
		if !guestTCP(t, sb, nsLinkLocal, 8080) {
			t.Error("a link-local address named in allow_out did not answer")
		}
		if _, err := sb.NetworkStats(); err != nil {
			t.Fatal(err)
		}
		if err := sb.SetNetwork(context.Background(), &NetworkPolicy{AllowOut: []string{"127.0.0.1"}}); err == nil {
			t.Error("a policy naming the host's loopback was taken")
		}
	})
	t.Run("a flood of denied SYNs", func(t *testing.T) {
		setNetwork(t, sb, &NetworkPolicy{AllowOut: []string{nsA + ":8080"}})
		putGuestProgram(t, sb, "./testdata/rawsyn", "/root/rawsyn")
		before, _ := sb.NetworkStats()
		var dests []string
		for p := 1; p <= 64; p++ {
			dests = append(dests, fmt.Sprintf("%s:%d", nsB, 20000+p))
		}
		mustSh(t, sb, "(/root/rawsyn -flood 20s "+strings.Join(dests, " ")+" >/tmp/flood.out 2>&1 &)")
		time.Sleep(2 * time.Second)
		ok := 0
		for range 5 {
			if guestTCP(t, sb, nsA, 8080) {
				ok++
			}
		}
		after, _ := sb.NetworkStats()
		t.Logf("during the flood: %d of 5 allowed connections answered; %d frames dropped", ok, after.Dropped-before.Dropped)
		if ok < 5 {
			t.Error("allowed connections failed during a flood of denied SYNs")
		}
		if after.Dropped-before.Dropped < 1000 {
			t.Errorf("the flood was not dropped (%d)", after.Dropped-before.Dropped)
		}
	})
}
