package engine

// Save and resume across processes: Save writes a running sandbox's state
// (RAM, so processes keep running, and disk) to a folder with a manifest;
// Start with that folder (or its name) as the image resumes it.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/image"
	"github.com/quicksand-go/quicksand/engine/internal/qemu"
)

const (
	saveState = "state"
	saveDisk  = "disk.qcow2"
	saveToken = "token" // owner-only: an unsealed (older) save's token, until rekeyed
	saveLog   = "console.log"
	// savingSuffix marks a save being written (locked while it is).
	savingSuffix = ".saving-"
)

// SaveDir is where Save(name) writes: a name (1 to 128 of A-Z a-z 0-9 . _ -) goes to the
// default image folder, so that Start finds it by name; a path (absolute,
// or starting with "./") is used as is, and its parent folder must exist.
func SaveDir(name string) (string, error) {
	if image.IsPath(name) {
		return filepath.Abs(name)
	}
	if err := image.CheckName(name); err != nil {
		return "", err
	}
	return filepath.Join(image.DefaultDir(), name), nil
}

// Save writes the sandbox's state to a new folder (SaveDir(name)) and
// returns its path (a server's sandbox: the server saves it on its disk
// and returns the name a later start there takes). The VM pauses while its RAM is written and then goes
// on running; the disk is copied after it resumed. The save depends on its
// image staying in place (its disk holds only the differences).
func (sb *Sandbox) Save(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", newError(KindBadRequest, nil, "a save needs a name or a folder")
	}
	if sb.remote != nil {
		return sb.remote.save(ctx, name)
	}
	if sb.img.Manifest.Agent == image.AgentQuicksand {
		return "", newError(KindBadRequest, nil, "save %s: image %s runs Quicksand's agent, which cannot take a new token when resumed: it cannot be saved", image.Quote(name), sb.img.Manifest.Name)
	}
	dir, err := SaveDir(name)
	if err != nil {
		return "", newError(KindBadRequest, err, "save")
	}
	if err := sb.refuseSaveWithMounts(image.Quote(name)); err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err == nil {
		return "", newError(KindBadRequest, nil, "save %s: %s already exists", image.Quote(name), dir)
	}
	if !image.IsPath(name) {
		// The image folder itself; a path's parent must already exist.
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return "", newError(KindSnapshotFailed, err, "save %s", image.Quote(name))
		}
	}
	// Saves that killed processes left half-written beside this one go.
	sweepStale(sb.cfg.Logger, filepath.Dir(dir), "*"+savingSuffix+"*")
	saving, err := makeLockedDir(filepath.Dir(dir), filepath.Base(dir)+savingSuffix+"*")
	if err != nil {
		return "", newError(KindSnapshotFailed, err, "save %s", image.Quote(name))
	}
	defer saving.remove() // nothing left once it was renamed
	tmp := saving.path

	opCtx, cancel := sb.boundSnapshot(ctx)
	defer cancel()
	frozen, err := sb.snapshotForSave(opCtx, filepath.Join(tmp, saveState))
	if err != nil {
		return "", sb.opError(ctx, err, "save %q", name)
	}
	// The frozen overlay is read-only now: copy it while the VM runs on,
	// keeping only what differs from the image's root disk.
	out, err := exec.CommandContext(opCtx, qemuImg(sb.cmd.Path), "convert", "-O", "qcow2",
		"-B", sb.img.RootFSPath(), "-F", sb.img.RootFormat, frozen, filepath.Join(tmp, saveDisk)).CombinedOutput()
	if err != nil {
		return "", sb.opError(ctx, errors.Errorf("%v: %s", err, out), "save %q: copying the disk", name)
	}
	if err := sb.writeSaveManifest(tmp, name); err != nil {
		return "", newError(KindSnapshotFailed, err, "save %q", name)
	}
	if err := saving.renameTo(dir); err != nil {
		return "", newError(KindSnapshotFailed, err, "save %q", name)
	}
	return dir, nil
}

// snapshotForSave pauses the VM, moves its writes to a new overlay (the old one
// becomes a read-only backing file that matches the RAM), writes the VM's
// state to statePath, and lets the VM run again. It returns the frozen
// overlay's path.
func (sb *Sandbox) snapshotForSave(ctx context.Context, statePath string) (_ string, err error) {
	sb.snapshots.Lock()
	defer sb.snapshots.Unlock()
	if err := sb.beginSnapshotOp("saving"); err != nil {
		return "", err
	}
	frozen := sb.spec.Disk
	next := sb.workdir.file(fmt.Sprintf("overlay-%d.qcow2", time.Now().UnixNano()))
	// The save's agent must wake up sealed (seal.go): whoever resumes the
	// save could otherwise be beaten to it by anyone who read this
	// sandbox's token from guest RAM.
	if err := sb.requireSealing(ctx); err != nil {
		return "", err
	}
	defer func() {
		// Whatever happened, the VM must run on; if it cannot, say so.
		// Also when the stop itself was given up on: a frozen QEMU carries
		// it out when it goes on.
		if cerr := sb.resumeVM(ctx); cerr != nil && err == nil {
			err = errors.Wrap(cerr, "letting the VM run again")
		}
	}()
	if _, err := sb.qmp.Execute(ctx, "stop", nil); err != nil {
		return "", err
	}
	if _, err := sb.qmp.Execute(ctx, "blockdev-snapshot-sync", map[string]string{
		"device": "disk0", "snapshot-file": next, "format": "qcow2",
	}); err != nil {
		return "", err
	}
	sb.spec.Disk = next
	// Checkpoints live in the overlay just frozen: loadvm needs them in
	// the active one.
	for tag := range sb.tags {
		sb.tags[tag] = false
	}
	return frozen, sb.writeState(ctx, statePath)
}

func (sb *Sandbox) writeSaveManifest(dir, name string) error {
	sum, err := fileSHA256(filepath.Join(dir, saveState))
	if err != nil {
		return err
	}
	diskSum, err := fileSHA256(filepath.Join(dir, saveDisk))
	if err != nil {
		return err
	}
	version, err := qemuVersion(sb.cmd.Path)
	if err != nil {
		return err
	}
	m := sb.img.Manifest
	m.Name = filepath.Base(name)
	m.Kernel, m.Initrd, m.RootFS = sb.img.KernelPath(), sb.img.InitrdPath(), sb.img.RootFSPath()
	m.KernelCompressed = ""
	m.Save = &image.SaveInfo{
		State: saveState, Disk: saveDisk, StateSHA256: sum, DiskSHA256: diskSum, Append: sb.spec.Append,
		MemoryMiB: sb.spec.MemoryMiB, CPUs: sb.spec.CPUs, Accel: string(sb.accel), GuestPort: sb.guestPort,
		QEMUVersion: version, Created: time.Now().UTC().Format(time.RFC3339), Sealed: true,
		NoGuestAnnounce: !sb.spec.GuestAnnounce,
	}
	if d := sb.cfg.Display; d != nil {
		m.Save.Display = fmt.Sprintf("%dx%d", d.Width, d.Height)
	}
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644); err != nil {
		return err
	}
	if log, err := sb.ConsoleLog(); err == nil {
		_ = os.WriteFile(filepath.Join(dir, saveLog), log, 0o600)
	}
	return nil // a sealed save needs no token: its resumer's fw_cfg holds it
}

// ValidateSave checks a save (a name or a folder) without starting it: its
// manifest, its state's checksum, its disk and the image files it needs,
// and that this QEMU can load it.
func ValidateSave(nameOrPath string) (*SaveInfo, error) {
	img, err := image.Resolve(nameOrPath, image.SearchDirs(nil))
	if err != nil {
		return nil, newError(KindImageNotFound, err, "validating save %q", nameOrPath)
	}
	if img.Manifest.Save == nil {
		return nil, newError(KindBadRequest, nil, "%s is an image, not a save", image.Quote(nameOrPath))
	}
	if _, err := checkSave(img); err != nil {
		return nil, err
	}
	return newSaveInfo(img), nil
}

// checkSave validates a resolved save and returns its token ("" for a
// sealed save, which needs none).
func checkSave(img *image.Image) (string, error) {
	s := img.Manifest.Save
	bad := func(err error, format string, args ...any) (string, error) {
		return "", newError(KindBootFailed, err, "save %s: %s", img.Dir, fmt.Sprintf(format, args...))
	}
	if s == nil {
		return bad(nil, "this is an image, not a save")
	}
	sum, err := fileSHA256(filepath.Join(img.Dir, s.State))
	if err != nil {
		return bad(err, "reading its state")
	}
	if sum != s.StateSHA256 {
		return bad(nil, "its state is corrupt (checksum mismatch)")
	}
	if s.DiskSHA256 != "" {
		sum, err := fileSHA256(filepath.Join(img.Dir, s.Disk))
		if err != nil {
			return bad(err, "reading its disk")
		}
		if sum != s.DiskSHA256 {
			return bad(nil, "its disk is corrupt (checksum mismatch)")
		}
	}
	var token []byte
	if !s.Sealed {
		if token, err = os.ReadFile(filepath.Join(img.Dir, saveToken)); err != nil {
			return bad(err, "reading its token")
		}
	}
	binary, err := exec.LookPath(qemu.Binary(img.Manifest.Arch))
	if err != nil {
		return bad(err, "finding QEMU: %s", qemu.InstallHint(img.Manifest.Arch))
	}
	version, err := qemuVersion(binary)
	if err != nil {
		return bad(err, "asking QEMU its version")
	}
	if version != s.QEMUVersion {
		return bad(nil, "it was saved by %s and this is %s", strings.TrimSpace(s.QEMUVersion), strings.TrimSpace(version))
	}
	// The disk's backing chain must be there: qemu-img opens every layer.
	if out, err := exec.Command(qemuImg(binary), "info", "--backing-chain", filepath.Join(img.Dir, s.Disk)).CombinedOutput(); err != nil {
		return bad(errors.New(strings.TrimSpace(string(out))), "its disk or the image it builds on is missing")
	}
	return strings.TrimSpace(string(token)), nil
}

// startFromSave resumes a saved sandbox with the save's own machine
// settings (memory, CPUs and accelerator must match the state).
func startFromSave(ctx context.Context, plan launchPlan) (*Sandbox, error) {
	token, err := checkSave(plan.img)
	if err != nil {
		return nil, err
	}
	s := plan.img.Manifest.Save
	plan.accel = Accel(s.Accel)
	plan.cfg.MemoryMiB, plan.cfg.CPUs = s.MemoryMiB, s.CPUs
	if err := saveDisplay(&plan.cfg, s.Display); err != nil {
		return nil, err
	}
	if !s.Sealed {
		plan.cfg.Logger.Warn("this save was made before saves were sealed: until the engine rekeys it, whoever read its token from the guest could reach it; save it again to seal it", "save", plan.img.Dir)
	}
	plan.from = &snapshotSource{
		what:      "save",
		statePath: filepath.Join(plan.img.Dir, s.State),
		diskPath:  filepath.Join(plan.img.Dir, s.Disk),
		console:   filepath.Join(plan.img.Dir, saveLog),
		token:     token, sealed: s.Sealed, guestPort: s.GuestPort, append: s.Append,
		memoryMiB: s.MemoryMiB, cpus: s.CPUs, guestAnnounce: !s.NoGuestAnnounce,
	}
	return launch(ctx, plan)
}
