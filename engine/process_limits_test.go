package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The README's bound on background processes (1,024 running at once) is
// the one that bites, with a clear error, and execute goes on working;
// before, the agent ran out of file descriptors at about 680 ("pipe2: too
// many open files") and every later call failed. Commands still see the
// usual soft limit of 1,024 descriptors.
func TestBackgroundProcessBoundIsTheDocumentedOne(t *testing.T) {
	const documented = 1024 // README, docs/protocol.md
	sb := startSandbox(t, Config{})
	ctx := context.Background()
	if out := mustSh(t, sb, "ulimit -n"); out != "1024\n" {
		t.Errorf("commands' descriptor limit: %q, want 1024", out)
	}
	var started atomic.Int32
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if _, err := sb.StartProcess(ctx, ProcessRequest{Command: "exec sleep 600"}); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				started.Add(1)
			}
		}()
	}
	for i := range documented {
		next <- i
	}
	close(next)
	wg.Wait()
	if int(started.Load()) != documented {
		t.Fatalf("%d of %d background processes started; first failures: %v", started.Load(), documented, failures[:min(3, len(failures))])
	}
	_, err := sb.StartProcess(ctx, ProcessRequest{Command: "exec sleep 600"})
	if err == nil || KindOf(err) != KindResource || !strings.Contains(err.Error(), fmt.Sprint(documented)) {
		t.Fatalf("process %d: %v (kind %v), want a resource error naming the bound", documented+1, err, KindOf(err))
	}
	if out := mustSh(t, sb, "echo still serving"); out != "still serving\n" {
		t.Fatalf("execute with %d processes running: %q", documented, out)
	}
}

// Waiting on a background process that is silent for longer than the file
// calls' stall bound is no stall: Wait and Attach return its end (they
// were cut by the bound, DefaultFileTimeout, shortened here to 2 s).
func TestWaitOnASilentProcessIsNotAStall(t *testing.T) {
	sb := sharedSandbox(t)
	defer func(old time.Duration) { fileStallLimit = old }(fileStallLimit)
	fileStallLimit = 2 * time.Second
	p, err := sb.StartProcess(context.Background(), ProcessRequest{Command: "sleep 4; echo done"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Wait(context.Background())
	if err != nil || res.ExitCode != 0 || string(res.Stdout) != "done\n" {
		t.Fatalf("waiting 4 s on a silent process: %+v %v", res, err)
	}
	// Other file calls keep the bound (TestFileCallsOnAFrozenQEMU).
}
