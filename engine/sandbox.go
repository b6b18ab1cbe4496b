// Package engine starts, supervises and talks to sandboxes: Linux VMs under
// QEMU, booted straight into a kernel, each with a guest agent that runs
// commands for the host.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/engine/internal/image"
	"github.com/quicksand-go/quicksand/engine/internal/netguard"
	"github.com/quicksand-go/quicksand/engine/internal/qemu"
)

const (
	// stoppedReason is why a sandbox's calls end once it was stopped (or
	// killed by the engine after a failed start).
	stoppedReason = "the sandbox was stopped"
	// stopGrace is how long QEMU gets to exit on SIGTERM before SIGKILL.
	stopGrace = 3 * time.Second
	// hwAccelBootLimit bounds a boot under an automatically chosen hardware
	// accelerator before auto falls back to TCG: such boots take well under
	// a second when the accelerator works.
	hwAccelBootLimit = 10 * time.Second
	// portAttempts covers the race between choosing a free port and QEMU
	// binding it.
	portAttempts = 3
)

// BootTiming says how long each phase of the start took, each measured from
// the moment Start was called. A warm start (resumed from a template or a
// save) boots no kernel: KernelBooted is zero and AgentListening is when the
// resumed VM began to run.
type BootTiming struct {
	Warm           bool          // resumed from a snapshot rather than booted
	QEMUStarted    time.Duration // the QEMU process was running
	KernelBooted   time.Duration // the initrd's /init announced itself
	AgentListening time.Duration // the agent printed its ready line, or the VM resumed
	Ready          time.Duration // an authenticated /ping succeeded
}

// Sandbox is one running VM. Its methods are safe to call from many
// goroutines at once.
type Sandbox struct {
	// remote, when set, is the server that keeps this sandbox: every
	// method hands its call to it (remote_sandbox.go), and the fields
	// below are unused.
	remote *remoteSandbox
	ident  localIdentity // a local sandbox's ID

	cfg        Config
	img        *image.Image
	accel      Accel
	token      string
	port       int // host side of the agent's port forward
	guestPort  int // the agent's port in the guest
	spec       qemu.Spec
	workdir    *lockedDir
	cmd        *exec.Cmd
	qmp        *qemu.QMP
	console    *console
	qemuStderr *tailBuffer
	client     *agent.Client
	// channel carries commands' output (nil if it could not be connected,
	// channelErr says why).
	channel *agent.Channel
	// muxLink carries the client's calls over the agent's mux port
	// (muxlink.go); nil when the port forward alone does.
	muxLink    *agent.MuxLink
	channelErr error
	// channelLost says why the channel was given up after start (a revert
	// that could not find its place in it); nil while it is used.
	channelLost atomic.Pointer[error]
	timing      BootTiming
	// warmSteps are a warm start's inner steps, for measuring them
	// (TestWarmStartLegs).
	warmSteps struct{ qmpConnected, stateLoaded time.Duration }

	// snapshots serialises checkpoint, revert and save, and guards what
	// they change: the tags, the epoch and the active overlay.
	snapshots sync.Mutex
	// tags are the checkpoints taken: true while they can be reverted to,
	// false once a save moved the disk on to a new overlay without them.
	tags map[string]bool
	// stopContRetry calls off the background "cont" retries that a
	// snapshot operation left behind (resumeVM), nil when there are none:
	// a later operation's pause must not be undone by them.
	stopContRetry context.CancelFunc
	// guard is the network guard in full mode (guard.go), nil otherwise.
	guard *netguard.Guard
	// mounts are the shared folders (mounts.go).
	mounts mounts
	// desktop is what the host keeps of the display (desktop.go).
	desktop desktopState
	// epoch ends (with the reason) when a revert throws away the guest
	// state that calls in flight belong to.
	epoch    context.Context
	endEpoch context.CancelCauseFunc

	// alive ends when the VM is gone, with the reason as its cause; every
	// call in flight is derived from it and so ends at once.
	alive    context.Context
	markDead context.CancelCauseFunc
	exited   chan struct{} // closed once QEMU has been waited for
	exitErr  error         // how QEMU exited (set before exited is closed)
	// hostFolders are the host folders QEMU writes to (the overlay, a
	// template's RAM), to name the one whose disk is full in errors.
	hostFolders []hostFolder

	stopOnce sync.Once
}

// Start boots a sandbox and returns once its agent answers. ctx bounds the
// whole start; cancelling it stops the VM being started.
//
// Unless cfg.ColdBoot is set, the VM is resumed from a template of its
// image, taken the first time that image starts (see template.go), which
// costs a fraction of a second instead of a boot. An image that is a save
// (Sandbox.Save) is always resumed.
//
// With Config.Server (or $QUICKSAND_SERVER) the server starts it and keeps
// it, and the returned Sandbox's methods go there.
func Start(ctx context.Context, cfg Config) (*Sandbox, error) {
	if cfg.remoteOptions().Server != "" {
		return startRemote(ctx, cfg)
	}
	sb, err := start(ctx, cfg)
	if err != nil || len(cfg.Mounts) == 0 {
		return sb, err
	}
	if err := sb.mountAll(ctx, sb.cfg.Mounts); err != nil {
		sb.kill()
		return nil, err
	}
	return sb, nil
}

// start starts the VM; Start then adds the mounts.
func start(ctx context.Context, cfg Config) (*Sandbox, error) {
	began := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	img, err := image.Resolve(cfg.Image, image.SearchDirs(cfg.ImageDirs))
	if err != nil {
		return nil, newError(KindImageNotFound, err, "resolving image %q", cfg.Image)
	}
	binary := cfg.QEMUPath
	if binary == "" {
		binary = qemu.Binary(img.Manifest.Arch)
	}
	if binary, err = exec.LookPath(binary); err != nil {
		return nil, newError(KindBootFailed, err, "finding QEMU for %s guests: %s", img.Manifest.Arch, qemu.InstallHint(img.Manifest.Arch))
	}
	if err := checkDisplayImage(cfg, img.Manifest.Name, img.Manifest.Desktop); err != nil {
		return nil, err
	}
	if err := ensurePrivateDir(cfg.WorkDir); err != nil {
		return nil, newError(KindBootFailed, err, "the work folder")
	}
	if img.Manifest.Agent == image.AgentQuicksand {
		// A template's clones are rekeyed on resume, which Quicksand's
		// agent cannot be: every start of its images is a boot.
		cfg.ColdBoot = true
		cfg.Logger.Warn("the image runs Quicksand's agent: its token goes on the kernel command line, which every local user can read; it boots cold", "image", img.Dir)
	}
	plan := launchPlan{cfg: cfg, img: img, binary: binary, limit: cfg.BootTimeout, began: began}
	if img.Manifest.Save != nil {
		return startFromSave(ctx, plan)
	}

	accel := cfg.Accel
	auto := accel == AccelAuto
	if auto {
		chosen, denied := qemu.ChooseAuto(ctx, binary, img.Manifest.Arch, img.KernelPath(), cfg.WorkDir)
		accel = Accel(chosen)
		if denied != nil {
			cfg.Logger.Warn("software emulation (TCG): "+denied.Error(), "image", img.Manifest.Name)
		}
		cfg.Logger.Info("accelerator chosen", "accel", accel, "image", img.Manifest.Name, "arch", img.Manifest.Arch)
	}
	plan.accel = accel
	if auto && accel != AccelTCG {
		plan.limit = min(plan.limit, hwAccelBootLimit)
	}
	sb, err := startPlan(ctx, plan)
	if err != nil && auto && accel != AccelTCG && ctx.Err() == nil {
		// The probe passed but the real boot did not: do without.
		cfg.Logger.Warn("the accelerator's boot failed: booting again under TCG", "accel", accel, "err", err)
		plan.accel, plan.limit = AccelTCG, cfg.BootTimeout
		sb, err = startPlan(ctx, plan)
	}
	return sb, err
}

// startPlan resumes from the image's template, or boots cold.
func startPlan(ctx context.Context, plan launchPlan) (*Sandbox, error) {
	if plan.cfg.ColdBoot {
		return launch(ctx, plan)
	}
	store := templateStore{dir: plan.cfg.TemplateDir}
	tpl, err := store.get(ctx, plan)
	if err != nil {
		return nil, err
	}
	plan.from = tpl.source()
	sb, err := launch(ctx, plan)
	if err != nil && ctx.Err() == nil && isSnapshotFault(err) {
		// A template that does not resume is not to be trusted: rebuild it
		// once, then give up. Any other failure (a resume that was only
		// slow on a host busy with many starts at once, ports taken by
		// another user, a full disk) says nothing against the template:
		// throwing it away made every start waiting on its rebuild time
		// out too (50 at once on 2 cores), or fail the same way after a
		// cold boot's worth of work.
		plan.cfg.Logger.Warn("the template did not resume: rebuilding it", "template", tpl.dir, "err", err)
		store.discard(tpl)
		if tpl, err = store.get(ctx, plan); err != nil {
			return nil, err
		}
		plan.from = tpl.source()
		sb, err = launch(ctx, plan)
	}
	return sb, err
}

// supervise waits for QEMU and marks the sandbox dead when it exits.
func (sb *Sandbox) supervise() {
	<-sb.console.finished // Wait closes the pipe; read it to the end first
	sb.exitErr = sb.cmd.Wait()
	reason := "QEMU exited"
	if sb.exitErr != nil {
		reason = "QEMU exited: " + sb.exitErr.Error()
	}
	sb.markDead(errors.New(reason))
	close(sb.exited)
}

// bootError adds to a boot failure how QEMU ended if it did by itself (a
// signal: a shared RAM file on a full disk is a SIGBUS), a host disk that
// is full (then it is a resource error: the likely cause), and the
// console's and QEMU's last words.
func (sb *Sandbox) bootError(kind Kind, cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	select {
	case <-sb.exited:
		if sb.exitErr != nil && context.Cause(sb.alive).Error() != stoppedReason {
			msg += " (" + sb.exitErr.Error() + ")"
		}
	default:
	}
	if kind == KindBootFailed || kind == KindBootTimeout {
		kind, msg = blameFullDisk(sb.hostFolders, kind, msg)
	}
	if t := sb.console.Tail(); t != "" {
		msg += "\n--- last console lines ---\n" + t
	}
	if t := sb.qemuStderr.String(); t != "" {
		msg += "\n--- QEMU stderr ---\n" + t
	}
	return &Error{Kind: kind, Msg: msg, Err: cause}
}

// kill ends QEMU at once and cleans up.
func (sb *Sandbox) kill() {
	sb.stopOnce.Do(func() { sb.shutdown(context.Background(), 0) })
	<-sb.exited
}

// Stop shuts the VM down (SIGTERM, then SIGKILL after a grace period or when
// ctx ends), waits for QEMU and removes the sandbox's folder. Calls in
// flight fail with a "not running" error. Safe to call more than once and
// from several goroutines; later calls wait for the first and return nil.
//
// A server's sandbox: the server stops and forgets it (one it no longer
// has is no error).
func (sb *Sandbox) Stop(ctx context.Context) error {
	if sb.remote != nil {
		return sb.remote.stop(ctx)
	}
	var err error
	sb.stopOnce.Do(func() { err = sb.shutdown(ctx, stopGrace) })
	<-sb.exited
	return err
}

// shutdown ends QEMU (SIGTERM, then SIGKILL after grace or when ctx ends;
// at once for a zero grace), waits for it and removes the sandbox's folder.
// It runs once, under stopOnce.
func (sb *Sandbox) shutdown(ctx context.Context, grace time.Duration) error {
	sb.markDead(errors.New(stoppedReason))
	if grace > 0 {
		_ = sb.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-sb.exited:
		case <-t.C:
		case <-ctx.Done():
		}
	}
	_ = sb.cmd.Process.Kill()
	<-sb.exited
	sb.client.Close()
	sb.closeMux()
	sb.closeMounts()
	if sb.channel != nil {
		sb.channel.Close()
	}
	if sb.qmp != nil {
		sb.qmp.Close()
	}
	if err := sb.workdir.remove(); err != nil {
		return newError(KindUnknown, err, "cleaning up after the sandbox")
	}
	return nil
}

// currentEpoch is the context that a revert ends.
func (sb *Sandbox) currentEpoch() context.Context {
	sb.snapshots.Lock()
	defer sb.snapshots.Unlock()
	return sb.epoch
}

// Wait blocks until the VM has exited (after Stop, or when it dies). A
// server's sandbox: until Stop was called or the server, asked every
// second, says it no longer runs.
func (sb *Sandbox) Wait() {
	if sb.remote != nil {
		sb.remote.wait()
		return
	}
	<-sb.exited
}

// IsRunning reports whether the VM is up and not stopped (a server's
// sandbox: asks the server; any failure to is a no).
func (sb *Sandbox) IsRunning() bool {
	if sb.remote != nil {
		return sb.remote.isRunning()
	}
	return sb.alive.Err() == nil
}

// Accelerator is the accelerator the VM runs on ("kvm", "hvf" or "tcg").
func (sb *Sandbox) Accelerator() Accel {
	if sb.remote != nil {
		return Accel(sb.remote.described().Accelerator)
	}
	return sb.accel
}

// BootTiming says how long each phase of the start took (zero for a
// server's sandbox).
func (sb *Sandbox) BootTiming() BootTiming {
	if sb.remote != nil {
		return BootTiming{}
	}
	return sb.timing
}

// ConsoleLog returns the guest's serial console output so far (up to 16
// MiB); not available on a server's sandbox (KindBadRequest).
func (sb *Sandbox) ConsoleLog() ([]byte, error) {
	if sb.remote != nil {
		return nil, errNotRemote("ConsoleLog")
	}
	b, err := os.ReadFile(sb.workdir.file("console.log"))
	if err != nil && !sb.IsRunning() {
		return nil, newError(KindNotRunning, err, "reading the console log")
	}
	return b, err
}

// Arch is the guest's architecture ("x86_64" or "arm64").
func (sb *Sandbox) Arch() string {
	if sb.remote != nil {
		return sb.remote.described().Arch
	}
	return sb.img.Manifest.Arch
}

// AgentAddr is the host address of the agent's port forward (for tools
// that speak the agent protocol themselves) and Token the secret it wants;
// both "" for a server's sandbox, whose agent is the server's.
func (sb *Sandbox) AgentAddr() string {
	if sb.remote != nil {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sb.port))
}

func (sb *Sandbox) Token() string {
	if sb.remote != nil {
		return ""
	}
	return sb.token
}

// PID is the QEMU process id (0 for a server's sandbox).
func (sb *Sandbox) PID() int {
	if sb.remote != nil {
		return 0
	}
	return sb.cmd.Process.Pid
}

func newToken() (string, error) {
	b := make([]byte, 32) // 256 bits
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// freePort asks the kernel for a port of 127.0.0.1 that nobody uses, for
// the agent's port forward. There is none when every port of the ephemeral
// range is taken (another local user can take them all): the error says
// so, and that the range is what ran out.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if errors.Is(err, syscall.EADDRINUSE) {
		lohi, _ := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range") // Linux's
		if r := strings.Fields(string(lohi)); len(r) == 2 {
			return 0, newError(KindResource, err, "no free TCP port on 127.0.0.1 for the agent's port forward: every port of the host's ephemeral range (%s-%s) is taken", r[0], r[1])
		}
		return 0, newError(KindResource, err, "no free TCP port on 127.0.0.1 for the agent's port forward: every port of the host's ephemeral range is taken")
	}
	if err != nil {
		return 0, newError(KindBootFailed, err, "choosing a host port")
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
