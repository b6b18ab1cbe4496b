// Package input turns what a program asks of a desktop (text to type, keys
// to press by their X keysym names, pixels to point at) into the input
// events QEMU's monitor takes (input-send-event: QKeyCode names, absolute
// axes of 0..32767, buttons), for a guest keyboard with the US layout.
package input

import (
	"fmt"
	"strings"
	"unicode"
)

// Event is one input-send-event event, as QMP takes it.
type Event map[string]any

// Key is a key going down or up.
func Key(qcode string, down bool) Event {
	return Event{"type": "key", "data": map[string]any{"down": down, "key": map[string]any{"type": "qcode", "data": qcode}}}
}

// Button is a pointer button going down or up: left, right, middle,
// wheel-up, wheel-down, wheel-left, wheel-right.
func Button(name string, down bool) Event {
	return Event{"type": "btn", "data": map[string]any{"down": down, "button": name}}
}

// Abs moves the absolute pointer on one axis ("x" or "y"), 0..AbsMax.
func Abs(axis string, value int) Event {
	return Event{"type": "abs", "data": map[string]any{"axis": axis, "value": value}}
}

// AbsMax is the largest absolute pointer value (QEMU's INPUT_EVENT_ABS_MAX).
const AbsMax = 0x7fff

// ToAbs maps a pixel coordinate on a screen size pixels wide (or high)
// onto the absolute axis, so that pixel 0 is 0 and the last pixel AbsMax.
func ToAbs(pixel, size int) int {
	if size <= 1 {
		return 0
	}
	return (pixel*AbsMax + (size-1)/2) / (size - 1)
}

// unshifted are the printable characters typed without shift, by QKeyCode.
var unshifted = map[rune]string{
	' ': "spc", '-': "minus", '=': "equal", '[': "bracket_left", ']': "bracket_right", '\\': "backslash",
	';': "semicolon", '\'': "apostrophe", '`': "grave_accent", ',': "comma", '.': "dot", '/': "slash",
	'\n': "ret", '\t': "tab",
}

// shifted are the characters typed with shift, by the key under them.
var shifted = map[rune]string{
	'!': "1", '@': "2", '#': "3", '$': "4", '%': "5", '^': "6", '&': "7", '*': "8", '(': "9", ')': "0",
	'_': "minus", '+': "equal", '{': "bracket_left", '}': "bracket_right", '|': "backslash", ':': "semicolon",
	'"': "apostrophe", '~': "grave_accent", '<': "comma", '>': "dot", '?': "slash",
}

// charKey says which key types r and whether with shift.
func charKey(r rune) (qcode string, shift bool, ok bool) {
	switch {
	case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		return string(r), false, true
	case r >= 'A' && r <= 'Z':
		return string(unicode.ToLower(r)), true, true
	}
	if q, ok := unshifted[r]; ok {
		return q, false, true
	}
	if q, ok := shifted[r]; ok {
		return q, true, true
	}
	return "", false, false
}

// Type returns, for each character of text, the events that type it (its
// key pressed and released, inside shift when it needs it). A character
// the US layout has no key for is an error that names it and where it is.
func Type(text string) ([][]Event, error) {
	var out [][]Event
	i := 0
	for _, r := range text {
		q, shift, ok := charKey(r)
		if !ok {
			return nil, fmt.Errorf("cannot type %q (U+%04X, character %d of the text): only printable ASCII, newline and tab have keys on the guest's US keyboard", r, r, i+1)
		}
		var evs []Event
		if shift {
			evs = append(evs, Key("shift", true))
		}
		evs = append(evs, Key(q, true), Key(q, false))
		if shift {
			evs = append(evs, Key("shift", false))
		}
		out = append(out, evs)
		i++
	}
	return out, nil
}

// named are X keysym names (and the usual short names) of keys that are not
// a character, by their lower-case form, with the QKeyCode of each.
var named = map[string]string{
	"return": "ret", "enter": "ret", "kp_enter": "kp_enter", "tab": "tab", "escape": "esc", "esc": "esc",
	"backspace": "backspace", "delete": "delete", "del": "delete", "insert": "insert",
	"home": "home", "end": "end", "page_up": "pgup", "prior": "pgup", "pageup": "pgup",
	"page_down": "pgdn", "next": "pgdn", "pagedown": "pgdn",
	"left": "left", "right": "right", "up": "up", "down": "down", "space": "spc",
	"ctrl": "ctrl", "control": "ctrl", "control_l": "ctrl", "control_r": "ctrl_r",
	"shift": "shift", "shift_l": "shift", "shift_r": "shift_r",
	"alt": "alt", "alt_l": "alt", "alt_r": "alt_r", "meta": "meta_l", "meta_l": "meta_l", "meta_r": "meta_r",
	"super": "meta_l", "super_l": "meta_l", "super_r": "meta_r", "win": "meta_l", "cmd": "meta_l",
	"menu": "menu", "print": "print", "caps_lock": "caps_lock", "num_lock": "num_lock",
	"scroll_lock": "scroll_lock", "pause": "pause",
	"minus": "minus", "equal": "equal", "comma": "comma", "period": "dot", "slash": "slash",
	"backslash": "backslash", "semicolon": "semicolon", "apostrophe": "apostrophe", "grave": "grave_accent",
	"bracketleft": "bracket_left", "bracketright": "bracket_right",
}

func init() {
	for i := 1; i <= 12; i++ {
		named[fmt.Sprintf("f%d", i)] = fmt.Sprintf("f%d", i)
	}
}

// KeyNames are the names PressKey takes besides single characters.
func KeyNames() []string {
	out := make([]string, 0, len(named))
	for n := range named {
		out = append(out, n)
	}
	return out
}

// Press returns the events of a key combination: each key down in order,
// then each up in reverse (ctrl, alt, F4: ctrl down, alt down, F4 down, F4
// up, alt up, ctrl up). A key is an X keysym name ("Return", "ctrl",
// "F4", "Page_Up"; case does not matter) or one character ("a", "A", "%";
// one that needs shift is pressed with it).
func Press(keys []string) ([]Event, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key to press")
	}
	var codes []string
	for _, k := range keys {
		if q, ok := named[strings.ToLower(k)]; ok {
			codes = append(codes, q)
			continue
		}
		if r := []rune(k); len(r) == 1 {
			if q, shift, ok := charKey(r[0]); ok {
				if shift {
					codes = append(codes, "shift")
				}
				codes = append(codes, q)
				continue
			}
		}
		return nil, fmt.Errorf("unknown key %q: an X keysym name (Return, Tab, Escape, BackSpace, Delete, Home, End, Page_Up, Page_Down, Left, Right, Up, Down, space, F1-F12, ctrl, shift, alt, super, ...) or one printable ASCII character", k)
	}
	var evs []Event
	for _, q := range codes {
		evs = append(evs, Key(q, true))
	}
	for i := len(codes) - 1; i >= 0; i-- {
		evs = append(evs, Key(codes[i], false))
	}
	return evs, nil
}

// Buttons a click may name.
var buttons = map[string]string{"left": "left", "right": "right", "middle": "middle"}

// ButtonName checks a button's name ("left", "right", "middle").
func ButtonName(name string) (string, error) {
	if name == "" {
		return "left", nil
	}
	if b, ok := buttons[strings.ToLower(name)]; ok {
		return b, nil
	}
	return "", fmt.Errorf("unknown mouse button %q: left, right or middle", name)
}
