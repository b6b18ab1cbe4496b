package engine

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// hostGot checks with Lstat on the host that the guest's file belongs to
// this process's user and group, has neither setuid nor setgid, and has the
// permissions perm.
func hostGot(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%s: %v", filepath.Base(path), err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		t.Errorf("%s is %v on the host: setuid or setgid from the guest", filepath.Base(path), fi.Mode())
	} else if fi.Mode().Perm() != perm {
		t.Errorf("%s is %v on the host, want %v", filepath.Base(path), fi.Mode(), perm)
	}
	if int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
		t.Errorf("%s belongs to %d:%d on the host, want the process's %d:%d", filepath.Base(path), st.Uid, st.Gid, os.Geteuid(), os.Getegid())
	}
}

// Root in the guest plants, in a read-write shared folder, what a local
// user of the host could use to become root (the caller runs as root, as
// in CI): a setuid copy of a shell given to root, one given to another
// user, setgid folders, device nodes, a file capability, and its own
// program in a setuid file the host keeps there. The host checks what it
// got with Lstat: nothing the guest made is setuid, setgid, a device, or
// anyone's but the process's. Ordinary use still works, and root's tools
// that set owners (cp -a, chown) do not fail.
func TestGuestRootPlantsNoPrivilegeThroughAShare(t *testing.T) {
	dir := t.TempDir()
	host := func(name string) string { return filepath.Join(dir, name) }
	for _, name := range []string{"host-suid", "host-plain"} {
		os.WriteFile(host(name), []byte("#!/bin/sh\necho host\n"), 0o755)
	}
	if err := unix.Chmod(host("host-suid"), 0o4755); err != nil {
		t.Fatal(err)
	}
	sb := startSandbox(t, Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}})

	// The attack of issue 33, word for word, then with another owner.
	// chown is answered with success (and not applied), so each line runs
	// to its end.
	mustSh(t, sb, "cp /bin/bash /data/rootsh && chown 0:0 /data/rootsh && chmod 4755 /data/rootsh")
	mustSh(t, sb, "cp /bin/bash /data/usersh && chown 1234:1234 /data/usersh && chmod 6755 /data/usersh")
	mustSh(t, sb, "mkdir /data/sgid && chmod g+s /data/sgid && mkdir -m 2775 /data/sgid2 && mkdir /data/sgid2/sub")
	// cp -a of the guest's own setuid program: it must work, and arrive
	// without the bit.
	src := strings.TrimSpace(mustSh(t, sb, "find /usr/bin -perm -4000 -type f | head -1"))
	if out := mustSh(t, sb, "stat -c %a "+src+" && cp -a "+src+" /data/cp-a"); !strings.HasPrefix(out, "4") {
		t.Fatalf("%s is %s in the guest, not setuid", src, out)
	}
	// A setuid file the host keeps there: the guest writes its own
	// program into it; a plain one it chmods setuid.
	mustSh(t, sb, "cat /bin/bash > /data/host-suid && chmod 4755 /data/host-plain")
	// Devices, a hard link to a setuid program of the guest, a file
	// capability: all refused.
	for _, c := range []string{
		"mknod /data/mem c 1 1",
		"mknod /data/null c 1 3",
		"mknod /data/disk b 254 0",
		"ln " + src + " /data/hard",
		`python3 -c "import os; os.setxattr('/data/rootsh', 'security.capability', bytes.fromhex('01000002ffffffff000000000000000000000000'))"`,
	} {
		if out, code := sh(t, sb, c); code == 0 {
			t.Errorf("%s succeeded: %s", c, out)
		}
	}

	hostGot(t, host("rootsh"), 0o755)
	hostGot(t, host("usersh"), 0o755)
	hostGot(t, host("sgid"), 0o755)
	hostGot(t, host("sgid2"), 0o775)
	hostGot(t, host("sgid2/sub"), 0o755)
	hostGot(t, host("cp-a"), 0o755)
	hostGot(t, host("host-suid"), 0o755)
	hostGot(t, host("host-plain"), 0o755)
	for _, name := range []string{"mem", "null", "disk", "hard"} {
		if fi, err := os.Lstat(host(name)); err == nil {
			t.Errorf("%s is on the host (%v)", name, fi.Mode())
		}
	}
	if n, err := unix.Lgetxattr(host("rootsh"), "security.capability", nil); err == nil {
		t.Errorf("rootsh has a file capability of %d bytes on the host", n)
	}

	// Ordinary use: write, chmod, mkdir, as before.
	out := mustSh(t, sb, "echo hi > /data/plain && chmod 0755 /data/plain && chmod 0640 /data/host-plain && mkdir -p /data/dir/a/b && stat -c %a /data/plain")
	if out != "755\n" {
		t.Errorf("the guest sees mode %q, want 755", out)
	}
	if b, err := os.ReadFile(host("plain")); err != nil || string(b) != "hi\n" {
		t.Errorf("the host reads %q, %v", b, err)
	}
	hostGot(t, host("plain"), 0o755)
	hostGot(t, host("host-plain"), 0o640)
	hostGot(t, host("dir/a/b"), 0o755)
}
