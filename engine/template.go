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
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

// templateFormat changes whenever what a template holds or how it is made
// changes, so old templates are rebuilt rather than misread.
const templateFormat = 6

const (
	// buildSuffix marks a template folder being built (locked while it is).
	buildSuffix   = ".build-"
	templateMeta  = "template.json"
	templateRAM   = "ram"
	templateDisk  = "disk.qcow2"
	templateState = "state"
	templateLog   = "console.log"
)

// template is a built template's metadata (template.json). The agent's
// token lives in the same owner-only file; it is refused by every clone
// once the clone took its own.
type template struct {
	dir         string
	Key         string         `json:"key"`
	KeyParts    map[string]any `json:"key_parts"`
	Token       string         `json:"token"`
	GuestPort   int            `json:"guest_port"`
	Append      string         `json:"append"`
	MemoryMiB   int            `json:"memory_mib"`
	CPUs        int            `json:"cpus"`
	StateSHA256 string         `json:"state_sha256"`
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
		token:     t.Token, guestPort: t.GuestPort, append: t.Append,
		memoryMiB: t.MemoryMiB, cpus: t.CPUs,
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
	dir := filepath.Join(s.dir, key[:32])
	t, why := loadTemplate(dir, key)
	if why == nil {
		return t, nil
	}
	if err := ensurePrivateDir(s.dir); err != nil {
		return nil, newError(KindBootFailed, err, "the template folder")
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return nil, newError(KindCancelled, err, "waiting for another start to build the template")
	}
	defer unlock()
	if t, err := loadTemplate(dir, key); err == nil {
		return t, nil // built by whoever held the lock
	}
	log := plan.cfg.Logger
	sweepStale(log, s.dir, "*"+buildSuffix+"*") // builds of killed processes
	os.RemoveAll(dir)                           // stale or broken
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
	if err := sb.freeze(ctx, filepath.Join(tmp, templateState)); err != nil {
		return nil, newError(KindBootFailed, err, "saving the template")
	}
	bootLog, _ := sb.ConsoleLog()
	sb.Stop(ctx) // QEMU must be gone before anything maps the RAM file
	_ = os.WriteFile(filepath.Join(tmp, templateLog), bootLog, 0o600)

	t := &template{
		Key: key, KeyParts: parts, Token: sb.token, GuestPort: sb.guestPort, Append: sb.spec.Append,
		MemoryMiB: sb.spec.MemoryMiB, CPUs: sb.spec.CPUs, Files: map[string]fileStamp{}, Created: time.Now().UTC(),
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
		return nil, newError(KindBootFailed, err, "writing the template")
	}
	if err := build.renameTo(dir); err != nil {
		return nil, newError(KindBootFailed, err, "installing the template")
	}
	t.dir = dir
	s.removeSuperseded(t)
	return t, nil
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

// freeze quiesces the guest's disk, pauses the VM and writes its state to
// path. The agent's connections are closed first, and their end awaited,
// so that no TCP connection is frozen into the state that every clone
// would inherit half-open. The port forward goes first: any local user
// can connect to it, and a connection opened meanwhile would hold the
// freeze up (clones get port forwards of their own).
func (sb *Sandbox) freeze(ctx context.Context, path string) error {
	if _, err := sb.Execute(ctx, ExecRequest{Command: "sync"}); err != nil {
		return err
	}
	out, err := sb.qmp.HMP(ctx, fmt.Sprintf("hostfwd_remove net0 tcp:127.0.0.1:%d", sb.port))
	if err != nil {
		return err
	}
	if !strings.Contains(out, "removed") {
		return errors.Errorf("removing the agent's port forward: %s", strings.TrimSpace(out))
	}
	// Longer than the agent gives a connection to send its request (10 s):
	// a stranger's connection is closed by then.
	if err := sb.quiesceNetwork(ctx, 15*time.Second); err != nil {
		return err
	}
	if _, err := sb.qmp.Execute(ctx, "stop", nil); err != nil {
		return err
	}
	return sb.writeState(ctx, path)
}

// quiesceNetwork closes the client's idle connections and waits (up to
// limit) until QEMU's user-mode network holds no connection but the port
// forwards themselves.
func (sb *Sandbox) quiesceNetwork(ctx context.Context, limit time.Duration) error {
	sb.client.Close()
	deadline := time.Now().Add(limit)
	for {
		out, err := sb.qmp.HMP(ctx, "info usernet")
		if err != nil {
			return err
		}
		if !hasOpenConnections(out) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Errorf("connections to the guest stayed open:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// guestClosed are the states (slirp's side of a connection with the guest)
// in which the guest has closed its end: nothing of it is left open in the
// guest to freeze. The other end may be a stranger's connection to the port
// forward, which the engine cannot close and need not wait for.
var guestClosed = map[string]bool{
	"TCP[HOST_FORWARD]": true, // a listener, not a connection
	"TCP[TIME_WAIT]":    true,
	"TCP[CLOSE_WAIT]":   true,
	"TCP[LAST_ACK]":     true,
	"TCP[CLOSING]":      true,
}

// hasOpenConnections reads `info usernet`: a TCP connection the guest has
// not closed is open.
func hasOpenConnections(usernet string) bool {
	for _, line := range strings.Split(usernet, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "TCP[") && !guestClosed[f[0]] {
			return true
		}
	}
	return false
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
	raw, _ := json.Marshal(parts) // map keys are sorted: the same parts hash the same
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), parts, nil
}

var qemuVersions sync.Map // binary path -> version line

func qemuVersion(binary string) (string, error) {
	if v, ok := qemuVersions.Load(binary); ok {
		return v.(string), nil
	}
	out, err := exec.Command(binary, "--version").Output()
	if err != nil {
		return "", errors.Wrapf(err, "asking %s its version", binary)
	}
	v := string(out)
	qemuVersions.Store(binary, v)
	return v, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lockFile takes an exclusive flock on path, waiting until ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return func() { f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fileStamp tells a file from a changed one without reading it: a write
// changes the modification time, a replacement the inode.
type fileStamp struct {
	Size      int64  `json:"size"`
	ModTimeNs int64  `json:"mtime_ns"`
	Inode     uint64 `json:"inode"`
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{Size: fi.Size(), ModTimeNs: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Inode = sys.Ino
	}
	return st, nil
}
