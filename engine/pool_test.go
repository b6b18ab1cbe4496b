package engine

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
)

func waitForPool(t *testing.T, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for p.Waiting() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the pool holds %d of %d after 3 minutes", p.Waiting(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A start from the pool is a sandbox of its own: a token issued when it was
// taken (the one it waited with no longer works), the clock right, and the
// pool refills; Close stops the sandboxes still waiting.
func TestPoolHandsOutFreshSandboxes(t *testing.T) {
	ctx := context.Background()
	p, err := NewPool(Config{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitForPool(t, p, 2)
	waiting := <-p.ready
	oldToken := waiting.token
	p.ready <- waiting
	time.Sleep(2 * time.Second) // the clock must be set when taken, not when made

	var taken []*Sandbox
	for range 2 {
		sb, err := p.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sb.Stop(ctx) })
		taken = append(taken, sb)
	}
	if taken[0] == taken[1] || taken[0].Token() == taken[1].Token() {
		t.Fatal("two starts shared a sandbox or a token")
	}
	// Each pooled sandbox's RNG is reseeded when taken: two resumed from
	// one template would otherwise give the same bytes.
	var random [][]string // per sandbox: a random uuid, 16 bytes of /dev/urandom
	for _, sb := range taken {
		if sb.Token() == oldToken {
			t.Fatal("a pooled sandbox kept the token it waited with")
		}
		r := run(t, sb, ExecRequest{Command: "date +%s; cat /proc/sys/kernel/random/uuid; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'"})
		random = append(random, strings.Fields(string(r.Stdout))[1:])
		secs, _ := strconv.ParseInt(strings.Fields(string(r.Stdout))[0], 10, 64)
		if d := time.Now().Unix() - secs; d < -2 || d > 2 {
			t.Errorf("the guest's clock is %d s off", d)
		}
	}
	if len(random[0]) != 2 || len(random[1]) != 2 || random[0][0] == random[1][0] || random[0][1] == random[1][1] {
		t.Fatalf("two pooled sandboxes' random uuid and bytes: %q", random)
	}
	// The token a sandbox waited with is refused (it was one of these two).
	for _, sb := range taken {
		stale := agent.New(sb.AgentAddr(), oldToken)
		if err := stale.Ping(ctx); err == nil {
			t.Fatal("a retired token still works")
		}
		stale.Close()
	}

	waitForPool(t, p, 2) // refilled
	var pids []int
	for range 2 {
		sb := <-p.ready
		pids = append(pids, sb.PID())
		p.ready <- sb
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("QEMU %d of a waiting sandbox still runs after Close", pid)
		}
	}
	if _, err := p.Start(ctx); KindOf(err) != KindNotRunning {
		t.Fatalf("Start after Close: %v", err)
	}
}

// A pool that cannot fill falls back to normal starts, whose error says
// why; it never hangs.
func TestPoolThatCannotFillFallsBack(t *testing.T) {
	p, err := NewPool(Config{Image: "no-such-image"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Start(ctx); KindOf(err) != KindImageNotFound {
		t.Fatalf("a start from a pool of a missing image: %v", err)
	}
	if _, err := NewPool(Config{}, 0); KindOf(err) != KindInvalidConfig {
		t.Fatalf("a pool of 0: %v", err)
	}
	if _, err := NewPool(Config{MemoryMiB: 1}, 1); KindOf(err) != KindInvalidConfig {
		t.Fatalf("a pool of a bad config: %v", err)
	}
}
