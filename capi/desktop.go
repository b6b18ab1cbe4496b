package main

/*
#include "capi.h"
*/
import "C"

import (
	"context"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// The desktop (include/quicksand.h, "Desktop"): each call is the engine's
// of the same name. The engine says what a sandbox without a display, an
// unknown key or button, or a pixel off the screen is.

// desktopCall runs op on the sandbox behind h. The calls take no deadline
// of their own: each is one or a few QEMU monitor commands, which answer
// whatever the guest does.
func desktopCall(h *C.qs_sandbox, errOut **C.qs_error, op func(context.Context, *engine.Sandbox) error) C.qs_status {
	return withSandbox(h, errOut, func(sb *engine.Sandbox) error {
		return op(context.Background(), sb)
	})
}

//export qs_sandbox_screenshot
func qs_sandbox_screenshot(h *C.qs_sandbox, png *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if png != nil {
		png.data, png.len = nil, 0
	}
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		if png == nil {
			return invalidHandle("qs_sandbox_screenshot: png is NULL")
		}
		b, err := sb.Screenshot(ctx)
		if err != nil {
			return err
		}
		setBuffer(png, b)
		return nil
	})
}

// setInts stores a pair of results where the caller asked for them.
func setInts(a, b *C.int, x, y int) {
	if a != nil {
		*a = C.int(x)
	}
	if b != nil {
		*b = C.int(y)
	}
}

//export qs_sandbox_display_size
func qs_sandbox_display_size(h *C.qs_sandbox, width *C.int, height *C.int, errOut **C.qs_error) C.qs_status {
	setInts(width, height, 0, 0)
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		w, ht, err := sb.DisplaySize(ctx)
		if err == nil {
			setInts(width, height, w, ht)
		}
		return err
	})
}

//export qs_sandbox_type_text
func qs_sandbox_type_text(h *C.qs_sandbox, text *C.char, errOut **C.qs_error) C.qs_status {
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		if text == nil {
			return invalidHandle("qs_sandbox_type_text: text is NULL")
		}
		return sb.TypeText(ctx, C.GoString(text))
	})
}

//export qs_sandbox_press_key
func qs_sandbox_press_key(h *C.qs_sandbox, keys *C.uint8_t, keysLen C.size_t, errOut **C.qs_error) C.qs_status {
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		list, err := wire.DecodeKeys(goBytes(keys, keysLen))
		if err != nil {
			return err
		}
		return sb.PressKey(ctx, list...)
	})
}

//export qs_sandbox_mouse_move
func qs_sandbox_mouse_move(h *C.qs_sandbox, x C.int, y C.int, errOut **C.qs_error) C.qs_status {
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		return sb.MouseMove(ctx, int(x), int(y))
	})
}

//export qs_sandbox_mouse_position
func qs_sandbox_mouse_position(h *C.qs_sandbox, x *C.int, y *C.int, errOut **C.qs_error) C.qs_status {
	setInts(x, y, 0, 0)
	return desktopCall(h, errOut, func(_ context.Context, sb *engine.Sandbox) error {
		px, py := sb.MousePosition()
		setInts(x, y, px, py)
		return nil
	})
}

// button is a C button name: NULL is the left one, as "" is.
func button(name *C.char) string {
	if name == nil {
		return ""
	}
	return C.GoString(name)
}

//export qs_sandbox_mouse_click
func qs_sandbox_mouse_click(h *C.qs_sandbox, buttonName *C.char, doubleClick C.int, errOut **C.qs_error) C.qs_status {
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		return sb.MouseClick(ctx, button(buttonName), doubleClick != 0)
	})
}

//export qs_sandbox_mouse_down
func qs_sandbox_mouse_down(h *C.qs_sandbox, buttonName *C.char, errOut **C.qs_error) C.qs_status {
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		return sb.MouseDown(ctx, button(buttonName))
	})
}

//export qs_sandbox_mouse_up
func qs_sandbox_mouse_up(h *C.qs_sandbox, buttonName *C.char, errOut **C.qs_error) C.qs_status {
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		return sb.MouseUp(ctx, button(buttonName))
	})
}

//export qs_sandbox_scroll
func qs_sandbox_scroll(h *C.qs_sandbox, dx C.int, dy C.int, errOut **C.qs_error) C.qs_status {
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		return sb.Scroll(ctx, int(dx), int(dy))
	})
}

//export qs_sandbox_drag
func qs_sandbox_drag(h *C.qs_sandbox, x1 C.int, y1 C.int, x2 C.int, y2 C.int, errOut **C.qs_error) C.qs_status {
	return desktopCall(h, errOut, func(ctx context.Context, sb *engine.Sandbox) error {
		return sb.Drag(ctx, int(x1), int(y1), int(x2), int(y2))
	})
}

//export qs_sandbox_vnc
func qs_sandbox_vnc(h *C.qs_sandbox, info *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if info != nil {
		info.data, info.len = nil, 0
	}
	return desktopCall(h, errOut, func(_ context.Context, sb *engine.Sandbox) error {
		if info == nil {
			return invalidHandle("qs_sandbox_vnc: info is NULL")
		}
		v, err := sb.VNC()
		if err != nil {
			return err
		}
		setBuffer(info, wire.EncodeVNC(v))
		return nil
	})
}
