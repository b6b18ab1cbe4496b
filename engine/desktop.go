package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quicksand-go/quicksand/engine/internal/input"
	"github.com/quicksand-go/quicksand/engine/internal/qemu"
)

// The desktop: a screen, a keyboard and a mouse of the VM, driven from the
// host through QEMU's monitor (QMP screendump and input-send-event), not by
// a program in the guest: it keeps working whatever the guest's programs
// do (a hung window manager, a killed agent), the guest cannot fake what
// the host sees, and nothing is installed in the guest for it. The image
// runs the desktop (debian-desktop: X on virtio-gpu, icewm); the VM gets a
// virtio-gpu screen, a virtio keyboard and a virtio tablet (an absolute
// pointer, so a pixel is a pixel).

// Default screen size.
const (
	DefaultDisplayWidth  = 1280
	DefaultDisplayHeight = 800
)

// Display is a sandbox's screen (Config.Display).
type Display struct {
	// Width and Height in pixels (0, 0: 1280x800).
	Width, Height int
	// VNC serves the screen for a person to watch, on 127.0.0.1 only, with
	// a password of the sandbox's own (Sandbox.VNC). Off by default.
	VNC bool
}

// Mouse buttons.
const (
	ButtonLeft   = "left"
	ButtonRight  = "right"
	ButtonMiddle = "middle"
)

// desktopStartLimit bounds a cold boot's wait for its desktop (X and the
// window manager take tens of seconds under emulation).
const desktopStartLimit = 5 * time.Minute

// keyPause is the time between two typed characters: the guest's virtio
// keyboard has a queue of 64 events, which an emulated guest drains more
// slowly than QMP fills it, and QEMU drops what does not fit.
const keyPause = 8 * time.Millisecond

// desktopState is what the host keeps of a display: where it last put the
// pointer (QEMU does not say), the VNC password, screendump file names.
type desktopState struct {
	mu    sync.Mutex
	x, y  int
	dumps atomic.Int64
	vnc   *VNCInfo
}

// VNCInfo says where a person can watch the screen.
type VNCInfo struct {
	Port     int    // on 127.0.0.1
	Password string // VNC passwords are 8 characters at most
}

func (sb *Sandbox) display(what string) (*Display, error) {
	if sb.remote != nil {
		return nil, newError(KindBadRequest, nil, "%s: the desktop of a server's sandbox is not served yet", what)
	}
	if sb.cfg.Display == nil {
		return nil, newError(KindBadRequest, nil, "%s: the sandbox has no display (start it with a display, in an image with a desktop such as debian-desktop)", what)
	}
	if cause := context.Cause(sb.alive); cause != nil {
		return nil, newError(KindNotRunning, cause, "%s", what)
	}
	return sb.cfg.Display, nil
}

// Screenshot returns the screen as a PNG image.
func (sb *Sandbox) Screenshot(ctx context.Context) ([]byte, error) {
	if _, err := sb.display("taking a screenshot"); err != nil {
		return nil, err
	}
	// QEMU writes the file itself, in the sandbox's owner-only folder.
	path := sb.workdir.file(fmt.Sprintf("screen-%d.png", sb.desktop.dumps.Add(1)))
	defer os.Remove(path)
	if _, err := sb.qmp.Execute(ctx, "screendump", map[string]any{"filename": path, "format": "png"}); err != nil {
		return nil, sb.qmpError(ctx, err, "taking a screenshot")
	}
	png, err := os.ReadFile(path)
	if err != nil {
		return nil, newError(KindTransport, err, "reading the screenshot")
	}
	if _, _, err := PNGSize(png); err != nil {
		return nil, newError(KindTransport, err, "the screenshot QEMU wrote")
	}
	return png, nil
}

// SaveScreenshot writes the screen to path as a PNG image.
func (sb *Sandbox) SaveScreenshot(ctx context.Context, path string) error {
	png, err := sb.Screenshot(ctx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return newError(KindBadRequest, err, "writing the screenshot to %s", path)
	}
	return nil
}

// DisplaySize is the screen's size in pixels, as the guest has it now.
func (sb *Sandbox) DisplaySize(ctx context.Context) (width, height int, err error) {
	png, err := sb.Screenshot(ctx)
	if err != nil {
		return 0, 0, err
	}
	return PNGSize(png)
}

// PNGSize reads a PNG image's size from its header.
func PNGSize(png []byte) (width, height int, err error) {
	if len(png) < 24 || !bytes.Equal(png[:8], []byte("\x89PNG\r\n\x1a\n")) || string(png[12:16]) != "IHDR" {
		return 0, 0, fmt.Errorf("not a PNG image (%d bytes)", len(png))
	}
	return int(binary.BigEndian.Uint32(png[16:20])), int(binary.BigEndian.Uint32(png[20:24])), nil
}

// send gives QEMU input events.
func (sb *Sandbox) send(ctx context.Context, what string, events []input.Event) error {
	if _, err := sb.qmp.Execute(ctx, "input-send-event", map[string]any{"events": events}); err != nil {
		return sb.qmpError(ctx, err, what)
	}
	return nil
}

// TypeText types text on the keyboard (US layout: shift where it needs
// it). A character with no key (beyond printable ASCII, newline and tab)
// is an error that names it, before anything is typed.
func (sb *Sandbox) TypeText(ctx context.Context, text string) error {
	if _, err := sb.display("typing"); err != nil {
		return err
	}
	chars, err := input.Type(text)
	if err != nil {
		return newError(KindBadRequest, nil, "typing: %v", err)
	}
	for i, evs := range chars {
		if i > 0 {
			if err := sleepCtx(ctx, keyPause); err != nil {
				return newError(KindCancelled, err, "typing")
			}
		}
		if err := sb.send(ctx, "typing", evs); err != nil {
			return err
		}
	}
	return nil
}

// PressKey presses a key or a combination (PressKey(ctx, "ctrl", "alt",
// "F4")): each down in order, then up in reverse. Keys are X keysym names
// ("Return", "Tab", "Escape", "ctrl", "alt", "shift", "super", "F1".."F12",
// "Page_Up", ...; case does not matter) or one printable character.
func (sb *Sandbox) PressKey(ctx context.Context, keys ...string) error {
	if _, err := sb.display("pressing keys"); err != nil {
		return err
	}
	evs, err := input.Press(keys)
	if err != nil {
		return newError(KindBadRequest, nil, "pressing keys: %v", err)
	}
	return sb.send(ctx, "pressing keys", evs)
}

// MouseMove puts the pointer on pixel (x, y) of the screen (0, 0 is the top
// left corner). Quicksand's mouse_move takes 0..32767 absolute units
// instead: divide by 32767 and multiply by the screen's size to convert.
func (sb *Sandbox) MouseMove(ctx context.Context, x, y int) error {
	d, err := sb.display("moving the mouse")
	if err != nil {
		return err
	}
	if x < 0 || y < 0 || x >= d.Width || y >= d.Height {
		return newError(KindBadRequest, nil, "moving the mouse: (%d, %d) is off the %dx%d screen", x, y, d.Width, d.Height)
	}
	err = sb.send(ctx, "moving the mouse", []input.Event{input.Abs("x", input.ToAbs(x, d.Width)), input.Abs("y", input.ToAbs(y, d.Height))})
	if err == nil {
		sb.desktop.mu.Lock()
		sb.desktop.x, sb.desktop.y = x, y
		sb.desktop.mu.Unlock()
	}
	return err
}

// MousePosition is where MouseMove last put the pointer ((0, 0) before
// any): QEMU does not report the guest's pointer, and the host moves it.
func (sb *Sandbox) MousePosition() (x, y int) {
	sb.desktop.mu.Lock()
	defer sb.desktop.mu.Unlock()
	return sb.desktop.x, sb.desktop.y
}

func (sb *Sandbox) button(ctx context.Context, what, name string, down, up bool) error {
	if _, err := sb.display(what); err != nil {
		return err
	}
	b, err := input.ButtonName(name)
	if err != nil {
		return newError(KindBadRequest, nil, "%s: %v", what, err)
	}
	var evs []input.Event
	if down {
		evs = append(evs, input.Button(b, true))
	}
	if up {
		evs = append(evs, input.Button(b, false))
	}
	return sb.send(ctx, what, evs)
}

// MouseClick clicks a button ("left", "right", "middle"; "": left) where
// the pointer is, twice with double.
func (sb *Sandbox) MouseClick(ctx context.Context, button string, double bool) error {
	if err := sb.button(ctx, "clicking", button, true, true); err != nil || !double {
		return err
	}
	if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
		return newError(KindCancelled, err, "clicking")
	}
	return sb.button(ctx, "clicking", button, true, true)
}

// MouseDown presses a button and holds it.
func (sb *Sandbox) MouseDown(ctx context.Context, button string) error {
	return sb.button(ctx, "pressing a mouse button", button, true, false)
}

// MouseUp releases a button.
func (sb *Sandbox) MouseUp(ctx context.Context, button string) error {
	return sb.button(ctx, "releasing a mouse button", button, false, true)
}

// Scroll turns the wheel dy notches down (negative: up) and dx right
// (negative: left), where the pointer is.
func (sb *Sandbox) Scroll(ctx context.Context, dx, dy int) error {
	if _, err := sb.display("scrolling"); err != nil {
		return err
	}
	var evs []input.Event
	notches := func(n int, pos, neg string) {
		b := pos
		if n < 0 {
			b, n = neg, -n
		}
		for range n {
			evs = append(evs, input.Button(b, true), input.Button(b, false))
		}
	}
	notches(dy, "wheel-down", "wheel-up")
	notches(dx, "wheel-right", "wheel-left")
	if len(evs) == 0 {
		return nil
	}
	return sb.send(ctx, "scrolling", evs)
}

// Drag presses the left button at (x1, y1), moves to (x2, y2) and releases
// it there.
func (sb *Sandbox) Drag(ctx context.Context, x1, y1, x2, y2 int) error {
	if err := sb.MouseMove(ctx, x1, y1); err != nil {
		return err
	}
	if err := sb.MouseDown(ctx, ButtonLeft); err != nil {
		return err
	}
	// Through the middle: a drag the guest sees as one jump may not start.
	if err := sb.MouseMove(ctx, (x1+x2)/2, (y1+y2)/2); err != nil {
		return err
	}
	if err := sb.MouseMove(ctx, x2, y2); err != nil {
		return err
	}
	return sb.MouseUp(ctx, ButtonLeft)
}

// VNC says where to watch the screen with a VNC viewer (127.0.0.1 only),
// and the password; an error when the display has no VNC.
func (sb *Sandbox) VNC() (VNCInfo, error) {
	d, err := sb.display("VNC")
	if err != nil {
		return VNCInfo{}, err
	}
	sb.desktop.mu.Lock()
	defer sb.desktop.mu.Unlock()
	if !d.VNC || sb.desktop.vnc == nil {
		return VNCInfo{}, newError(KindBadRequest, nil, "VNC: the sandbox's display has no VNC (Display.VNC)")
	}
	return *sb.desktop.vnc, nil
}

// setUpVNC gives QEMU's VNC server its password (it refuses everyone until
// then) and learns its port. Every QEMU process, a resumed one too, has
// its own of both.
func (sb *Sandbox) setUpVNC(ctx context.Context) error {
	if sb.cfg.Display == nil || !sb.cfg.Display.VNC {
		return nil
	}
	const letters = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	pw := make([]byte, 8)
	for i := range pw {
		var b [1]byte
		_, _ = rand.Read(b[:])
		pw[i] = letters[int(b[0])%len(letters)]
	}
	if _, err := sb.qmp.Execute(ctx, "set_password", map[string]any{"protocol": "vnc", "password": string(pw)}); err != nil {
		return newError(KindBootFailed, err, "setting the VNC password")
	}
	ans, err := sb.qmp.Execute(ctx, "query-vnc", nil)
	if err != nil {
		return newError(KindBootFailed, err, "asking QEMU for its VNC port")
	}
	var info struct {
		Enabled bool   `json:"enabled"`
		Host    string `json:"host"`
		Service string `json:"service"`
	}
	if err := json.Unmarshal(ans, &info); err != nil || !info.Enabled {
		return newError(KindBootFailed, err, "QEMU's VNC server is not on")
	}
	var port int
	if _, err := fmt.Sscan(info.Service, &port); err != nil {
		return newError(KindBootFailed, err, "QEMU's VNC port %q", info.Service)
	}
	sb.desktop.mu.Lock()
	sb.desktop.vnc = &VNCInfo{Port: port, Password: string(pw)}
	sb.desktop.mu.Unlock()
	return nil
}

// waitForDesktop runs the image's desktop_ready command until it says the
// desktop is up: a cold-booted sandbox with a display is handed out (or its
// template taken) only then.
func (sb *Sandbox) waitForDesktop(ctx context.Context, limit time.Duration) error {
	cmd := sb.img.Manifest.DesktopReady
	if sb.cfg.Display == nil || cmd == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		res, err := sb.Execute(ctx, ExecRequest{Command: cmd})
		if err == nil && res.ExitCode == 0 {
			return nil
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			log, _ := sb.Execute(context.Background(), ExecRequest{Command: "tail -n 20 /var/log/quicksand-desktop.log", Timeout: 5 * time.Second})
			tail := ""
			if log != nil {
				tail = string(log.Stdout)
			}
			return newError(KindBootTimeout, err, "the desktop did not come up within %v (%s never passed); the session's log ends:\n%s", limit, cmd, tail)
		}
	}
}

// qmpError says what a failed monitor command means for the caller.
func (sb *Sandbox) qmpError(ctx context.Context, err error, what string) error {
	if cause := context.Cause(sb.alive); cause != nil {
		return newError(KindNotRunning, cause, "%s", what)
	}
	if ctx.Err() != nil {
		return newError(KindCancelled, context.Cause(ctx), "%s", what)
	}
	return newError(KindTransport, err, "%s: QEMU's monitor", what)
}

// checkDisplayImage refuses a display on an image without a desktop.
func checkDisplayImage(cfg Config, name string, desktop bool) error {
	if cfg.Display != nil && !desktop {
		return newError(KindInvalidConfig, nil, "config field display: image %s has no desktop (use debian-desktop, or an image whose manifest says \"desktop\": true)", name)
	}
	return nil
}

// saveDisplay gives a sandbox resumed from a save the screen the save has
// ("WxH", or "" for none): its devices are in the saved state. The caller's
// VNC choice stays; a display asked of a save without one is refused.
func saveDisplay(cfg *Config, saved string) error {
	if saved == "" {
		if cfg.Display != nil {
			return newError(KindInvalidConfig, nil, "config field display: the save was made without a display")
		}
		return nil
	}
	var w, h int
	if _, err := fmt.Sscanf(saved, "%dx%d", &w, &h); err != nil {
		return newError(KindInvalidConfig, err, "the save's display %q", saved)
	}
	vnc := cfg.Display != nil && cfg.Display.VNC
	cfg.Display = &Display{Width: w, Height: h, VNC: vnc}
	return nil
}

// qemuDisplay is the QEMU side of cfg's display.
func qemuDisplay(cfg Config) *qemu.Display {
	if cfg.Display == nil {
		return nil
	}
	return &qemu.Display{Width: cfg.Display.Width, Height: cfg.Display.Height, VNC: cfg.Display.VNC}
}

// sleepCtx waits d, or less when ctx ends (then its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
