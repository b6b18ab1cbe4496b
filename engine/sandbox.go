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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/errors"

	"github.com/quicksand-go/quicksand/engine/agent"
	"github.com/quicksand-go/quicksand/engine/image"
	"github.com/quicksand-go/quicksand/engine/qemu"
)

const (
	// stopGrace is how long QEMU gets to exit on SIGTERM before SIGKILL.
	stopGrace = 3 * time.Second
	// kvmBootLimit bounds a boot under an automatically chosen hardware
	// accelerator before auto falls back to TCG: such boots take well under
	// a second when the accelerator works.
	kvmBootLimit = 10 * time.Second
	// portAttempts covers the race between choosing a free port and QEMU
	// binding it.
	portAttempts = 3
)

// BootTiming says how long each phase of the start took, each measured from
// the moment Start was called.
type BootTiming struct {
	QEMUStarted    time.Duration // the QEMU process was running
	KernelBooted   time.Duration // the initrd's /init announced itself
	AgentListening time.Duration // the agent printed its ready line
	Ready          time.Duration // an authenticated /ping succeeded
}

// Sandbox is one running VM. Its methods are safe to call from many
// goroutines at once.
type Sandbox struct {
	cfg    Config
	img    *image.Image
	accel  Accel
	token  string
	port   int
	wd     *workdir
	cmd    *exec.Cmd
	cons   *console
	qerr   *tailBuffer
	client *agent.Client
	timing BootTiming

	// alive ends when the VM is gone, with the reason as its cause; every
	// call in flight is derived from it and so ends at once.
	alive    context.Context
	markDead context.CancelCauseFunc
	exited   chan struct{} // closed once QEMU has been waited for

	stopOnce sync.Once
}

// Start boots a sandbox and returns once its agent answers. ctx bounds the
// whole start; cancelling it stops the VM being started.
func Start(ctx context.Context, cfg Config) (*Sandbox, error) {
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
		return nil, newError(KindBootFailed, err, "finding QEMU for %s guests (run `make deps`, or install the qemu-system package)", img.Manifest.Arch)
	}

	accel := cfg.Accel
	auto := accel == AccelAuto
	if auto {
		if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
			return nil, newError(KindBootFailed, err, "making the work folder")
		}
		accel = Accel(qemu.ChooseAuto(ctx, binary, img.Manifest.Arch, img.KernelPath(), cfg.WorkDir))
	}
	limit := cfg.BootTimeout
	if auto && accel != AccelTCG {
		limit = min(limit, kvmBootLimit)
	}
	sb, err := boot(ctx, cfg, img, binary, accel, limit, began)
	if err != nil && auto && accel != AccelTCG && ctx.Err() == nil {
		// The probe passed but the real boot did not: do without.
		sb, err = boot(ctx, cfg, img, binary, AccelTCG, cfg.BootTimeout, began)
	}
	return sb, err
}

// boot starts QEMU, retrying when the chosen host port was taken meanwhile.
func boot(ctx context.Context, cfg Config, img *image.Image, binary string, accel Accel, limit time.Duration, began time.Time) (*Sandbox, error) {
	var err error
	for attempt := 0; attempt < portAttempts; attempt++ {
		var sb *Sandbox
		sb, err = bootOnce(ctx, cfg, img, binary, accel, limit, began)
		if err == nil {
			return sb, nil
		}
		if !strings.Contains(err.Error(), "host forwarding rule") {
			break
		}
	}
	return nil, err
}

func bootOnce(ctx context.Context, cfg Config, img *image.Image, binary string, accel Accel, limit time.Duration, began time.Time) (_ *Sandbox, err error) {
	wd, err := newWorkdir(cfg.WorkDir)
	if err != nil {
		return nil, newError(KindBootFailed, err, "preparing the sandbox")
	}
	defer func() {
		if err != nil {
			wd.remove()
		}
	}()
	token, err := newToken()
	if err != nil {
		return nil, newError(KindBootFailed, err, "making a token")
	}
	port, err := freePort()
	if err != nil {
		return nil, newError(KindBootFailed, err, "choosing a host port")
	}
	overlay := wd.file("overlay.qcow2")
	if err := createOverlay(ctx, binary, img.RootFSPath(), overlay); err != nil {
		return nil, newError(KindBootFailed, err, "creating the disk overlay")
	}

	forwards := []qemu.Forward{{Host: port, Guest: port}}
	for _, pf := range cfg.PortForwards {
		forwards = append(forwards, qemu.Forward{Host: pf.Host, Guest: pf.Guest})
	}
	kargs := append(strings.Fields(img.Manifest.KernelArgs),
		"quicksand_token="+token, "quicksand_port="+strconv.Itoa(port))
	kargs = append(kargs, cfg.ExtraKernelArgs...)
	spec := qemu.Spec{
		Arch: img.Manifest.Arch, Accel: string(accel),
		MemoryMiB: cfg.MemoryMiB, CPUs: cfg.CPUs,
		Kernel: img.KernelPath(), Initrd: img.InitrdPath(), Append: strings.Join(kargs, " "),
		Disk: overlay, Forwards: forwards, Restricted: cfg.Network == NetworkRestricted,
		Extra: cfg.ExtraQEMUArgs,
	}

	cons, err := newConsole(wd.file("console.log"))
	if err != nil {
		return nil, newError(KindBootFailed, err, "opening the console log")
	}
	sb := &Sandbox{
		cfg: cfg, img: img, accel: accel, token: token, port: port, wd: wd,
		cons: cons, qerr: &tailBuffer{max: 16 << 10}, exited: make(chan struct{}),
		client: agent.New(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), token),
	}
	sb.alive, sb.markDead = context.WithCancelCause(context.Background())

	sb.cmd = exec.Command(binary, spec.Args()...)
	sb.cmd.Dir = wd.path
	sb.cmd.Stderr = sb.qerr
	stdout, err := sb.cmd.StdoutPipe()
	if err != nil {
		return nil, newError(KindBootFailed, err, "connecting to the console")
	}
	sb.cmd.SysProcAttr = processAttrs()
	if err := startProcess(sb.cmd); err != nil {
		return nil, newError(KindBootFailed, err, "starting %s", binary)
	}
	sb.timing.QEMUStarted = time.Since(began)
	go cons.run(stdout)
	go sb.supervise()

	if err := sb.waitReady(ctx, limit, began); err != nil {
		sb.kill()
		return nil, err
	}
	return sb, nil
}

// supervise waits for QEMU and marks the sandbox dead when it exits.
func (sb *Sandbox) supervise() {
	<-sb.cons.finished // Wait closes the pipe; read it to the end first
	werr := sb.cmd.Wait()
	reason := "QEMU exited"
	if werr != nil {
		reason = "QEMU exited: " + werr.Error()
	}
	sb.markDead(errors.New(reason))
	close(sb.exited)
}

// waitReady waits for the agent's ready line and then for an authenticated
// ping.
func (sb *Sandbox) waitReady(ctx context.Context, limit time.Duration, began time.Time) error {
	deadline := time.NewTimer(limit - time.Since(began))
	defer deadline.Stop()
	select {
	case <-sb.cons.ready:
	case <-sb.exited:
		return sb.bootError(KindBootFailed, nil, "QEMU exited before the agent was ready")
	case <-deadline.C:
		return sb.bootError(KindBootTimeout, nil, "the agent was not ready within %v", limit)
	case <-ctx.Done():
		return sb.bootError(KindCancelled, ctx.Err(), "start cancelled")
	}
	initAt, readyAt := sb.cons.times()
	if !initAt.IsZero() {
		sb.timing.KernelBooted = initAt.Sub(began)
	}
	sb.timing.AgentListening = readyAt.Sub(began)

	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := sb.client.Ping(pctx)
		cancel()
		if err == nil {
			sb.timing.Ready = time.Since(began)
			return nil
		}
		var se *agent.StatusError
		if errors.As(err, &se) && se.Status == 401 {
			return sb.bootError(KindAuth, err, "the agent refused the sandbox's token")
		}
		select {
		case <-sb.exited:
			return sb.bootError(KindBootFailed, err, "QEMU exited before the agent answered")
		case <-deadline.C:
			return sb.bootError(KindBootTimeout, err, "the agent did not answer within %v", limit)
		case <-ctx.Done():
			return sb.bootError(KindCancelled, ctx.Err(), "start cancelled")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// bootError adds the console's and QEMU's last words to a boot failure.
func (sb *Sandbox) bootError(kind Kind, cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if t := sb.cons.Tail(); t != "" {
		msg += "\n--- last console lines ---\n" + t
	}
	if t := sb.qerr.String(); t != "" {
		msg += "\n--- QEMU stderr ---\n" + t
	}
	return &Error{Kind: kind, Msg: msg, Err: cause}
}

// kill ends QEMU at once and cleans up.
func (sb *Sandbox) kill() {
	sb.markDead(errors.New("the sandbox was stopped"))
	_ = sb.cmd.Process.Kill()
	<-sb.exited
	sb.client.Close()
	sb.wd.remove()
}

// Stop shuts the VM down (SIGTERM, then SIGKILL after a grace period or when
// ctx ends), waits for QEMU and removes the sandbox's folder. Calls in
// flight fail with a "not running" error. Safe to call more than once and
// from several goroutines; later calls wait for the first and return nil.
func (sb *Sandbox) Stop(ctx context.Context) error {
	var err error
	sb.stopOnce.Do(func() {
		sb.markDead(errors.New("the sandbox was stopped"))
		_ = sb.cmd.Process.Signal(syscall.SIGTERM)
		grace := time.NewTimer(stopGrace)
		defer grace.Stop()
		select {
		case <-sb.exited:
		case <-grace.C:
		case <-ctx.Done():
		}
		_ = sb.cmd.Process.Kill()
		<-sb.exited
		sb.client.Close()
		if rerr := sb.wd.remove(); rerr != nil {
			err = newError(KindUnknown, rerr, "cleaning up after the sandbox")
		}
	})
	<-sb.exited
	return err
}

// Wait blocks until the VM has exited (after Stop, or when it dies).
func (sb *Sandbox) Wait() { <-sb.exited }

// IsRunning reports whether the VM is up and not stopped.
func (sb *Sandbox) IsRunning() bool { return sb.alive.Err() == nil }

// Accelerator is the accelerator the VM runs on ("kvm", "hvf" or "tcg").
func (sb *Sandbox) Accelerator() Accel { return sb.accel }

// BootTiming says how long each phase of the start took.
func (sb *Sandbox) BootTiming() BootTiming { return sb.timing }

// ConsoleLog returns the guest's serial console output so far (up to 16 MiB).
func (sb *Sandbox) ConsoleLog() ([]byte, error) {
	b, err := os.ReadFile(sb.wd.file("console.log"))
	if err != nil && !sb.IsRunning() {
		return nil, newError(KindNotRunning, err, "reading the console log")
	}
	return b, err
}

// Arch is the guest's architecture ("x86_64" or "arm64").
func (sb *Sandbox) Arch() string { return sb.img.Manifest.Arch }

// AgentAddr is the host address of the agent's port forward (for tools
// that speak the agent protocol themselves) and Token the secret it wants.
func (sb *Sandbox) AgentAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(sb.port)) }
func (sb *Sandbox) Token() string     { return sb.token }

// PID is the QEMU process id.
func (sb *Sandbox) PID() int { return sb.cmd.Process.Pid }

func newToken() (string, error) {
	b := make([]byte, 32) // 256 bits
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// createOverlay makes a qcow2 file whose backing file is the image's root
// disk, so the sandbox writes only to its own file.
func createOverlay(ctx context.Context, qemuBinary, backing, overlay string) error {
	qemuImg := filepath.Join(filepath.Dir(qemuBinary), "qemu-img")
	if _, err := os.Stat(qemuImg); err != nil {
		if qemuImg, err = exec.LookPath("qemu-img"); err != nil {
			return errors.Wrap(err, "finding qemu-img (install qemu-utils)")
		}
	}
	out, err := exec.CommandContext(ctx, qemuImg, "create", "-q", "-f", "qcow2",
		"-b", backing, "-F", "raw", overlay).CombinedOutput()
	if err != nil {
		return errors.Wrapf(err, "qemu-img: %s", strings.TrimSpace(string(out)))
	}
	return nil
}
