package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A NUL byte in any path of a file call is refused before anything is
// done, with a message that quotes the path (never the NUL itself, which
// would end the message as a C string): a C string ends at the NUL, so
// '/tmp/ok.txt\x00/../../etc/cron.d/evil' used to write /tmp/ok.txt.
func TestFilePathsWithNULAreRefused(t *testing.T) {
	sb := sharedSandbox(t)
	ctx := context.Background()
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "ok"), []byte("host file"), 0o644)
	guest := "/tmp/nul-ok.txt\x00/../../etc/cron.d/evil"
	hostEvil := filepath.Join(host, "ok") + "\x00/../evil"
	calls := map[string]func() error{
		"write":         func() error { _, err := sb.WriteFile(ctx, guest, strings.NewReader("x"), FileOptions{}); return err },
		"read":          func() error { _, err := sb.ReadFile(ctx, guest, io.Discard, FileOptions{}); return err },
		"stat":          func() error { _, err := sb.Stat(ctx, guest, FileOptions{}); return err },
		"exists":        func() error { _, err := sb.Exists(ctx, guest, FileOptions{}); return err },
		"list":          func() error { _, err := sb.ListDir(ctx, guest, FileOptions{}); return err },
		"mkdir":         func() error { return sb.MakeDir(ctx, guest, FileOptions{Parents: true}) },
		"remove":        func() error { return sb.Remove(ctx, guest, FileOptions{Recursive: true}) },
		"rename from":   func() error { return sb.Rename(ctx, guest, "/tmp/x", FileOptions{}) },
		"rename to":     func() error { return sb.Rename(ctx, "/etc/hostname", guest, FileOptions{}) },
		"upload from":   func() error { return sb.Upload(ctx, hostEvil, "/tmp/up", FileOptions{}) },
		"upload to":     func() error { return sb.Upload(ctx, filepath.Join(host, "ok"), guest, FileOptions{}) },
		"download from": func() error { return sb.Download(ctx, guest, filepath.Join(host, "down"), FileOptions{}) },
		"download to": func() error {
			return sb.Download(ctx, "/etc/hostname", filepath.Join(host, "down\x00x"), FileOptions{})
		},
		"download to ..": func() error { return sb.Download(ctx, "/etc/hostname", hostEvil, FileOptions{}) },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), `\x00`) || strings.Contains(err.Error(), "\x00") {
			t.Errorf("%s: %q, want a bad request that quotes the path", name, err)
		}
	}
	if r := run(t, sb, ExecRequest{Command: "ls /tmp/nul-ok.txt /tmp/up /tmp/x /etc/cron.d/evil 2>&1 | grep -v 'No such' || true"}); len(r.Stdout) > 0 {
		t.Errorf("made in the guest: %s", r.Stdout)
	}
	if left, _ := os.ReadDir(host); len(left) != 1 {
		t.Errorf("made on the host: %v", left)
	}
}

// capped is a writer that takes at most its cap and then fails, so that a
// read without a bound of its own still ends.
type capped struct {
	cap, n int64
}

func (c *capped) Write(p []byte) (int, error) {
	if c.n += int64(len(p)); c.n > c.cap {
		return 0, fmt.Errorf("more than %d bytes reached the writer", c.cap)
	}
	return len(p), nil
}

// A file larger than the read's limit (a sparse file of 8 GiB, /proc/kcore,
// or a file past a limit of the caller's) fails at once with an error that
// names the limit and the way on; none of it reaches the writer. The old
// read copied without end: /proc/kcore grew the caller to 8.2 GB.
func TestReadFileIsBounded(t *testing.T) {
	sb := sharedSandbox(t)
	ctx := context.Background()
	run(t, sb, ExecRequest{Command: "truncate -s 8G /root/sparse && head -c 2097152 /dev/urandom > /root/two-mib"})
	defer sb.Remove(ctx, "/root/sparse", FileOptions{})
	defer sb.Remove(ctx, "/root/two-mib", FileOptions{})
	for _, c := range []struct {
		name, path string
		opts       FileOptions
		want       error
		says       string
	}{
		{"a sparse file of 8 GiB", "/root/sparse", FileOptions{}, ErrBadRequest, "max_size"},
		{"/proc/kcore", "/proc/kcore", FileOptions{}, ErrBadRequest, "max_size"},
		{"/dev/zero", "/dev/zero", FileOptions{}, ErrBadRequest, "not a file"},
		{"past a limit of 1 MiB", "/root/two-mib", FileOptions{MaxSize: 1 << 20}, ErrBadRequest, "max_size"},
	} {
		w := &capped{cap: 256 << 20}
		start := time.Now()
		n, err := sb.ReadFile(ctx, c.path, w, c.opts)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) || n != 0 || w.n != 0 || time.Since(start) > 10*time.Second {
			t.Errorf("%s: %d bytes (%d to the writer) in %v, %v; want a %v saying %q and nothing read", c.name, n, w.n, time.Since(start), err, c.want, c.says)
		}
	}
	var b bytes.Buffer
	if n, err := sb.ReadFile(ctx, "/root/two-mib", &b, FileOptions{MaxSize: 2 << 20}); err != nil || n != 2<<20 || b.Len() != 2<<20 {
		t.Errorf("a file of exactly the limit: %d, %v", n, err)
	}
}

// Modes are made as asked, setuid, setgid and sticky included, whatever
// the guest's umask: make_dir(mode=0o1777) used to make 0755.
func TestFileModesAreExact(t *testing.T) {
	sb := sharedSandbox(t)
	ctx := context.Background()
	base := "/tmp/modes"
	defer sb.Remove(ctx, base, FileOptions{Recursive: true})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sb.MakeDir(ctx, base, FileOptions{}))
	must(sb.MakeDir(ctx, base+"/sticky", FileOptions{Mode: fs.ModeSticky | 0o777}))
	must(sb.MakeDir(ctx, base+"/a/open", FileOptions{Parents: true, Mode: 0o777}))
	must(sb.MakeDir(ctx, base+"/shared", FileOptions{Parents: true, Mode: fs.ModeSetgid | 0o770}))
	for name, mode := range map[string]fs.FileMode{"suid": fs.ModeSetuid | 0o755, "rw": 0o666} {
		_, err := sb.WriteFile(ctx, base+"/"+name, strings.NewReader("x"), FileOptions{Mode: mode})
		must(err)
	}
	r := run(t, sb, ExecRequest{Command: "cd " + base + " && stat -c '%n %a' sticky a/open shared suid rw"})
	if want := "sticky 1777\na/open 777\nshared 2770\nsuid 4755\nrw 666\n"; string(r.Stdout) != want {
		t.Errorf("modes in the guest:\n%s\nwant:\n%s", r.Stdout, want)
	}
	// An existing folder keeps its mode.
	must(sb.MakeDir(ctx, base+"/sticky", FileOptions{Parents: true, Mode: 0o700}))
	if fi, err := sb.Stat(ctx, base+"/sticky", FileOptions{}); err != nil || fi.Mode != fs.ModeSticky|0o777 {
		t.Errorf("stat of the sticky folder: %v, %v", fi, err)
	}
}

// zeros is an endless reader.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A QEMU frozen from outside (SIGSTOP) during each file call: every call
// fails with a transport error once the agent made no progress for
// DefaultFileTimeout, transfers under way included, never hangs; a
// caller's deadline ends a call sooner; once QEMU goes on, the sandbox
// works. The old calls waited for ever (read_file, upload and write_file
// 400 s and more, list_dir 120 s).
func TestFileCallsOnAFrozenQEMU(t *testing.T) {
	// The engine's bound, shortened: the test waits for it.
	defer func(old time.Duration) { fileStallLimit = old }(fileStallLimit)
	fileStallLimit = 15 * time.Second
	sb := startSandbox(t, Config{})
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: the engine's own bound applies
	defer cancel()
	run(t, sb, ExecRequest{Command: "truncate -s 4G /root/sparse && mkdir /root/tree && truncate -s 4G /root/tree/sparse"})
	hostDir := t.TempDir()
	big := filepath.Join(hostDir, "big")
	if f, err := os.Create(big); err == nil {
		f.Truncate(4 << 30)
		f.Close()
	}
	type outcome struct {
		name string
		err  error
	}
	results := make(chan outcome)
	start := func(name string, call func() error) {
		go func() { results <- outcome{name, call()} }()
	}
	// Transfers under way when QEMU is frozen.
	transfers := map[string]func() error{
		"read_file": func() error {
			_, err := sb.ReadFile(ctx, "/root/sparse", io.Discard, FileOptions{MaxSize: -1})
			return err
		},
		"write_file": func() error {
			_, err := sb.WriteFile(ctx, "/root/new", io.LimitReader(zeros{}, 4<<30), FileOptions{})
			return err
		},
		"upload":   func() error { return sb.Upload(ctx, big, "/root/up", FileOptions{}) },
		"download": func() error { return sb.Download(ctx, "/root/tree", filepath.Join(hostDir, "down"), FileOptions{}) },
	}
	for name, call := range transfers {
		start(name, call)
	}
	time.Sleep(time.Second)
	if err := syscall.Kill(sb.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	defer syscall.Kill(sb.PID(), syscall.SIGCONT)
	// Calls made while it is frozen.
	calls := map[string]func() error{
		"read_file of a small file": func() error { _, err := sb.ReadFile(ctx, "/etc/hostname", io.Discard, FileOptions{}); return err },
		"stat":                      func() error { _, err := sb.Stat(ctx, "/root", FileOptions{}); return err },
		"list_dir":                  func() error { _, err := sb.ListDir(ctx, "/root", FileOptions{}); return err },
		"make_dir":                  func() error { return sb.MakeDir(ctx, "/root/d", FileOptions{}) },
		"remove":                    func() error { return sb.Remove(ctx, "/root/sparse", FileOptions{}) },
	}
	for name, call := range calls {
		start(name, call)
	}
	// A caller's deadline ends a call sooner, as cancelled.
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, err := sb.Stat(short, "/root", FileOptions{})
	cancelShort()
	if !errors.Is(err, ErrCancelled) || time.Since(frozen) > 10*time.Second {
		t.Errorf("stat with a deadline of 2 s: %v after %v", err, time.Since(frozen))
	}
	// The stall bound, or the mux link's give-up on a write the frozen
	// port does not take (30 s), and a margin.
	bound := time.After(max(fileStallLimit, 30*time.Second) + 20*time.Second)
	for range len(transfers) + len(calls) {
		select {
		case o := <-results:
			took := time.Since(frozen)
			// "the agent made no progress", or sooner for a new
			// connection the frozen QEMU never takes ("dial tcp").
			if !errors.Is(o.err, ErrTransport) {
				t.Errorf("%s on a frozen QEMU: %v after %v, want a transport error", o.name, o.err, took)
			} else {
				t.Logf("%s: %v after %v", o.name, o.err, took)
			}
		case <-bound:
			t.Fatalf("file calls still waiting %v after QEMU was frozen", time.Since(frozen))
		}
	}
	syscall.Kill(sb.PID(), syscall.SIGCONT)
	if r := run(t, sb, ExecRequest{Command: "echo again"}); string(r.Stdout) != "again\n" {
		t.Fatalf("after SIGCONT: %+v", r)
	}
	if fi, err := sb.Stat(ctx, "/root/tree", FileOptions{}); err != nil || fi.Type != "dir" {
		t.Fatalf("a file call after SIGCONT: %v %v", fi, err)
	}
}

// Quicksand's agent (an image imported from Quicksand) has no file calls:
// each says so, naming the call and the image. They failed as "not found"
// with an empty message ("stat of /etc: ").
func TestFileCallsOnQuicksandsAgentSayWhy(t *testing.T) {
	sb := startSandbox(t, Config{Image: quicksandAlpine(t)})
	ctx := context.Background()
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("x"), 0o644)
	calls := map[string]func() error{
		"stat of /etc":     func() error { _, err := sb.Stat(ctx, "/etc", FileOptions{}); return err },
		"reading /etc/hos": func() error { _, err := sb.ReadFile(ctx, "/etc/hostname", io.Discard, FileOptions{}); return err },
		"writing /tmp/x":   func() error { _, err := sb.WriteFile(ctx, "/tmp/x", strings.NewReader("x"), FileOptions{}); return err },
		"listing /":        func() error { _, err := sb.ListDir(ctx, "/", FileOptions{}); return err },
		"making the folde": func() error { return sb.MakeDir(ctx, "/tmp/d", FileOptions{Parents: true}) },
		"uploading":        func() error { return sb.Upload(ctx, filepath.Join(host, "f"), "/tmp/f", FileOptions{}) },
		"downloading":      func() error { return sb.Download(ctx, "/etc/hostname", filepath.Join(host, "x"), FileOptions{}) },
	}
	for what, call := range calls {
		err := call()
		if !errors.Is(err, ErrBadRequest) || !strings.HasPrefix(err.Error(), what) || !strings.Contains(err.Error(), "Quicksand's agent") {
			t.Errorf("%s: %q, want a bad request that says the image's agent has no file calls", what, err)
		}
	}
	if r := run(t, sb, ExecRequest{Command: "echo still"}); string(r.Stdout) != "still\n" {
		t.Errorf("execute after: %+v", r)
	}
}
