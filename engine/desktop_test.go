package engine

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The desktop on real VMs: debian-desktop with a display, driven from the
// host through QEMU's monitor.

var desktopConfig = Config{Image: "debian-desktop", MemoryMiB: 1536, Display: &Display{}}

func screenshot(t *testing.T, sb *Sandbox) image.Image {
	t.Helper()
	raw, err := sb.Screenshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	return img
}

// colours counts the distinct colours of an image (every 4th pixel).
func colours(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r, g, bl}] = true
		}
	}
	return len(seen)
}

// differing is the share of pixels (every 4th) that differ between a and b.
func differing(a, b image.Image) float64 {
	var n, diff int
	bd := a.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y += 4 {
		for x := bd.Min.X; x < bd.Max.X; x += 4 {
			n++
			if a.At(x, y) != b.At(x, y) {
				diff++
			}
		}
	}
	return float64(diff) / float64(n)
}

// until polls cond every 250 ms up to limit.
func until(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestDesktop(t *testing.T) {
	t.Parallel() // a VM of its own, CPU-bound under emulation: two at once use both cores
	ctx := context.Background()
	sb := startSandbox(t, desktopConfig)

	t.Run("screenshot", func(t *testing.T) {
		img := screenshot(t, sb)
		if b := img.Bounds(); b.Dx() != DefaultDisplayWidth || b.Dy() != DefaultDisplayHeight {
			t.Fatalf("a %v screenshot, want %dx%d", b, DefaultDisplayWidth, DefaultDisplayHeight)
		}
		if n := colours(img); n < 3 {
			t.Fatalf("the desktop has %d colours: no taskbar drawn", n)
		}
		w, h, err := sb.DisplaySize(ctx)
		if err != nil || w != DefaultDisplayWidth || h != DefaultDisplayHeight {
			t.Errorf("DisplaySize: %d %d %v", w, h, err)
		}
		path := filepath.Join(t.TempDir(), "s.png")
		if err := sb.SaveScreenshot(ctx, path); err != nil {
			t.Error(err)
		}
	})
	if err := sb.Checkpoint(ctx, "bare"); err != nil {
		t.Fatal(err)
	}
	bare := screenshot(t, sb)

	t.Run("terminal by keyboard", func(t *testing.T) {
		if err := sb.PressKey(ctx, "ctrl", "alt", "t"); err != nil {
			t.Fatal(err)
		}
		until(t, 2*time.Minute, "an xterm window", func() bool {
			r, err := sb.Execute(ctx, ExecRequest{Command: "DISPLAY=:0 xprop -root _NET_ACTIVE_WINDOW | grep -q 'window id # 0x[1-9a-f]' && pgrep -x xterm"})
			return err == nil && r.ExitCode == 0
		})
		time.Sleep(2 * time.Second) // its shell's prompt
		if err := sb.TypeText(ctx, "echo hello > /tmp/typed\n"); err != nil {
			t.Fatal(err)
		}
		until(t, time.Minute, "/tmp/typed", func() bool {
			r, err := sb.Execute(ctx, ExecRequest{Command: "cat /tmp/typed"})
			return err == nil && string(r.Stdout) == "hello\n"
		})
		if d := differing(bare, screenshot(t, sb)); d < 0.01 {
			t.Errorf("with a terminal open, %.3f of the screen changed", d)
		}
	})
	t.Run("revert brings the earlier screen back", func(t *testing.T) {
		if err := sb.Revert(ctx, "bare"); err != nil {
			t.Fatal(err)
		}
		if d := differing(bare, screenshot(t, sb)); d > 0.001 {
			t.Errorf("after the revert %.4f of the screen differs from the checkpoint's", d)
		}
	})
	t.Run("a click changes the screen", func(t *testing.T) {
		// The taskbar's Menu button is at the bottom left.
		if err := sb.MouseMove(ctx, 20, DefaultDisplayHeight-15); err != nil {
			t.Fatal(err)
		}
		if x, y := sb.MousePosition(); x != 20 || y != DefaultDisplayHeight-15 {
			t.Errorf("MousePosition: %d %d", x, y)
		}
		if err := sb.MouseClick(ctx, ButtonLeft, false); err != nil {
			t.Fatal(err)
		}
		until(t, time.Minute, "the menu drawn", func() bool { return differing(bare, screenshot(t, sb)) > 0.005 })
		if err := sb.PressKey(ctx, "Escape"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		if err := sb.TypeText(ctx, "naïve"); KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "'ï'") {
			t.Errorf("typing a character with no key: %v", err)
		}
		if err := sb.PressKey(ctx, "ctrl", "Hyper_Q"); KindOf(err) != KindBadRequest {
			t.Errorf("an unknown key: %v", err)
		}
		if err := sb.MouseMove(ctx, DefaultDisplayWidth, 0); KindOf(err) != KindBadRequest {
			t.Errorf("off the screen: %v", err)
		}
		if err := sb.MouseClick(ctx, "fourth", false); KindOf(err) != KindBadRequest {
			t.Errorf("an unknown button: %v", err)
		}
		if _, err := sb.VNC(); KindOf(err) != KindBadRequest {
			t.Errorf("VNC when it is off: %v", err)
		}
		if err := sb.Scroll(ctx, 0, 3); err != nil {
			t.Errorf("scrolling: %v", err)
		}
	})
}

// A warm-started (or pooled) desktop answers a screenshot at once, with
// the desktop drawn (the template was taken once it was up), a save takes
// the screen with it, and a display needs an image with a desktop.
func TestDesktopWarmStartPoolSaveAndErrors(t *testing.T) {
	t.Parallel() // a VM of its own, CPU-bound under emulation: two at once use both cores
	ctx := context.Background()
	startSandbox(t, desktopConfig).Stop(ctx) // the template, if it is not there yet
	began := time.Now()
	sb := startSandbox(t, desktopConfig)
	img := screenshot(t, sb)
	t.Logf("warm start and a screenshot in %v", time.Since(began))
	if n := colours(img); n < 3 {
		t.Errorf("a warm-started desktop's first screenshot has %d colours", n)
	}

	// A pool hands out desktops as ready as a warm start's.
	pool, err := NewPool(desktopConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pooled, err := pool.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pooled.Stop(ctx)
	if n := colours(screenshot(t, pooled)); n < 3 {
		t.Errorf("a pooled desktop's first screenshot has %d colours", n)
	}
	// A save takes the screen with it: resumed without asking for a
	// display, the sandbox has the saved one, as it was.
	if err := sb.PressKey(ctx, "ctrl", "alt", "t"); err != nil {
		t.Fatal(err)
	}
	until(t, 2*time.Minute, "an xterm", func() bool {
		r, err := sb.Execute(ctx, ExecRequest{Command: "pgrep -x xterm"})
		return err == nil && r.ExitCode == 0
	})
	time.Sleep(2 * time.Second)
	saved := screenshot(t, sb)
	dir, err := sb.Save(ctx, filepath.Join(t.TempDir(), "desk"))
	if err != nil {
		t.Fatal(err)
	}
	resumed := startSandbox(t, Config{Image: dir})
	if d := differing(saved, screenshot(t, resumed)); d > 0.001 {
		t.Errorf("the resumed save's screen differs from the saved one by %.4f", d)
	}
	if err := resumed.TypeText(ctx, "exit\n"); err != nil {
		t.Error(err)
	}

	_, err = Start(ctx, Config{Display: &Display{}})
	if KindOf(err) != KindInvalidConfig || !strings.Contains(err.Error(), "no desktop") {
		t.Errorf("a display on the default image: %v", err)
	}
	if _, err := Start(ctx, Config{Image: "debian-desktop", Display: &Display{Width: 100, Height: 100}}); KindOf(err) != KindInvalidConfig {
		t.Errorf("a 100x100 display: %v", err)
	}
	plain := sharedSandbox(t)
	if _, err := plain.Screenshot(ctx); KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "no display") {
		t.Errorf("a screenshot without a display: %v", err)
	}
}

// VNC: off by default; when on, on 127.0.0.1 with a password of the
// sandbox's own, which a client must give (the server asks for VNC
// authentication, security type 2).
func TestDesktopVNC(t *testing.T) {
	cfg := desktopConfig
	cfg.Display = &Display{VNC: true}
	sb := startSandbox(t, cfg)
	info, err := sb.VNC()
	if err != nil || info.Port < 5900 || len(info.Password) != 8 {
		t.Fatalf("VNC: %+v %v", info, err)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", info.Port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	version := make([]byte, 12)
	if _, err := c.Read(version); err != nil || !strings.HasPrefix(string(version), "RFB ") {
		t.Fatalf("not a VNC server: %q %v", version, err)
	}
	c.Write([]byte("RFB 003.008\n"))
	types := make([]byte, 8)
	n, _ := c.Read(types)
	if n < 2 || !bytes.Contains(types[1:n], []byte{2}) || bytes.Contains(types[1:n], []byte{1}) {
		t.Errorf("security types %v: want VNC authentication (2) and not none (1)", types[:n])
	}
}

// The browser opens a page served from the host's loopback, and the screen
// shows it: the page is one colour, which the screenshot then holds.
func TestDesktopBrowser(t *testing.T) {
	t.Parallel() // a VM of its own, CPU-bound under emulation: two at once use both cores
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<html><body style="background:#ff00ff;margin:0"><h1>quicksand</h1></body></html>`)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	cfg := desktopConfig
	cfg.Network, cfg.AllowHostLoopback = NetworkFull, true
	sb := startSandbox(t, cfg)
	port := ln.Addr().(*net.TCPAddr).Port
	if _, err := sb.StartProcess(context.Background(), ProcessRequest{
		Command: fmt.Sprintf("DISPLAY=:0 MOZ_DISABLE_CONTENT_SANDBOX=1 firefox-esr --kiosk http://10.0.2.2:%d/", port)}); err != nil {
		t.Fatal(err)
	}
	until(t, 4*time.Minute, "the page on the screen", func() bool {
		img := screenshot(t, sb)
		var magenta, n int
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y += 8 {
			for x := b.Min.X; x < b.Max.X; x += 8 {
				n++
				if r, g, bl, _ := img.At(x, y).RGBA(); r > 0xf000 && g < 0x1000 && bl > 0xf000 {
					magenta++
				}
			}
		}
		return magenta > n/2
	})
}

// Guest root takes the desktop down (X killed, the agent killed): the
// host's screenshots and input go on, through QEMU, with no hang.
func TestDesktopWhenTheGuestKillsIt(t *testing.T) {
	ctx := context.Background()
	sb := startSandbox(t, desktopConfig)
	if _, err := sb.Execute(ctx, ExecRequest{Command: "pkill -9 -x Xorg; pkill -9 -x jwm; true"}); err != nil {
		t.Fatal(err)
	}
	_, _ = sb.Execute(ctx, ExecRequest{Command: "kill -9 $(pgrep -f 'quicksand-agent' | grep -vx 1)", Timeout: 5 * time.Second})
	limited, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i := 0; i < 3; i++ {
		raw, err := sb.Screenshot(limited)
		if err != nil {
			t.Fatalf("a screenshot with X and the agent killed: %v", err)
		}
		if w, h, err := PNGSize(raw); err != nil || w < 320 || h < 200 {
			t.Fatalf("%d %d %v", w, h, err)
		}
		if err := sb.TypeText(limited, "still here\n"); err != nil {
			t.Fatal(err)
		}
		if err := sb.MouseMove(limited, 10, 10); err != nil {
			t.Fatal(err)
		}
	}
	if limited.Err() != nil {
		t.Fatal("the calls needed the test's deadline")
	}
}
