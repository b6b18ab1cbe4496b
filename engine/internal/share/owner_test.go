package share

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// hostSees checks on the host that path belongs to this process's user and
// group, has neither setuid nor setgid, and has the permissions perm.
func hostSees(t *testing.T, path string, perm uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Errorf("%s: %v", filepath.Base(path), err)
		return
	}
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		t.Errorf("%s: mode %o on the host: setuid or setgid kept", filepath.Base(path), st.Mode&0o7777)
	} else if st.Mode&0o7777 != perm {
		t.Errorf("%s: mode %o on the host, want %o", filepath.Base(path), st.Mode&0o7777, perm)
	}
	if int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
		t.Errorf("%s: owned by %d:%d on the host, want the process's %d:%d", filepath.Base(path), st.Uid, st.Gid, os.Geteuid(), os.Getegid())
	}
}

// TestGuestRootPlantsNoPrivilege plays root in the guest planting a setuid
// or setgid file, folder or device for a local user of the host to use:
// whatever it asks, what it makes belongs to the host process's user with
// no setuid or setgid bit, and no owner change is applied (the tests often
// run as root, which could make every one of them). An owner change is
// answered with success, so that cp -a and tar as root in the guest work.
func TestGuestRootPlantsNoPrivilege(t *testing.T) {
	dir := t.TempDir()
	g := newRawGuest(t, dir)
	host := func(name string) string { return filepath.Join(dir, name) }
	const f, d = 10, 11

	// The attack of issue 33: a copy of a shell, given to root, setuid.
	g.walk(rootFid, f)
	if err := g.create(f, "rootsh", unix.O_RDWR, 0o755, 0); err != nil {
		t.Fatal(err)
	}
	if err := g.write(f, "#!/bin/sh\n"); err != nil {
		t.Fatal(err)
	}
	if err := g.chown(f, 0, 0); err != nil {
		t.Errorf("chown 0:0: %v, want it ignored", err)
	}
	if err := g.chmod(f, 0o4755); err != nil {
		t.Errorf("chmod 4755: %v", err)
	}
	hostSees(t, host("rootsh"), 0o755)
	if err := g.chown(f, 1234, 1234); err != nil {
		t.Errorf("chown 1234:1234: %v", err)
	}
	g.chmod(f, 0o6755)
	hostSees(t, host("rootsh"), 0o755)
	// Owner and mode in one setattr, as `install -o` may send.
	g.setattr(f, attrMode|attrUID|attrGID, 0o6711, 1234, 0, 0)
	hostSees(t, host("rootsh"), 0o711)
	g.clunk(f)

	// Made with the bits at once.
	g.walk(rootFid, f)
	if err := g.create(f, "made-suid", unix.O_WRONLY, 0o6755, 1234); err != nil {
		t.Fatal(err)
	}
	g.clunk(f)
	hostSees(t, host("made-suid"), 0o755)
	if err := g.mkdir(rootFid, "sgid-dir", 0o2775, 1234); err != nil {
		t.Fatal(err)
	}
	hostSees(t, host("sgid-dir"), 0o775)
	g.walk(rootFid, d, "sgid-dir")
	g.chmod(d, 0o2777)
	g.chown(d, 1234, 1234)
	hostSees(t, host("sgid-dir"), 0o777)
	if err := g.mknod(rootFid, "node-suid", unix.S_IFREG|0o6777, 0, 0, 1234); err != nil {
		t.Fatal(err)
	}
	hostSees(t, host("node-suid"), 0o777) // the guest applied its umask: the host's must not apply again
	if err := g.mknod(rootFid, "fifo", unix.S_IFIFO|0o6640, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	hostSees(t, host("fifo"), 0o640)
	if err := g.symlink(rootFid, "link", "rootsh", 1234); err != nil {
		t.Fatal(err)
	}
	hostSees(t, host("link"), 0o777)
	g.walk(rootFid, f, "link")
	g.chown(f, 1234, 1234)
	g.clunk(f)
	hostSees(t, host("link"), 0o777)

	// The shared folder itself.
	g.chown(rootFid, 1234, 1234)
	g.chmod(rootFid, 0o2755)
	hostSees(t, dir, 0o755)

	// A folder the host made setgid passes its setgid on to a new folder
	// (Linux does so): the guest's folders must not keep it.
	g.clunk(d)
	os.Mkdir(host("host-sgid"), 0o755)
	unix.Chmod(host("host-sgid"), 0o2775) // os.Chmod would drop the bit: 0o2000 is not os.ModeSetgid
	g.walk(rootFid, d, "host-sgid")
	if err := g.mkdir(d, "sub", 0o755, 0); err != nil {
		t.Fatal(err)
	}
	hostSees(t, host("host-sgid/sub"), 0o755)
	if err := g.create(d, "file", unix.O_WRONLY, 0o2755, 0); err != nil {
		t.Fatal(err)
	}
	hostSees(t, host("host-sgid/file"), 0o755)

	// Devices are never made, whatever numbers or bits.
	for _, m := range []uint32{unix.S_IFCHR | 0o666, unix.S_IFBLK | 0o660, unix.S_IFCHR | 0o4666, 0o666} {
		if err := g.mknod(rootFid, "dev", m, 1, 3, 0); err != unix.EPERM {
			t.Errorf("mknod %o: %v, want EPERM", m, err)
		}
	}
	if _, err := os.Lstat(host("dev")); err == nil {
		t.Error("a device node appeared on the host")
	}
}

// TestGuestCannotAddSpecialBitsToHostFiles: a setuid file the host keeps in
// a shared folder (its owner root, as when the caller is root) loses its
// setuid and setgid when the guest writes, truncates or chmods it, as Linux
// does for a writer without CAP_FSETID: otherwise guest root could put its
// own program in it. A chmod never adds the bits to a host file.
func TestGuestCannotAddSpecialBitsToHostFiles(t *testing.T) {
	dir := t.TempDir()
	host := func(name string) string { return filepath.Join(dir, name) }
	for _, name := range []string{"plain", "suid-write", "suid-trunc", "suid-open-trunc", "suid-chmod", "suid-target"} {
		os.WriteFile(host(name), []byte("host program"), 0o755)
	}
	for _, name := range []string{"suid-write", "suid-trunc", "suid-open-trunc", "suid-chmod", "suid-target"} {
		unix.Chmod(host(name), 0o6755)
	}
	g := newRawGuest(t, dir)
	const f = 10
	step := func(name string, do func() error) {
		t.Helper()
		if err := g.walk(rootFid, f, name); err != nil {
			t.Fatal(err)
		}
		defer g.clunk(f)
		if err := do(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	step("plain", func() error { return g.chmod(f, 0o4755) })
	hostSees(t, host("plain"), 0o755)
	step("suid-chmod", func() error { return g.chmod(f, 0o711) })
	hostSees(t, host("suid-chmod"), 0o711)
	step("suid-write", func() error {
		if err := g.open(f, unix.O_WRONLY); err != nil {
			return err
		}
		return g.write(f, "guest program")
	})
	hostSees(t, host("suid-write"), 0o755)
	step("suid-trunc", func() error { return g.setattr(f, attrSize, 0, 0, 0, 0) })
	hostSees(t, host("suid-trunc"), 0o755)
	step("suid-open-trunc", func() error { return g.open(f, unix.O_RDONLY|openTruncate) })
	hostSees(t, host("suid-open-trunc"), 0o755)

	// A rename over a host setuid file leaves the guest's file, as made.
	g.walk(rootFid, f)
	if err := g.create(f, "mine", unix.O_WRONLY, 0o700, 0); err != nil {
		t.Fatal(err)
	}
	g.clunk(f)
	if err := g.rename(rootFid, "mine", rootFid, "suid-target"); err != nil {
		t.Fatal(err)
	}
	hostSees(t, host("suid-target"), 0o700)
}

// TestNoHardLinkToASetuidFileOutside: a setuid file beside the shared
// folder cannot be linked into it: the guest can name nothing outside, and
// a link to a symlink that points there is a link to the symlink.
func TestNoHardLinkToASetuidFileOutside(t *testing.T) {
	outside := t.TempDir()
	suid := filepath.Join(outside, "suid")
	os.WriteFile(suid, []byte("host program"), 0o755)
	unix.Chmod(suid, 0o4755)
	dir := filepath.Join(outside, "shared")
	os.Mkdir(dir, 0o755)
	os.Symlink(suid, filepath.Join(dir, "to-suid"))
	os.Symlink(outside, filepath.Join(dir, "up"))
	g := newRawGuest(t, dir)
	const f = 10

	if err := g.walk(rootFid, f, "to-suid"); err != nil {
		t.Fatal(err)
	}
	if err := g.link(rootFid, f, "hard"); err == nil {
		if fi, err := os.Lstat(filepath.Join(dir, "hard")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("a link to the symlink made %v (%v), want a symlink", fi.Mode(), err)
		}
	}
	g.clunk(f)
	for _, names := range [][]string{{"up", "suid"}, {"..", "suid"}, {"to-suid", "."}, {"to-suid", ".."}} {
		if err := g.walk(rootFid, f, names...); err == nil {
			if err := g.link(rootFid, f, "hard2"); err == nil {
				t.Errorf("linked %v into the folder", names)
			}
			g.clunk(f)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(suid, &st); err != nil || st.Nlink != 1 || st.Mode&0o7777 != 0o4755 {
		t.Errorf("the setuid file outside: %d links, mode %o (%v), want 1 and 4755", st.Nlink, st.Mode&0o7777, err)
	}
}

// TestNoExtendedAttributes: file capabilities (security.capability) and
// ACLs are extended attributes; the guest can set none on the host.
func TestNoExtendedAttributes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o755)
	g := newRawGuest(t, dir)
	const f, x = 10, 11
	g.walk(rootFid, f, "f")
	const txattrcreate = 32
	if _, err := g.call(txattrcreate, uint32(f), "security.capability", uint64(20), uint32(0)); err == nil {
		t.Error("xattrcreate of security.capability accepted")
	}
	if _, err := g.call(txattrwalk, uint32(f), uint32(x), "security.capability"); err == nil {
		t.Error("xattrwalk accepted")
	}
	if sz, err := unix.Lgetxattr(filepath.Join(dir, "f"), "security.capability", nil); err == nil {
		t.Errorf("the host file has a capability of %d bytes", sz)
	}
}
