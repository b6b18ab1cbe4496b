package engine

// Templates: the first start of an image (for a given memory, CPU count,
// architecture, accelerator, QEMU and extra arguments) boots cold and keeps
// the booted VM as a template: its RAM in a file, its disk as a qcow2 file,
// and the rest of its state as a small migration stream. Later starts map
// the RAM file privately (pages shared with every other clone until
// written), put a fresh overlay over the disk, load the stream, and hand
// the agent a fresh token: a fraction of a second instead of a boot.
//
// A template's files never change once written (a private mapping of a
// file that changes underneath would see the change): they are written in
// a temporary folder, checked, and renamed into place. A template whose key
// or files no longer match is rebuilt, never resumed.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pkg/errors"
)

// templateFormat changes whenever what a template holds or how it is made
// changes, so old templates are rebuilt rather than misread.
const templateFormat = 9

const (
	// buildSuffix marks a template folder being built (locked while it is).
	buildSuffix   = ".build-"
	templateMeta  = "template.json"
	templateRAM   = "ram"
	templateDisk  = "disk.qcow2"
	templateState = "state"
	templateLog   = "console.log"
)

// template is a built template's metadata (template.json). Its agent was
// sealed before the VM was frozen (seal.go): the token it booted with
// opens no clone, so it is not kept.
type template struct {
	dir         string
	Key         string         `json:"key"`
	KeyParts    map[string]any `json:"key_parts"`
	GuestPort   int            `json:"guest_port"`
	Append      string         `json:"append"`
	MemoryMiB   int            `json:"memory_mib"`
	CPUs        int            `json:"cpus"`
	StateSHA256 string         `json:"state_sha256"`
	// Mux: the agent's mux link was up when the VM was frozen.
	Mux bool `json:"mux"`
	// Files are the template's big files as they were written (the state
	// is hashed as well): RAM and disk are too big to hash at each start.
	Files   map[string]fileStamp `json:"files"`
	Created time.Time            `json:"created"`
}

func (t *template) source() *snapshotSource {
	return &snapshotSource{
		what:      "template",
		statePath: filepath.Join(t.dir, templateState),
		diskPath:  filepath.Join(t.dir, templateDisk),
		ramFile:   filepath.Join(t.dir, templateRAM),
		console:   filepath.Join(t.dir, templateLog),
		sealed:    true, guestPort: t.GuestPort, append: t.Append,
		memoryMiB: t.MemoryMiB, cpus: t.CPUs, mux: t.Mux,
	}
}

type templateStore struct{ dir string }

// get returns a valid template for plan, building it first if needed. One
// build at a time per key, across goroutines and processes.
func (s templateStore) get(ctx context.Context, plan launchPlan) (*template, error) {
	key, parts, err := templateKey(plan)
	if err != nil {
		return nil, newError(KindBootFailed, err, "identifying the template")
	}
	if err := ensurePrivateDir(s.dir); err != nil {
		return nil, newError(KindBootFailed, err, "the template folder")
	}
	log := plan.cfg.Logger
	// Builds that killed processes left (each as big as the guest RAM it
	// had touched) go at every start, not only at the next build: a
	// template of other settings may never be built here again. A glob
	// and a lock test each: cheap.
	sweepStale(log, s.dir, "*"+buildSuffix+"*")
	dir := filepath.Join(s.dir, key[:32])
	t, why := loadTemplate(dir, key)
	if why == nil {
		return t, nil
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return nil, newError(KindCancelled, err, "waiting for another start to build the template")
	}
	defer unlock()
	if t, err := loadTemplate(dir, key); err == nil {
		return t, nil // built by whoever held the lock
	}
	// Again: a build that was under way while this start waited for the
	// lock may be one whose process was then killed.
	sweepStale(log, s.dir, "*"+buildSuffix+"*")
	os.RemoveAll(dir) // stale or broken
	log.Info("building a template (a cold boot, once per image and settings)", "template", dir, "why", why)
	began := time.Now()
	t, err = s.build(ctx, plan, dir, key, parts)
	if err == nil {
		log.Info("template built", "template", dir, "took", time.Since(began).Round(time.Millisecond))
	}
	return t, err
}

// discard removes a template that failed to resume.
func (s templateStore) discard(t *template) { os.RemoveAll(t.dir) }

// build boots the image cold with its RAM in a file, waits for the agent,
// and freezes the VM into dir.
func (s templateStore) build(ctx context.Context, plan launchPlan, dir, key string, parts map[string]any) (*template, error) {
	log := plan.cfg.Logger
	build, err := makeLockedDir(filepath.Dir(dir), filepath.Base(dir)+buildSuffix+"*")
	if err != nil {
		return nil, newError(KindBootFailed, err, "making the template folder")
	}
	defer build.remove() // nothing left once it was renamed
	tmp := build.path

	bp := plan
	bp.from = nil
	bp.cfg.PortForwards = nil
	bp.ramFile = filepath.Join(tmp, templateRAM)
	bp.overlayPath = filepath.Join(tmp, templateDisk)
	sb, err := launch(ctx, bp)
	if err != nil {
		return nil, err
	}
	defer sb.Stop(context.Background())
	if err := sb.prestartCode(ctx); err != nil {
		return nil, err
	}
	// Frozen with the link up, the agent sits in a read of the port, and a
	// clone's first call needs no network at all (muxlink.go).
	mux := sb.muxUp(ctx)
	sb.warmUpTemplate(ctx)
	if err := sb.stopForTemplate(ctx, filepath.Join(tmp, templateState)); err != nil {
		kind, msg := blameFullDisk(sb.hostFolders, KindBootFailed, "saving the template")
		return nil, &Error{Kind: kind, Msg: msg, Err: err}
	}
	bootLog, _ := sb.ConsoleLog()
	sb.Stop(ctx) // QEMU must be gone before anything maps the RAM file
	// Most of the RAM file is zeros: give their blocks back (sparse.go).
	if freed, err := punchZeroBlocks(filepath.Join(tmp, templateRAM)); err != nil {
		log.Debug("the template's zero pages stay on disk", "err", err)
	} else {
		log.Debug("gave back the template's zero pages", "MiB", freed>>20)
	}
	_ = os.WriteFile(filepath.Join(tmp, templateLog), bootLog, 0o600)

	t := &template{
		Key: key, KeyParts: parts, GuestPort: sb.guestPort, Append: sb.spec.Append,
		MemoryMiB: sb.spec.MemoryMiB, CPUs: sb.spec.CPUs, Files: map[string]fileStamp{}, Created: time.Now().UTC(), Mux: mux,
	}
	if t.StateSHA256, err = fileSHA256(filepath.Join(tmp, templateState)); err != nil {
		return nil, newError(KindBootFailed, err, "hashing the template state")
	}
	for _, name := range []string{templateRAM, templateDisk, templateState} {
		if t.Files[name], err = stampOf(filepath.Join(tmp, name)); err != nil {
			return nil, newError(KindBootFailed, err, "checking the template")
		}
	}
	raw, _ := json.MarshalIndent(t, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, templateMeta), raw, 0o600); err != nil {
		kind, msg := blameFullDisk(sb.hostFolders, KindBootFailed, "writing the template")
		return nil, &Error{Kind: kind, Msg: msg, Err: err}
	}
	if err := build.renameTo(dir); err != nil {
		return nil, newError(KindBootFailed, err, "installing the template")
	}
	t.dir = dir
	s.removeSuperseded(t)
	return t, nil
}

// templateWarmUp is run once in a template before it is frozen, so that
// its clones find done what the boot still had to do, instead of each
// doing it again in its own QEMU (and translating the code for it afresh,
// under TCG). It waits, at most 2 s, for eth0's IPv6 link-local address:
// the kernel makes it only when it sees the link's carrier, about a second
// after the link came up, which is after the agent is ready (the init
// script sets the rest of the network itself: build/init). And it runs the
// shell once, so the shell, the C library and the loader are in the page
// cache that clones share, with the agent's own first-command work (its
// JSON encoders, a command's cgroup) behind it. Last, sync: what the boot
// wrote is on the disk, so no clone has it still to write back.
const templateWarmUp = `cd / && settled() {
	[ ! -e /sys/class/net/eth0 ] || [ ! -e /proc/net/if_inet6 ] && return 0
	while read -r addr index plen scope flags dev; do
		[ "$dev" = eth0 ] && [ "$scope" = 20 ] && return 0
	done </proc/net/if_inet6
	return 1
}
n=0
while ! settled && [ $n -lt 100 ]; do sleep 0.02; n=$((n + 1)); done
sync`

// warmUpTemplate runs templateWarmUp. A template works without it, only
// less well, so a failure is logged, not returned.
func (sb *Sandbox) warmUpTemplate(ctx context.Context) {
	if _, err := sb.Execute(ctx, ExecRequest{Command: templateWarmUp}); err != nil {
		sb.cfg.Logger.Debug("the template's warm-up command failed", "err", err)
	}
}

// removeSuperseded deletes the templates that this one replaces: made from
// the same image folder with the same settings, but from files or a QEMU
// that have since changed. (Running clones keep what they mapped or
// opened; removing only unlinks the names.)
func (s templateStore) removeSuperseded(t *template) {
	metas, _ := filepath.Glob(filepath.Join(s.dir, "*", templateMeta))
	for _, m := range metas {
		raw, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var old template
		if json.Unmarshal(raw, &old) != nil || old.Key == t.Key {
			continue
		}
		if sameSettings(old.KeyParts, t.KeyParts) {
			os.RemoveAll(filepath.Dir(m))
		}
	}
}

// sameSettings: the same image folder, architecture, accelerator, memory,
// CPUs and extra arguments, whatever the files' versions.
func sameSettings(a, b map[string]any) bool {
	for _, k := range []string{"arch", "accel", "memory_mib", "cpus", "extra_kernel_args", "extra_qemu_args", "image_dir"} {
		if fmt.Sprint(a[k]) != fmt.Sprint(b[k]) {
			return false
		}
	}
	return true
}

func loadTemplate(dir, key string) (*template, error) {
	raw, err := os.ReadFile(filepath.Join(dir, templateMeta))
	if err != nil {
		return nil, err
	}
	t := &template{dir: dir}
	if err := json.Unmarshal(raw, t); err != nil {
		return nil, err
	}
	if t.Key != key {
		return nil, errors.New("the template was made for something else")
	}
	for name, want := range t.Files {
		if got, err := stampOf(filepath.Join(dir, name)); err != nil || got != want {
			return nil, errors.Errorf("template file %s is missing or changed", name)
		}
	}
	sum, err := fileSHA256(filepath.Join(dir, templateState))
	if err != nil || sum != t.StateSHA256 {
		return nil, errors.New("the template state is corrupt")
	}
	return t, nil
}

// templateKey identifies what a template depends on: the image's files,
// QEMU, and every setting that shapes the VM.
func templateKey(plan launchPlan) (string, map[string]any, error) {
	files := map[string]string{}
	for name, p := range map[string]string{"kernel": plan.img.KernelPath(), "initrd": plan.img.InitrdPath(), "rootfs": plan.img.RootFSPath(), "qemu": plan.binary} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", nil, err
		}
		files[name] = fmt.Sprintf("%s %d %d", p, fi.Size(), fi.ModTime().UnixNano())
	}
	version, err := qemuVersion(plan.binary)
	if err != nil {
		return "", nil, err
	}
	parts := map[string]any{
		"format": templateFormat, "files": files, "build_id": plan.img.Manifest.BuildID, "qemu_version": version,
		"image_dir": plan.img.Dir,
		"arch":      plan.img.Manifest.Arch, "accel": plan.accel, "memory_mib": plan.cfg.MemoryMiB, "cpus": plan.cfg.CPUs,
		"extra_kernel_args": plan.cfg.ExtraKernelArgs, "extra_qemu_args": plan.cfg.ExtraQEMUArgs,
	}
	if d := plan.cfg.Display; d != nil { // other devices, and a desktop that runs
		// Not VNC: a host-side server each QEMU process starts afresh.
		parts["display"] = fmt.Sprintf("%dx%d", d.Width, d.Height)
	}
	raw, _ := json.Marshal(parts) // map keys are sorted: the same parts hash the same
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), parts, nil
}
