package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/internal/agent"
	"github.com/quicksand-go/quicksand/engine/internal/image"
	"github.com/quicksand-go/quicksand/engine/internal/proc"
	"github.com/quicksand-go/quicksand/engine/internal/qemu"
	"github.com/quicksand-go/quicksand/internal/protocol"
)

// launchPlan is everything one start needs to know.
type launchPlan struct {
	cfg    Config
	img    *image.Image
	binary string
	accel  Accel
	limit  time.Duration // boot timeout
	began  time.Time

	// from, if set, resumes a snapshot instead of booting the kernel.
	from *snapshotSource
	// Only for making a template: guest RAM written through to this file,
	// and the disk overlay kept at overlayPath instead of the work folder.
	ramFile     string
	overlayPath string
}

// snapshotSource is a VM state to resume: a template or a save.
type snapshotSource struct {
	what      string // "template" or "save", for messages
	statePath string // the migration stream (devices, and RAM unless ramFile)
	diskPath  string // the disk as it was, a qcow2 file: the overlay's backing
	ramFile   string // RAM to map copy-on-write; "" when it is in the stream
	token     string // the agent's token in the snapshot, unless sealed
	// sealed: the snapshot's agent seals itself: it takes the new QEMU's
	// token (fw_cfg) and no other (seal.go).
	sealed    bool
	guestPort int
	append    string // the kernel command line it booted with (must match)
	console   string // the console log of its boot, to start the new log with
	memoryMiB int
	cpus      int
	// mux: the agent was in a read of its mux port when the snapshot was
	// taken, so a clone's link comes up as soon as it runs.
	mux bool
	// guestAnnounce: its virtio-net offered guest announcements (a save
	// made before they were turned off: qemu.Spec.GuestAnnounce).
	guestAnnounce bool
}

// launch starts QEMU per plan, retrying when the host port chosen for the
// agent was taken in the meantime, and returns a ready sandbox.
func launch(ctx context.Context, plan launchPlan) (*Sandbox, error) {
	for attempt := 1; ; attempt++ {
		sb, err := launchOnce(ctx, plan)
		var taken *portTaken
		if err == nil || !errors.As(err, &taken) {
			return sb, err
		}
		if !taken.agents {
			return nil, newError(KindResource, taken.err, "the host port %d of a port forward is taken: another process listens on 127.0.0.1:%d", taken.port, taken.port)
		}
		if attempt == portAttempts {
			return nil, newError(KindResource, taken.err, "the host port chosen for the agent was taken before QEMU could listen on it, %d times in a row: another process is taking 127.0.0.1's free ports", attempt)
		}
		plan.cfg.Logger.Info("the host port was taken before QEMU bound it: trying another", "port", taken.port, "attempt", attempt)
	}
}

// portTaken: QEMU could not listen on the host port of a forward (another
// process has it), the agent's or one of the caller's.
type portTaken struct {
	port   int
	agents bool
	err    error
}

func (p *portTaken) Error() string { return p.err.Error() }
func (p *portTaken) Unwrap() error { return p.err }

// forwardRefused finds the host port of the forward that QEMU says it
// could not set up (it could not listen there) in its stderr.
var forwardRefused = regexp.MustCompile(`Could not set up host forwarding rule 'tcp:127\.0\.0\.1:(\d+)-`)

// launchOnce starts one QEMU per plan and waits until its agent answers:
// a boot of the kernel (coldBootSettings), which makes a template when
// plan.ramFile is set, or a resume of a snapshot (plan.from,
// resumeSettings). Everything else is the same for both.
func launchOnce(ctx context.Context, plan launchPlan) (_ *Sandbox, err error) {
	cfg, img := plan.cfg, plan.img
	workdir, err := newWorkdir(cfg.Logger, cfg.WorkDir)
	if err != nil {
		return nil, newError(KindBootFailed, err, "preparing the sandbox")
	}
	defer func() {
		if err != nil {
			workdir.remove()
		}
	}()
	token, err := newToken()
	if err != nil {
		return nil, newError(KindBootFailed, err, "making a token")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}

	spec := qemu.Spec{
		Arch: img.Manifest.Arch, Accel: string(plan.accel),
		MemoryMiB: cfg.MemoryMiB, CPUs: cfg.CPUs,
		Kernel: img.KernelPath(), Initrd: img.InitrdPath(),
		Disk:          workdir.file("overlay.qcow2"),
		Restricted:    cfg.Network == NetworkRestricted,
		QMPSocket:     workdir.file("qmp.sock"),
		ChannelSocket: workdir.file("channel.sock"),
		MuxSocket:     workdir.file("mux.sock"),
		RAMFile:       plan.ramFile, RAMShared: plan.ramFile != "",
		TokenFile:  workdir.file("token"),
		GuardOut:   guardSocket(cfg, workdir, "out"),
		GuardIn:    guardSocket(cfg, workdir, "in"),
		GuardReply: guardSocket(cfg, workdir, "reply"),
		Display:    qemuDisplay(cfg),
		Extra:      cfg.ExtraQEMUArgs,
		// Only a save made before guest announcements were turned off has
		// the feature in its state, and needs the device to offer it.
		GuestAnnounce: plan.from != nil && plan.from.guestAnnounce,
	}
	// The token reaches the guest through fw_cfg from this owner-only file
	// (in an owner-only folder); QEMU has read it once the sandbox is ready,
	// and it is removed then.
	if err := os.WriteFile(spec.TokenFile, []byte(token), 0o600); err != nil {
		return nil, newError(KindBootFailed, err, "handing over the token")
	}
	if plan.overlayPath != "" {
		spec.Disk = plan.overlayPath
	}
	var disk diskBase
	var guestPort int
	if plan.from != nil {
		disk, guestPort, err = resumeSettings(&spec, plan.from)
	} else {
		disk, guestPort, err = coldBootSettings(ctx, &spec, plan, token, port)
	}
	if err != nil {
		return nil, err
	}
	spec.Forwards = []qemu.Forward{{Host: port, Guest: guestPort}}
	for _, pf := range cfg.PortForwards {
		spec.Forwards = append(spec.Forwards, qemu.Forward{Host: pf.Host, Guest: pf.Guest})
	}
	if err := createOverlay(ctx, plan.binary, disk.path, disk.format, spec.Disk); err != nil {
		return nil, newError(KindBootFailed, err, "creating the disk overlay")
	}

	var bootLog []byte
	if plan.from != nil && plan.from.console != "" {
		bootLog = earlierLog(plan.from.console)
	}
	serial, err := newConsole(workdir.file("console.log"), bootLog)
	if err != nil {
		return nil, newError(KindBootFailed, err, "opening the console log")
	}
	sb := &Sandbox{
		cfg: cfg, img: img, accel: plan.accel, token: token, port: port, guestPort: guestPort,
		spec: spec, workdir: workdir, console: serial, qemuStderr: &tailBuffer{max: 16 << 10}, exited: make(chan struct{}),
		tags: map[string]bool{},
	}
	sb.hostFolders = []hostFolder{{"the work folder", cfg.WorkDir}}
	if plan.ramFile != "" {
		sb.hostFolders = append([]hostFolder{{"the template folder", cfg.TemplateDir}}, sb.hostFolders...)
	}
	sb.alive, sb.markDead = context.WithCancelCause(context.Background())
	sb.epoch, sb.endEpoch = context.WithCancelCause(context.Background())
	agentToken := token
	if plan.from != nil && !plan.from.sealed {
		agentToken = plan.from.token // until /resume hands it the new one
	}
	sb.client = agent.New(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), agentToken)

	sb.cmd = exec.Command(plan.binary, spec.Args()...)
	sb.cmd.Dir = workdir.path
	sb.cmd.Stderr = sb.qemuStderr
	stdout, err := sb.cmd.StdoutPipe()
	if err != nil {
		return nil, newError(KindBootFailed, err, "connecting to the console")
	}
	start := proc.Start
	if spec.Accel == string(AccelTCG) {
		start = proc.StartWithoutHugePages
	}
	if err := start(sb.cmd); err != nil {
		return nil, newError(KindBootFailed, err, "starting %s", plan.binary)
	}
	sb.timing.QEMUStarted = time.Since(plan.began)
	go serial.run(stdout)
	go sb.supervise()
	if spec.GuardOut != "" {
		if err := sb.startGuard(ctx, plan.began.Add(plan.limit)); err != nil {
			sb.kill()
			return nil, err
		}
	}

	bootCtx, cancel := context.WithDeadline(ctx, plan.began.Add(plan.limit))
	defer cancel()
	if plan.from != nil {
		err = sb.resume(bootCtx, plan.from)
	} else if err = sb.waitReady(bootCtx, plan.began); err == nil {
		sb.linkMux()
	}
	if err != nil {
		sb.kill()
		if m := forwardRefused.FindStringSubmatch(sb.qemuStderr.String()); m != nil {
			taken, _ := strconv.Atoi(m[1])
			return nil, &portTaken{port: taken, agents: taken == port, err: err}
		}
		// An error that is already a boot error carries the console's
		// tail: wrapping it again would print the tail twice.
		if ctx.Err() == nil && bootCtx.Err() != nil && KindOf(err) != KindBootFailed && KindOf(err) != KindBootTimeout {
			return nil, sb.bootError(KindBootTimeout, err, "the agent was not ready within %v", plan.limit)
		}
		return nil, err
	}
	os.Remove(spec.TokenFile)
	sb.connectChannel()
	if err := sb.setUpVNC(bootCtx); err != nil {
		sb.kill()
		return nil, err
	}
	if plan.from == nil {
		if err := sb.waitForDesktop(ctx, desktopStartLimit); err != nil {
			sb.kill()
			return nil, err
		}
	}
	return sb, nil
}

// diskBase is the file a sandbox's disk overlay is made over.
type diskBase struct{ path, format string }

// coldBootSettings are what a boot of the kernel adds to spec: the kernel
// command line (the agent's port; the token too for Quicksand's agent,
// which reads it nowhere else: docs/security.md), over the image's root
// disk. The agent listens on the same port in the guest as on the host.
func coldBootSettings(ctx context.Context, spec *qemu.Spec, plan launchPlan, token string, port int) (diskBase, int, error) {
	img := plan.img
	// The format image.Load read from the disk itself, never QEMU's guess:
	// a raw disk QEMU takes for a VMDK descriptor names host files.
	disk := diskBase{path: img.RootFSPath(), format: img.RootFormat}
	kargs := append(strings.Fields(img.Manifest.KernelArgs), protocol.CmdlinePort+"="+strconv.Itoa(port))
	if img.Manifest.Agent == image.AgentQuicksand {
		kargs = append(kargs, protocol.CmdlineToken+"="+token)
	}
	spec.Append = strings.Join(append(kargs, plan.cfg.ExtraKernelArgs...), " ")
	return disk, port, nil
}

// resumeSettings are what resuming a snapshot adds to spec: the machine as
// it was booted (command line, memory, CPUs, RAM file) waiting for its
// state, a new VM generation id, over the snapshot's disk. The agent
// listens on the port it listened on then.
func resumeSettings(spec *qemu.Spec, src *snapshotSource) (diskBase, int, error) {
	spec.Append, spec.MemoryMiB, spec.CPUs = withoutCmdlineToken(src.append), src.memoryMiB, src.cpus
	spec.RAMFile, spec.RAMShared = src.ramFile, false
	spec.Incoming = true
	var err error
	if spec.VMGenID, err = newUUID(); err != nil {
		return diskBase{}, 0, newError(KindBootFailed, err, "making a VM generation id")
	}
	return diskBase{path: src.diskPath, format: "qcow2"}, src.guestPort, nil
}

// waitReady waits for the agent's ready line, then for an authenticated
// ping, then connects QMP.
func (sb *Sandbox) waitReady(ctx context.Context, began time.Time) error {
	if sb.img.Manifest.Agent == image.AgentQuicksand {
		// Quicksand's agent prints no ready line: it is ready once it
		// answers. Until the guest listens, each ping fails at once.
		if err := sb.waitPing(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		sb.timing.AgentListening = time.Since(began)
		sb.timing.Ready = sb.timing.AgentListening
		return sb.connectQMP(ctx)
	}
	select {
	case <-sb.console.ready:
	case <-sb.exited:
		return sb.bootError(KindBootFailed, nil, "QEMU exited before the agent was ready")
	case <-ctx.Done():
		return sb.ctxError(ctx)
	}
	initAt, readyAt := sb.console.times()
	if !initAt.IsZero() {
		sb.timing.KernelBooted = initAt.Sub(began)
	}
	sb.timing.AgentListening = readyAt.Sub(began)
	if err := sb.waitPing(ctx, 10*time.Millisecond); err != nil {
		return err
	}
	sb.timing.Ready = time.Since(began)
	return sb.connectQMP(ctx)
}

// resume loads a snapshot into the paused VM, lets it run, and hands the
// agent a fresh token, the host's clock and fresh randomness.
func (sb *Sandbox) resume(ctx context.Context, src *snapshotSource) error {
	began := time.Now().Add(-sb.timing.QEMUStarted)
	sb.timing.Warm = true
	if err := sb.connectQMP(ctx); err != nil {
		return err
	}
	sb.warmSteps.qmpConnected = time.Since(began)
	// The link's hello waits in QEMU until the VM runs: the agent, frozen
	// in a read of the port, answers it at once.
	sb.linkMux()
	fail := func(err error, what string) error {
		if ctx.Err() != nil {
			return sb.bootError(KindBootTimeout, ctx.Err(), "resuming the %s: %s: not done within the boot timeout", src.what, what)
		}
		return sb.bootError(KindBootFailed, err, "resuming the %s: %s", src.what, what)
	}
	if err := setIgnoreShared(ctx, sb.qmp); err != nil {
		return fail(err, "setting migration capabilities")
	}
	// From here on a failure is the snapshot's (blameSnapshot): its state
	// did not load, or what it held did not run.
	if _, err := sb.qmp.Execute(ctx, "migrate-incoming", map[string]string{"uri": "exec:cat " + shellQuote(src.statePath)}); err != nil {
		return blameSnapshot(fail(err, "loading its state"))
	}
	if err := sb.qmp.WaitMigration(ctx); err != nil {
		return blameSnapshot(fail(err, "loading its state"))
	}
	sb.warmSteps.stateLoaded = time.Since(began)
	if _, err := sb.qmp.Execute(ctx, "cont", nil); err != nil {
		return blameSnapshot(fail(err, "letting it run"))
	}
	sb.timing.AgentListening = time.Since(began)
	if src.mux && muxWanted() {
		// The rekey is the clone's first call: over the link, which its
		// agent is known to serve (the template's was up), however long
		// a busy host takes to answer the hello (within the boot timeout
		// and the link's own limit); over the port forward only if the
		// link fails. Giving up on the link sooner (it was 2 s) sent the
		// rekey of a crowded host's clones over both at once, doubling
		// the guests' work: 50 starts at once on 2 cores fell back on 23
		// to 50 of them.
		sb.muxUp(ctx)
	}
	if _, err := sb.rekey(ctx, 0); err != nil {
		return blameSnapshot(err)
	}
	sb.timing.Ready = time.Since(began)
	return nil
}

// rekey tells the agent its VM was resumed: the sandbox's own token from
// now on, the host's time, fresh randomness; and, when channelSync is not
// 0, to write a sync frame with that nonce on the output channel (synced
// says it did). Retries while the resumed guest's network settles.
func (sb *Sandbox) rekey(ctx context.Context, channelSync uint64) (synced bool, err error) {
	seed := make([]byte, 64)
	if _, err := rand.Read(seed); err != nil {
		return false, sb.bootError(KindBootFailed, err, "making a seed")
	}
	// Each try waits longer: on a crowded host the first answer can take
	// seconds, and a try given up on may still have been carried out. A
	// try over the mux link is not given up on: nothing on the link is
	// lost, and a second request would only add to a busy guest's work.
	wait := time.Second
	for {
		req := protocol.ResumeRequest{Token: sb.token, SeedB64: base64.StdEncoding.EncodeToString(seed), TimeUnixNano: time.Now().UnixNano(), ChannelSync: channelSync}
		var rctx context.Context
		var cancel context.CancelFunc
		if sb.muxCarries() {
			rctx, cancel = context.WithCancel(ctx)
		} else {
			rctx, cancel = context.WithTimeout(ctx, wait)
		}
		res, err := sb.client.Resume(rctx, req)
		cancel()
		wait = min(2*wait, 8*time.Second)
		if err != nil {
			sb.cfg.Logger.Debug("the resumed agent did not take its new token yet: retrying", "err", err)
		}
		if err == nil {
			sb.client.SetToken(sb.token)
			return res.ChannelSynced, nil
		}
		var se *agent.StatusError
		if errors.As(err, &se) {
			// Refused: perhaps an earlier try that we gave up on did get
			// through, and the agent already holds the new token (and
			// wrote the sync frame, which cannot be known here).
			sb.client.SetToken(sb.token)
			if sb.waitPing(ctx, 10*time.Millisecond) == nil {
				return channelSync != 0, nil
			}
			return false, sb.bootError(KindAuth, err, "the resumed agent refused its token")
		}
		select {
		case <-sb.exited:
			return false, sb.bootError(KindBootFailed, err, "QEMU exited before the resumed agent answered")
		case <-ctx.Done():
			return false, sb.bootError(KindBootTimeout, err, "the resumed agent did not answer within the boot timeout (last try: %v)", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitPing pings, pause apart, until the agent answers with the sandbox's
// token.
func (sb *Sandbox) waitPing(ctx context.Context, pause time.Duration) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := sb.client.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		var se *agent.StatusError
		if errors.As(err, &se) && se.Status == 401 {
			return sb.bootError(KindAuth, err, "the agent refused the sandbox's token")
		}
		select {
		case <-sb.exited:
			return sb.bootError(KindBootFailed, err, "QEMU exited before the agent answered")
		case <-ctx.Done():
			return sb.ctxError(ctx)
		case <-time.After(pause):
		}
	}
}

// connectQMP connects to QEMU's monitor, giving up when QEMU exits: one
// that exits at once (a port forward it could not set up) never makes the
// socket, and the dial waited for the whole boot timeout.
func (sb *Sandbox) connectQMP(ctx context.Context) error {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(sb.alive, cancel)()
	q, err := qemu.DialQMP(dctx, sb.spec.QMPSocket)
	if err != nil {
		if ctx.Err() != nil {
			return sb.ctxError(ctx)
		}
		if sb.alive.Err() != nil {
			<-sb.exited // its stderr is complete then
			return sb.bootError(KindBootFailed, err, "QEMU exited before its monitor answered")
		}
		return sb.bootError(KindBootFailed, err, "connecting to QEMU's monitor")
	}
	sb.qmp = q
	return nil
}

// ctxError says why a boot step's context ended: the caller cancelled, or
// the boot deadline passed.
func (sb *Sandbox) ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return sb.bootError(KindBootTimeout, ctx.Err(), "the agent was not ready within %v", sb.cfg.BootTimeout)
	}
	return sb.bootError(KindCancelled, ctx.Err(), "start cancelled")
}

// setIgnoreShared makes migration skip RAM that lives in a shared file (a
// template being written) and is a no-op for private RAM. It must be set on
// both ends of a template's stream.
func setIgnoreShared(ctx context.Context, q *qemu.QMP) error {
	_, err := q.Execute(ctx, "migrate-set-capabilities", map[string]any{
		"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": true}},
	})
	return err
}

// writeState writes the paused VM's state (devices, and RAM that is not in
// a shared file) to path as a migration stream.
func (sb *Sandbox) writeState(ctx context.Context, path string) error {
	if err := setIgnoreShared(ctx, sb.qmp); err != nil {
		return err
	}
	if _, err := sb.qmp.Execute(ctx, "migrate", map[string]string{"uri": "exec:cat > " + shellQuote(path)}); err != nil {
		return err
	}
	return sb.qmp.WaitMigration(ctx)
}

// createOverlay makes a qcow2 file over backing, so the sandbox writes only
// to its own file.
func createOverlay(ctx context.Context, qemuBinary, backing, backingFormat, overlay string) error {
	out, err := exec.CommandContext(ctx, qemuImg(qemuBinary), "create", "-q", "-f", "qcow2",
		"-b", backing, "-F", backingFormat, overlay).CombinedOutput()
	if err != nil {
		return errors.Wrapf(err, "qemu-img: %s", strings.TrimSpace(string(out)))
	}
	return nil
}

// qemuImg finds qemu-img beside the QEMU binary, else on PATH.
func qemuImg(qemuBinary string) string {
	p := filepath.Join(filepath.Dir(qemuBinary), "qemu-img")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "qemu-img"
}

func newUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// shellQuote quotes a path for the sh -c that QEMU's exec: migration runs.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// withoutCmdlineToken drops a token from a kernel command line recorded by
// an older version, which put it there: a resumed kernel does not read its
// command line again, and QEMU's is readable by every local user.
func withoutCmdlineToken(cmdline string) string {
	words := strings.Fields(cmdline)
	kept := words[:0]
	for _, w := range words {
		if !strings.HasPrefix(w, protocol.CmdlineToken+"=") {
			kept = append(kept, w)
		}
	}
	return strings.Join(kept, " ")
}
