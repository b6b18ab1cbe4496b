package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sh runs a command in the guest and returns its output, stdout then
// stderr, and exit code.
func sh(t *testing.T, sb *Sandbox, command string) (string, int) {
	t.Helper()
	r := run(t, sb, ExecRequest{Command: command, Timeout: 30 * time.Second})
	return string(r.Stdout) + string(r.Stderr), r.ExitCode
}

func mustSh(t *testing.T, sb *Sandbox, command string) string {
	t.Helper()
	out, code := sh(t, sb, command)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", command, code, out)
	}
	return out
}

// Mounts made at start (a warm start), read-write and read-only, seen from
// both sides.
func TestMountsAtStartSeenFromBothSides(t *testing.T) {
	rw, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(rw, "from-host"), []byte("hello guest"), 0o640)
	os.WriteFile(filepath.Join(ro, "keep"), []byte("read me"), 0o644)
	sb := startSandbox(t, Config{Mounts: []Mount{
		{HostPath: rw, GuestPath: "/mnt/rw"},
		{HostPath: ro, GuestPath: "/mnt/ro/", ReadOnly: true},
	}})
	if !sb.BootTiming().Warm {
		t.Fatal("the sandbox was not warm-started")
	}
	got := sb.ActiveMounts()
	if len(got) != 2 || got[0].GuestPath != "/mnt/ro" || !got[0].ReadOnly || got[1].GuestPath != "/mnt/rw" || got[1].ReadOnly {
		t.Fatalf("active mounts %+v", got)
	}
	if out := mustSh(t, sb, "cat /mnt/rw/from-host; stat -c %a /mnt/rw/from-host"); out != "hello guest640\n" {
		t.Fatalf("the guest reads %q", out)
	}
	mustSh(t, sb, "printf 'hello host' > /mnt/rw/from-guest && chmod 600 /mnt/rw/from-guest && mkdir -p /mnt/rw/a/b && ln -s from-guest /mnt/rw/link && mv /mnt/rw/from-host /mnt/rw/a/b/moved")
	if b, err := os.ReadFile(filepath.Join(rw, "from-guest")); err != nil || string(b) != "hello host" {
		t.Fatalf("the host reads %q, %v", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(rw, "from-guest")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if target, _ := os.Readlink(filepath.Join(rw, "link")); target != "from-guest" {
		t.Fatalf("link target %q", target)
	}
	if _, err := os.Stat(filepath.Join(rw, "a/b/moved")); err != nil {
		t.Fatal(err)
	}
	// A change on the host is seen at once (no cache to go stale).
	os.WriteFile(filepath.Join(rw, "later"), []byte("v2"), 0o644)
	if out := mustSh(t, sb, "cat /mnt/rw/later"); out != "v2" {
		t.Fatalf("the guest reads %q", out)
	}
	// Read-only: read works, no change does, even as root, even after the
	// guest remounts read-write: the host refuses.
	if out := mustSh(t, sb, "cat /mnt/ro/keep"); out != "read me" {
		t.Fatalf("read-only mount reads %q", out)
	}
	for _, c := range []string{"touch /mnt/ro/new", "echo x > /mnt/ro/keep", "rm /mnt/ro/keep", "mkdir /mnt/ro/d", "chmod 777 /mnt/ro/keep", "mv /mnt/ro/keep /mnt/ro/moved"} {
		if out, code := sh(t, sb, c); code == 0 {
			t.Errorf("%s on a read-only mount succeeded: %s", c, out)
		}
	}
	// The remount itself must work, or the write below tries nothing new.
	if out, code := sh(t, sb, "mount -o remount,rw /mnt/ro && grep ' /mnt/ro ' /proc/mounts"); code != 0 || !strings.Contains(out, " rw,") && !strings.Contains(out, " rw ") {
		t.Fatalf("the guest could not remount read-write (%d): %s", code, out)
	}
	if out, code := sh(t, sb, "echo x > /mnt/ro/keep"); code == 0 {
		t.Errorf("after remounting read-write the guest wrote: %s", out)
	} else {
		t.Logf("(the refusal said: %s)", out)
	}
	if b, _ := os.ReadFile(filepath.Join(ro, "keep")); string(b) != "read me" {
		t.Fatalf("the read-only folder's file is now %q", b)
	}
	if entries, _ := os.ReadDir(ro); len(entries) != 1 {
		t.Fatalf("the read-only folder holds %d entries", len(entries))
	}
}

// A hostile guest tries every way out of a shared folder; nothing outside
// it is read or changed on the host.
func TestMountEscapesFail(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "host-secret")
	os.WriteFile(secret, []byte("HOST-SECRET"), 0o644)
	dir := filepath.Join(outside, "shared")
	os.Mkdir(dir, 0o755)
	os.Symlink(secret, filepath.Join(dir, "host-link"))
	os.Symlink(outside, filepath.Join(dir, "host-dir-link"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	sb := sharedSandbox(t)
	h, err := sb.Mount(context.Background(), Mount{HostPath: dir, GuestPath: "/mnt/escape"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Unmount(context.Background(), h)
	attempts := []string{
		"cat /mnt/escape/../host-secret",
		"cat /mnt/escape/host-link",
		"cat /mnt/escape/host-dir-link/host-secret",
		"ls /mnt/escape/host-dir-link/",
		"cd /mnt/escape && cd .. && cat host-secret",
		"cat /mnt/escape/*/host-secret",
		"grep -r HOST-SECRET /mnt/escape/",
		"timeout 10 cat /mnt/escape/fifo",
	}
	for _, c := range attempts {
		if out, _ := sh(t, sb, c); strings.Contains(out, "HOST-SECRET") {
			t.Errorf("%s read the host's file: %s", c, out)
		}
	}
	changes := []string{
		"echo pwned > /mnt/escape/host-link",
		"echo pwned > /mnt/escape/host-dir-link/planted",
		"mknod /mnt/escape/null c 1 3",
		"mknod /mnt/escape/disk b 254 0",
		"ln -s /mnt/escape /mnt/escape/loop && echo pwned > /mnt/escape/loop/../planted",
	}
	for _, c := range changes {
		sh(t, sb, c)
	}
	// A hard link to a guest file: the guest's own kernel refuses it
	// (another file system), and nothing appears on the host.
	if out, code := sh(t, sb, "ln /etc/hostname /mnt/escape/hard"); code == 0 {
		t.Errorf("a hard link to a guest file was made: %s", out)
	}
	if _, err := os.Lstat(filepath.Join(dir, "hard")); err == nil {
		t.Error("the hard link appeared on the host")
	}
	if b, _ := os.ReadFile(secret); string(b) != "HOST-SECRET" {
		t.Errorf("the host's file outside is now %q", b)
	}
	for _, name := range []string{"planted", "null", "disk"} {
		for _, d := range []string{outside, dir} {
			if fi, err := os.Lstat(filepath.Join(d, name)); err == nil && fi.Mode()&(os.ModeDevice|os.ModeCharDevice) != 0 || err == nil && d == outside {
				t.Errorf("%s appeared in %s (%v)", name, d, fi.Mode())
			}
		}
	}
	// A symlink made in the guest is a symlink on the host, as written; it
	// is the guest that resolves it, in the guest.
	mustSh(t, sb, "ln -s /etc/hostname /mnt/escape/guest-link")
	if out := mustSh(t, sb, "cat /mnt/escape/guest-link"); strings.TrimSpace(out) != "quicksand" {
		t.Errorf("the guest's link read %q, want the guest's hostname", out)
	}
	// The server is still there after all that.
	if out := mustSh(t, sb, "ls /mnt/escape | wc -l"); strings.TrimSpace(out) == "0" {
		t.Error("the mount lists nothing")
	}
}

// A mount into a warm-started sandbox, and its unmount: afterwards the
// guest reaches nothing of the folder, even through a file it held open.
func TestHotMountAndUnmount(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644)
	sb := sharedSandbox(t)
	if !sb.BootTiming().Warm {
		t.Fatal("the shared sandbox was not warm-started")
	}
	h, err := sb.Mount(ctx, Mount{HostPath: dir, GuestPath: "/mnt/hot/deep"})
	if err != nil {
		t.Fatal(err)
	}
	if out := mustSh(t, sb, "cat /mnt/hot/deep/f"); out != "data" {
		t.Fatalf("read %q", out)
	}
	if _, err := sb.Mount(ctx, Mount{HostPath: dir, GuestPath: "/mnt/hot/deep"}); KindOf(err) != KindBadRequest {
		t.Fatalf("a second mount at the same path: %v", err)
	}
	// A process that holds a file open in the folder, and sits in it.
	held := make(chan *ExecResult, 1)
	go func() {
		r, _ := sb.Execute(ctx, ExecRequest{Command: "cd /mnt/hot/deep && exec 3</mnt/hot/deep/f && sleep 3 && cat <&3; ls; echo done", Timeout: time.Minute})
		held <- r
	}()
	time.Sleep(time.Second)
	if err := sb.Unmount(ctx, h); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-held:
		if r == nil || strings.Contains(string(r.Stdout), "data") || !strings.Contains(string(r.Stdout), "done") {
			t.Fatalf("the process that held the folder: %+v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a process that held the folder hung after the unmount")
	}
	if len(sb.ActiveMounts()) != 0 {
		t.Fatalf("still active: %+v", sb.ActiveMounts())
	}
	if out, code := sh(t, sb, "cat /mnt/hot/deep/f"); code == 0 {
		t.Fatalf("after unmount the guest still reads %q", out)
	}
	if err := sb.Unmount(ctx, h); KindOf(err) != KindBadRequest {
		t.Fatalf("a second unmount: %v", err)
	}
	// Mounting again at the same place works.
	h2, err := sb.Mount(ctx, Mount{HostPath: dir, GuestPath: "/mnt/hot/deep", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Unmount(ctx, h2)
	if out := mustSh(t, sb, "cat /mnt/hot/deep/f"); out != "data" {
		t.Fatalf("read %q after mounting again", out)
	}
}

func TestMountBadInput(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	cases := []struct {
		m    Mount
		kind Kind
		says string
	}{
		{Mount{HostPath: "/no/such/folder", GuestPath: "/mnt/x"}, KindNotFound, "/no/such/folder"},
		{Mount{HostPath: file, GuestPath: "/mnt/x"}, KindInvalidConfig, "not a folder"},
		{Mount{HostPath: t.TempDir(), GuestPath: "mnt/x"}, KindInvalidConfig, "absolute"},
		{Mount{HostPath: t.TempDir(), GuestPath: "/"}, KindInvalidConfig, "root"},
		{Mount{HostPath: t.TempDir(), GuestPath: "/mnt/\x00"}, KindInvalidConfig, "NUL"},
		{Mount{HostPath: t.TempDir(), GuestPath: "/etc/hostname"}, KindBadRequest, "not a folder"},
	}
	for _, c := range cases {
		_, err := sb.Mount(ctx, c.m)
		if KindOf(err) != c.kind || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Mount(%+v): %v, want kind %v saying %q", c.m, err, c.kind, c.says)
		}
	}
	if err := (Config{Mounts: []Mount{{HostPath: "/no/such", GuestPath: "/x"}}}).Validate(); KindOf(err) != KindInvalidConfig || !strings.Contains(err.Error(), "mounts[0]") {
		t.Errorf("Validate: %v", err)
	}
	if len(sb.ActiveMounts()) != 0 {
		t.Errorf("a failed mount stayed: %+v", sb.ActiveMounts())
	}
}

// A revert brings back the mounts of its checkpoint, working; a mount made
// after it is gone; a save with mounts is refused before anything is done.
func TestMountsAcrossCheckpointRevertAndSave(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	sb := startSandbox(t, Config{})
	ha, err := sb.Mount(ctx, Mount{HostPath: a, GuestPath: "/mnt/a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Checkpoint(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	hb, err := sb.Mount(ctx, Mount{HostPath: b, GuestPath: "/mnt/b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Revert(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if got := sb.ActiveMounts(); len(got) != 1 || got[0] != ha {
		t.Fatalf("after the revert: %+v, want only %+v", got, ha)
	}
	os.WriteFile(filepath.Join(a, "after"), []byte("after revert"), 0o644)
	if out := mustSh(t, sb, "cat /mnt/a/after"); out != "after revert" {
		t.Fatalf("the checkpoint's mount reads %q", out)
	}
	mustSh(t, sb, "echo back > /mnt/a/from-guest")
	if bs, _ := os.ReadFile(filepath.Join(a, "from-guest")); string(bs) != "back\n" {
		t.Fatalf("the host reads %q", bs)
	}
	if out, code := sh(t, sb, "mountpoint -q /mnt/b || echo not-mounted"); code != 0 || !strings.Contains(out, "not-mounted") {
		t.Fatalf("/mnt/b after the revert: %q", out)
	}
	if err := sb.Unmount(ctx, hb); KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "revert") {
		t.Fatalf("unmounting a mount the revert removed: %v", err)
	}
	saveDir := filepath.Join(t.TempDir(), "save")
	if _, err := sb.Save(ctx, saveDir); KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "/mnt/a") {
		t.Fatalf("save with a mount: %v", err)
	}
	if _, err := os.Stat(saveDir); err == nil {
		t.Fatal("a refused save left a folder")
	}
	if err := sb.Unmount(ctx, ha); err != nil {
		t.Fatal(err)
	}
}
