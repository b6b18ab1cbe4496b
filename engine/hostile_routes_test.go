package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The lying agent on every other route the host consumes (lies in
// testdata/liar/lies_files.go, lies_processes.go, lies_execute.go,
// lies_mounts.go): each answer a real agent never gives, and the promise
// the host keeps all the same, checked on the host.

// countingWriter counts what reaches it and keeps nothing.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }

// heapPeak runs fn and returns how far the host's heap grew above what
// it was before, at its highest (sampled every 20 ms).
func heapPeak(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	<-sampled
	return peak.Load()
}

// backstop is the context of a call that must end by itself: its deadline
// only keeps a broken host from hanging the test, and the test fails if
// the call needed it.
func backstop(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func endedByItself(t *testing.T, ctx context.Context, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("the call succeeded")
	}
	if ctx.Err() != nil {
		t.Fatalf("the call ended only at the test's deadline: %v", err)
	}
}

// A lying agent's answer to a file read: the host takes at most its limit
// whatever the body's length says or does, and a body that ends before
// its announced size is an error; to a file operation, an answer without
// end is refused at a bound, junk is an error.
func TestALyingAgentsFileAnswers(t *testing.T) {
	sb := startSandbox(t, Config{})
	l := startLiar(t, sb, "none")
	const limit = 1 << 20

	t.Run("read-endless", func(t *testing.T) {
		l.tell(t, "read-endless")
		ctx := backstop(t, time.Minute)
		var w countingWriter
		_, err := sb.ReadFile(ctx, "/etc/hostname", &w, FileOptions{MaxSize: limit})
		endedByItself(t, ctx, err)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "max_size") {
			t.Errorf("error: %v, want one that names max_size", err)
		}
		if w.n.Load() > limit {
			t.Errorf("%d bytes reached the writer, past the limit of %d", w.n.Load(), limit)
		}
	})
	t.Run("read-endless without a limit, cancelled", func(t *testing.T) {
		l.tell(t, "read-endless")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := sb.ReadFile(ctx, "/etc/hostname", &countingWriter{}, FileOptions{MaxSize: -1})
		if err == nil || time.Since(start) > 10*time.Second {
			t.Errorf("a read without end, cancelled after 2 s: %v after %v", err, time.Since(start))
		}
	})
	t.Run("read-huge", func(t *testing.T) {
		l.tell(t, "read-huge")
		ctx := backstop(t, time.Minute)
		var w countingWriter
		_, err := sb.ReadFile(ctx, "/etc/hostname", &w, FileOptions{}) // the default limit
		endedByItself(t, ctx, err)
		if !errors.Is(err, ErrBadRequest) || w.n.Load() != 0 {
			t.Errorf("a petabyte announced: %v, %d bytes written; want a refusal before any", err, w.n.Load())
		}
	})
	t.Run("read-short", func(t *testing.T) {
		l.tell(t, "read-short")
		ctx := backstop(t, time.Minute)
		_, err := sb.ReadFile(ctx, "/etc/hostname", &countingWriter{}, FileOptions{})
		endedByItself(t, ctx, err)
	})
	t.Run("read-long", func(t *testing.T) {
		l.tell(t, "read-long")
		var b bytes.Buffer
		n, err := sb.ReadFile(backstop(t, time.Minute), "/etc/hostname", &b, FileOptions{})
		if err != nil || n != 10 || b.String() != "0123456789" {
			t.Errorf("10 bytes announced, more sent: %d %q %v; want the 10 announced", n, b.String(), err)
		}
		// What came after them is no answer to the next request.
		l.tell(t, "none")
		b.Reset()
		if _, err := sb.ReadFile(backstop(t, time.Minute), liarDir+"/scenario", &b, FileOptions{}); err != nil || b.String() != "none\n" {
			t.Errorf("the next read: %q %v", b.String(), err)
		}
	})

	t.Run("op-endless", func(t *testing.T) {
		l.tell(t, "op-endless")
		ctx := backstop(t, 2*time.Minute)
		var err error
		grew := heapPeak(func() { _, err = sb.ListDir(ctx, "/etc", FileOptions{}) })
		endedByItself(t, ctx, err)
		if !strings.Contains(err.Error(), "larger than") {
			t.Errorf("error: %v, want one that says the answer is too large", err)
		}
		if grew > 1<<30 {
			t.Errorf("the host's heap grew by %d MiB", grew>>20)
		}
	})
	t.Run("op-junk", func(t *testing.T) {
		l.tell(t, "op-junk")
		ctx := backstop(t, time.Minute)
		_, err := sb.Stat(ctx, "/etc", FileOptions{})
		endedByItself(t, ctx, err)
		_, err = sb.ListDir(ctx, "/etc", FileOptions{})
		endedByItself(t, ctx, err)
	})
	t.Run("op-absurd", func(t *testing.T) {
		l.tell(t, "op-absurd")
		ctx := backstop(t, time.Minute)
		// Names no folder holds (`../../etc/passwd`, `a/b`, a NUL, `..`,
		// ""), a size of -1, a mode past the permission bits, an unknown
		// type: refused, not handed on to a caller who may join them to a
		// host path.
		if list, err := sb.ListDir(ctx, "/etc", FileOptions{}); err == nil || KindOf(err) != KindTransport {
			t.Errorf("a listing with impossible entries: %+v %v", list, err)
		}
		if info, err := sb.Stat(ctx, "/etc/passwd", FileOptions{}); err == nil || KindOf(err) != KindTransport {
			t.Errorf("a stat with an impossible answer: %+v %v", info, err)
		}
	})
}

// A lying agent's output of a background process (and its list): the host
// keeps at most the cap of what it sees, a stream without end or exit
// ends when the caller gives up, and malformed or foreign events are
// errors, never a panic.
func TestALyingAgentsProcessOutput(t *testing.T) {
	sb := startSandbox(t, Config{})
	l := startLiar(t, sb, "none")
	p := sb.Process("any")
	const maxOutput = 1 << 20

	t.Run("output-endless", func(t *testing.T) {
		l.tell(t, "output-endless")
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		var seen atomic.Int64
		var res *AttachResult
		var err error
		start := time.Now()
		grew := heapPeak(func() {
			res, err = p.Attach(ctx, maxOutput, func(_ Stream, b []byte) error { seen.Add(int64(len(b))); return nil })
		})
		if err == nil || res != nil || time.Since(start) > 15*time.Second {
			t.Errorf("output without end, cancelled after 4 s: %v, %v after %v", res, err, time.Since(start))
		}
		// What passed through is counted, not kept: the heap holds the
		// cap (and the transport's buffers), not everything seen.
		if grew > 64<<20 && uint64(seen.Load()) > grew/2 {
			t.Errorf("the host's heap grew by %d MiB for %d MiB of output past a cap of 1 MiB", grew>>20, seen.Load()>>20)
		}
		t.Logf("%d MiB of output seen, heap grew by %d MiB", seen.Load()>>20, grew>>20)
	})
	t.Run("output-silent", func(t *testing.T) {
		l.tell(t, "output-silent")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := p.Wait(ctx)
		if err == nil || time.Since(start) > 10*time.Second {
			t.Errorf("an exit that never comes, cancelled after 2 s: %v after %v", err, time.Since(start))
		}
	})
	for _, lie := range []string{"output-malformed", "output-long-line", "output-foreign"} {
		t.Run(lie, func(t *testing.T) {
			l.tell(t, lie)
			ctx := backstop(t, time.Minute)
			res, err := p.Wait(ctx)
			endedByItself(t, ctx, err)
			if res != nil {
				t.Errorf("a result: %+v", res)
			}
		})
	}
	t.Run("processes-endless", func(t *testing.T) {
		l.tell(t, "processes-endless")
		ctx := backstop(t, 2*time.Minute)
		_, err := sb.Processes(ctx)
		endedByItself(t, ctx, err)
		if !strings.Contains(err.Error(), "larger than") {
			t.Errorf("error: %v, want one that says the answer is too large", err)
		}
	})
}

// A lying agent's answer to a command: the cap the caller asked for holds
// on the host whatever the guest sends, and an answer without end or
// that is not JSON is an error.
func TestALyingAgentsCommandAnswers(t *testing.T) {
	sb := startSandbox(t, Config{})
	l := startLiar(t, sb, "none")
	const maxOutput = 1000
	req := ExecRequest{Command: "true", MaxOutput: maxOutput}

	t.Run("execute-over-cap", func(t *testing.T) {
		l.tell(t, "execute-over-cap")
		res, err := sb.Execute(backstop(t, time.Minute), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Stdout) > maxOutput || len(res.Stderr) > maxOutput || !res.StdoutTruncated || !res.StderrTruncated {
			t.Errorf("a cap of %d: %d and %d bytes kept, truncated %v %v", maxOutput, len(res.Stdout), len(res.Stderr), res.StdoutTruncated, res.StderrTruncated)
		}
	})
	t.Run("execute-stream-over-cap", func(t *testing.T) {
		l.tell(t, "execute-stream-over-cap")
		var seen int
		res, err := sb.Execute(backstop(t, time.Minute), streaming(req, func(_ Stream, b []byte) { seen += len(b) }))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Stdout) > maxOutput || !res.StdoutTruncated || seen != 4*maxOutput {
			t.Errorf("a cap of %d: %d bytes kept (truncated %v), %d seen", maxOutput, len(res.Stdout), res.StdoutTruncated, seen)
		}
	})
	for _, lie := range []string{"execute-endless", "execute-junk", "execute-stream-junk"} {
		t.Run(lie, func(t *testing.T) {
			l.tell(t, lie)
			ctx := backstop(t, time.Minute)
			r := req
			if strings.Contains(lie, "stream") {
				r = streaming(req, func(Stream, []byte) {}) // the stream route
			}
			_, err := sb.Execute(ctx, r)
			endedByItself(t, ctx, err)
		})
	}
}

// A lying agent's answers about shared folders: a read-only folder that
// the guest mounts writable stays unchanged on the host (the host
// enforces read-only), and junk for the switch or the mount fails the
// call with nothing left mounted or served.
func TestALyingAgentsMounts(t *testing.T) {
	sb := startSandbox(t, Config{})
	l := startLiar(t, sb, "none")
	ctx := context.Background()

	t.Run("mount-writable", func(t *testing.T) {
		l.tell(t, "mount-writable")
		folder, before := hostCanary(t)
		h, err := sb.Mount(backstop(t, time.Minute), Mount{HostPath: folder, GuestPath: "/mnt/ro", ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		l.tell(t, "none")
		if got := mustSh(t, sb, "grep ' /mnt/ro ' /proc/mounts | grep -c '[ ,]rw[ ,]'; true"); got != "1\n" {
			t.Fatalf("the lie did not take: the guest's mount is not read-write (%q)", got)
		}
		out, _ := sh(t, sb, "cd /mnt/ro; echo planted > keep; echo planted > new; mkdir d; chmod 777 . keep; touch -d 1990-01-01 keep .; ln -s / link; mv keep moved; rm -f keep; cat /mnt/ro/keep")
		if after := hostState(folder, filepath.Join(folder, "keep")); after != before {
			t.Errorf("the read-only folder changed on the host:\n%swas\n%s(the guest: %s)", after, before, out)
		}
		if err := sb.Unmount(ctx, h); err != nil {
			t.Error(err)
		}
	})
	for _, lie := range []string{"mount-connect-junk", "mount-add-junk"} {
		t.Run(lie, func(t *testing.T) {
			l.tell(t, lie)
			folder, _ := hostCanary(t)
			ctx := backstop(t, time.Minute)
			_, err := sb.Mount(ctx, Mount{HostPath: folder, GuestPath: "/mnt/" + lie})
			endedByItself(t, ctx, err)
			l.tell(t, "none")
			if active := sb.ActiveMounts(); len(active) > 0 {
				t.Errorf("still active: %+v", active)
			}
			if got := mustSh(t, sb, fmt.Sprintf("grep -c ' /mnt/%s ' /proc/mounts; ls /mnt/%s 2>/dev/null; true", lie, lie)); got != "0\n" {
				t.Errorf("in the guest: %q", got)
			}
		})
	}
}
