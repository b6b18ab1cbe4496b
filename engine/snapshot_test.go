package engine

// Warm start, checkpoint/revert and save/resume on real VMs.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/qemu"
)

func TestWarmStartedSandboxesAreTheirOwn(t *testing.T) {
	dir := t.TempDir()
	a := startSandbox(t, Config{TemplateDir: dir})
	b := startSandbox(t, Config{TemplateDir: dir})
	if !a.BootTiming().Warm || !b.BootTiming().Warm {
		t.Fatalf("not warm: %+v %+v", a.BootTiming(), b.BootTiming())
	}
	if a.Token() == b.Token() {
		t.Fatal("two sandboxes share a token")
	}
	probe := "cat /proc/sys/kernel/random/uuid; head -c 16 /dev/urandom | od -An -tx1; date +%s"
	ra, rb := run(t, a, ExecRequest{Command: probe}), run(t, b, ExecRequest{Command: probe})
	la, lb := strings.Split(string(ra.Stdout), "\n"), strings.Split(string(rb.Stdout), "\n")
	if la[0] == lb[0] || la[1] == lb[1] {
		t.Fatalf("same randomness:\n%s\n%s", ra.Stdout, rb.Stdout)
	}
	for _, l := range [][]string{la, lb} {
		guest, _ := strconv.ParseInt(strings.TrimSpace(l[2]), 10, 64)
		if d := time.Now().Unix() - guest; d < -2 || d > 5 {
			t.Fatalf("guest clock off by %d s", d)
		}
	}
	run(t, a, ExecRequest{Command: "echo mine > /root/a-only"})
	if r := run(t, b, ExecRequest{Command: "cat /root/a-only 2>/dev/null || echo absent"}); string(r.Stdout) != "absent\n" {
		t.Fatalf("b sees a's file: %q", r.Stdout)
	}
	// The template keeps no token (its agent was sealed: seal.go), and
	// its metadata is owner-only.
	tpl := templatesIn(t, dir)[0]
	raw, err := os.ReadFile(filepath.Join(tpl.dir, templateMeta))
	if err != nil || strings.Contains(string(raw), `"token"`) {
		t.Fatalf("the template's metadata keeps a token (%v): %s", err, raw)
	}
	fi, err := os.Stat(filepath.Join(tpl.dir, templateMeta))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the template's metadata is not owner-only: %v %v", fi.Mode(), err)
	}
	// The RAM file's zero pages were given back (sparse.go): the clones
	// above ran from it all the same.
	ram := filepath.Join(tpl.dir, templateRAM)
	size, onDisk := fileSize(ram), allocatedBytes(t, ram)
	t.Logf("template RAM: %d MiB, %d MiB of it on disk", size>>20, onDisk>>20)
	if onDisk > size/2 {
		t.Fatalf("the template's RAM file keeps %d of its %d MiB on disk: its zero pages were not given back", onDisk>>20, size>>20)
	}
}

func templatesIn(t *testing.T, dir string) []*template {
	t.Helper()
	metas, _ := filepath.Glob(filepath.Join(dir, "*", templateMeta))
	var out []*template
	for _, m := range metas {
		raw, _ := os.ReadFile(m)
		tpl := &template{dir: filepath.Dir(m)}
		if err := json.Unmarshal(raw, tpl); err != nil {
			t.Fatal(err)
		}
		out = append(out, tpl)
	}
	if len(out) == 0 {
		t.Fatalf("no template in %s", dir)
	}
	return out
}

// A template any of whose files changed in place (same size) is rebuilt,
// never resumed.
func TestCorruptTemplateIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	startSandbox(t, Config{TemplateDir: dir}).Stop(context.Background())
	for _, name := range []string{templateState, templateRAM, templateDisk} {
		tpl := templatesIn(t, dir)[0]
		f, err := os.OpenFile(filepath.Join(tpl.dir, name), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		f.WriteAt(bytes.Repeat([]byte{0xAA}, 64), fi.Size()/2)
		f.Close()
		sb := startSandbox(t, Config{TemplateDir: dir})
		if r := run(t, sb, ExecRequest{Command: "echo fine"}); string(r.Stdout) != "fine\n" {
			t.Fatalf("%s: %+v", name, r)
		}
		sb.Stop(context.Background())
		rebuilt := templatesIn(t, dir)[0]
		if !rebuilt.Created.After(tpl.Created) || rebuilt.StateSHA256 == tpl.StateSHA256 {
			t.Fatalf("a template with a changed %s was resumed instead of rebuilt", name)
		}
	}
}

func TestCheckpointAndRevert(t *testing.T) {
	sb := startSandbox(t, Config{})
	run(t, sb, ExecRequest{Command: "echo kept > /root/file; (sleep 777 >/dev/null 2>&1 &)"})
	if err := sb.Checkpoint(context.Background(), "before-rm"); err != nil {
		t.Fatal(err)
	}
	run(t, sb, ExecRequest{Command: "rm /root/file; pkill -f 'slee[p] 777'; echo new > /root/later"})

	// A call in flight during the revert fails cleanly.
	inflight := make(chan error, 1)
	go func() {
		_, err := sb.Execute(context.Background(), ExecRequest{Command: "sleep 60", Timeout: 2 * time.Minute})
		inflight <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := sb.Revert(context.Background(), "before-rm"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-inflight:
		if !errors.Is(err, ErrCancelled) || !strings.Contains(err.Error(), "reverted") {
			t.Fatalf("in-flight call: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight call did not end at the revert")
	}
	r := run(t, sb, ExecRequest{Command: "cat /root/file; ls /root/later 2>/dev/null || echo no-later; pgrep -f 'slee[p] 777' >/dev/null && echo running"})
	if string(r.Stdout) != "kept\nno-later\nrunning\n" {
		t.Fatalf("after revert: %q", r.Stdout)
	}
	if err := sb.Revert(context.Background(), "never-taken"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unknown tag: %v", err)
	}
	if err := sb.Checkpoint(context.Background(), "bad tag"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad tag: %v", err)
	}
	sb.Stop(context.Background())
	if err := sb.Checkpoint(context.Background(), "late"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("checkpoint after stop: %v", err)
	}
}

// TestSaveAndResumeInAnotherProcess saves a sandbox, stops it, and resumes
// the save in a new process (this test binary again, running
// TestHelperResumeSave).
func TestSaveAndResumeInAnotherProcess(t *testing.T) {
	sb := startSandbox(t, Config{})
	run(t, sb, ExecRequest{Command: "echo one > /root/one; (sleep 888 >/dev/null 2>&1 &)"})
	dir := filepath.Join(t.TempDir(), "saved")
	got, err := sb.Save(context.Background(), dir)
	if err != nil || got != dir {
		t.Fatalf("save: %q %v", got, err)
	}
	run(t, sb, ExecRequest{Command: "echo two > /root/two"}) // still running after the save
	sb.Stop(context.Background())
	if _, err := sb.Save(context.Background(), dir+"-again"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("save after stop: %v", err)
	}
	if _, err := ValidateSave(dir); err != nil {
		t.Fatalf("validate: %v", err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperResumeSave$", "-test.v")
	cmd.Env = append(os.Environ(), "QUICKSAND_TEST_SAVE="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "RESUMED one|running") {
		t.Fatalf("resume in a new process: %v\n%s", err, out)
	}

	// A damaged save (its state or its disk) is refused, never resumed.
	for _, name := range []string{saveDisk, saveState} {
		path := filepath.Join(dir, name)
		raw, _ := os.ReadFile(path)
		raw[len(raw)/2] ^= 0xff
		os.WriteFile(path, raw, 0o600)
		if _, err := ValidateSave(dir); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("validate a save with a corrupt %s: %v", name, err)
		}
		if _, err := Start(context.Background(), Config{Image: dir}); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("start a save with a corrupt %s: %v", name, err)
		}
	}
}

func TestHelperResumeSave(t *testing.T) {
	dir := os.Getenv("QUICKSAND_TEST_SAVE")
	if dir == "" {
		t.Skip("run by TestSaveAndResumeInAnotherProcess")
	}
	sb := startSandbox(t, Config{Image: dir})
	r := run(t, sb, ExecRequest{Command: "cat /root/one; cat /root/two 2>/dev/null; pgrep -f 'slee[p] 888' >/dev/null && echo running"})
	t.Logf("RESUMED %s", strings.ReplaceAll(strings.TrimSpace(string(r.Stdout)), "\n", "|"))
}

// A checkpoint taken before a save cannot be reverted to (the save moved
// the disk on to a new overlay without it): the revert is refused before
// anything is touched, and the sandbox goes on as it was. A revert that
// QEMU itself fails leaves the VM running as it was too, and a checkpoint
// taken again after the save reverts.
func TestRevertAfterSaveAndFailedRevert(t *testing.T) {
	sb := startSandbox(t, Config{})
	ctx := context.Background()
	run(t, sb, ExecRequest{Command: "echo one > /root/f"})
	if err := sb.Checkpoint(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Save(ctx, filepath.Join(t.TempDir(), "s")); err != nil {
		t.Fatal(err)
	}
	run(t, sb, ExecRequest{Command: "echo two > /root/f"})
	err := sb.Revert(ctx, "c1")
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "before a save") {
		t.Fatalf("revert to a checkpoint from before the save: %v", err)
	}
	if r := run(t, sb, ExecRequest{Command: "cat /root/f"}); string(r.Stdout) != "two\n" {
		t.Fatalf("after the refused revert: %q", r.Stdout)
	}

	if err := sb.Checkpoint(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	// Take the checkpoint away behind the engine's back: QEMU's loadvm fails.
	if out, err := sb.qmp.HMP(ctx, "delvm c2"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("delvm: %q %v", out, err)
	}
	if err := sb.Revert(ctx, "c2"); !errors.Is(err, ErrSnapshot) {
		t.Fatalf("a revert QEMU fails: %v", err)
	}
	if r := run(t, sb, ExecRequest{Command: "cat /root/f"}); string(r.Stdout) != "two\n" {
		t.Fatalf("after the failed revert: %q", r.Stdout)
	}

	if err := sb.Checkpoint(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	run(t, sb, ExecRequest{Command: "echo three > /root/f"})
	if err := sb.Revert(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if r := run(t, sb, ExecRequest{Command: "cat /root/f"}); string(r.Stdout) != "two\n" {
		t.Fatalf("after reverting to the new c1: %q", r.Stdout)
	}
}

// Template builds and saves that a killed process left half-written are
// removed by the next build or save; a young one (perhaps being set up by
// another process) and live ones are not.
func TestLeftoverBuildsAndSavesAreSwept(t *testing.T) {
	leftover := func(dir, name string, locked, old bool) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(p, 0o700)
		os.WriteFile(filepath.Join(p, "ram"), make([]byte, 1<<20), 0o600)
		if locked {
			os.WriteFile(filepath.Join(p, lockName), nil, 0o600) // nobody holds it
		}
		if old {
			ts := time.Now().Add(-2 * unlockedGrace)
			os.Chtimes(p, ts, ts)
		}
		return p
	}
	templates, saves := t.TempDir(), t.TempDir()
	stale := []string{
		leftover(templates, "0123.build-1", true, true),
		leftover(templates, "4567.build-2", false, true),
		leftover(saves, "old.saving-3", true, true),
	}
	young := []string{leftover(templates, "89ab.build-4", false, false), leftover(saves, "new.saving-5", false, false)}
	sb := startSandbox(t, Config{TemplateDir: templates})
	if _, err := sb.Save(context.Background(), filepath.Join(saves, "s")); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s was left: %v", p, err)
		}
	}
	for _, p := range young {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was swept: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(saves, "s", lockName)); !os.IsNotExist(err) {
		t.Errorf("the save kept its lock file: %v", err)
	}
}

// What the bindings' properties read (running, accelerator, pid, the
// output channel) answers at once during a checkpoint: it asks QEMU
// nothing (it used to wait behind the checkpoint on QMP).
func TestInfoDoesNotWaitForACheckpoint(t *testing.T) {
	sb := startSandbox(t, Config{})
	run(t, sb, ExecRequest{Command: "head -c 100000000 /dev/urandom > /root/big"}) // a checkpoint worth waiting for
	done := make(chan struct{})
	go func() {
		sb.Checkpoint(context.Background(), "c")
		close(done)
	}()
	time.Sleep(50 * time.Millisecond) // the checkpoint has QMP now
	select {
	case <-done:
		t.Fatal("the checkpoint ended before the properties could be read during it")
	default:
	}
	ok, err := sb.OutputChannel()
	running, accel, pid := sb.IsRunning(), sb.Accelerator(), sb.PID()
	select {
	case <-done:
		t.Fatal("reading the properties waited for the checkpoint")
	default:
	}
	if !ok || err != nil || !running || accel == "" || pid == 0 {
		t.Fatalf("during a checkpoint: channel %v %v, running %v, accel %q, pid %d", ok, err, running, accel, pid)
	}
	<-done
}

// A save made before guest announcements were turned off (its NIC offered
// them, and its guest took them up) has no no_guest_announce in its
// manifest, and still resumes: its NIC offers them again. With the flag
// (the NIC then offers none) its state does not load: the flag is what
// makes the difference. The old NIC is made with QEMU's -set.
func TestSavesFromBeforeAnnouncementsWereOffResume(t *testing.T) {
	const features = "cut -c22 /sys/class/net/eth0/device/features" // VIRTIO_NET_F_GUEST_ANNOUNCE, bit 21
	sb := startSandbox(t, Config{ColdBoot: true, ExtraQEMUArgs: []string{"-set", "device." + qemu.NICID + ".guest_announce=on"}})
	if got := strings.TrimSpace(mustSh(t, sb, features)); got != "1" {
		t.Fatalf("the NIC made like an old one does not offer guest announcements (bit 21: %q)", got)
	}
	dir := filepath.Join(t.TempDir(), "old")
	if _, err := sb.Save(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	sb.Stop(context.Background())
	manifest := filepath.Join(dir, "manifest.json")
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	save := m["save"].(map[string]any)
	save["no_guest_announce"] = true
	raw, _ = json.Marshal(m)
	os.WriteFile(manifest, raw, 0o644)
	if sb, err := Start(context.Background(), Config{Image: dir}); err == nil {
		sb.Stop(context.Background())
		t.Fatal("the old save resumed with a NIC that offers no announcements: this test shows nothing")
	} else if !strings.Contains(err.Error(), "loading its state") {
		t.Fatalf("the old save with a NIC that offers no announcements failed otherwise than in loading its state: %v", err)
	} else {
		t.Logf("as expected: %v", err)
	}
	delete(save, "no_guest_announce")
	raw, _ = json.Marshal(m)
	os.WriteFile(manifest, raw, 0o644)
	resumed := startSandbox(t, Config{Image: dir})
	if got := strings.TrimSpace(mustSh(t, resumed, features)); got != "1" {
		t.Errorf("the resumed old save's NIC: bit 21 is %q", got)
	}
}
