'use strict';

// The desktop of a sandbox started with a display (include/quicksand.h,
// "Desktop"): calls that wait on QEMU run on libuv's pool; the pointer's
// position and the VNC details are the library's own and answer at once.

const fs = require('fs');
const { encode, decode } = require('@msgpack/msgpack');
const native = require('./native');
const { InvalidConfigError, BadRequestError } = require('./errors');

const { onPool, check, ref } = native;
const screenshotAsync = onPool('qs_sandbox_screenshot');
const displaySizeAsync = onPool('qs_sandbox_display_size');
const typeTextAsync = onPool('qs_sandbox_type_text');
const pressKeyAsync = onPool('qs_sandbox_press_key');
const mouseMoveAsync = onPool('qs_sandbox_mouse_move');
const mouseClickAsync = onPool('qs_sandbox_mouse_click');
const mouseDownAsync = onPool('qs_sandbox_mouse_down');
const mouseUpAsync = onPool('qs_sandbox_mouse_up');
const scrollAsync = onPool('qs_sandbox_scroll');
const dragAsync = onPool('qs_sandbox_drag');

/**
 * Key names for pressKey: each an X keysym name (Key.ENTER is "Return").
 * pressKey takes any other keysym name, or one printable character, too.
 */
const Key = Object.freeze({
  ENTER: 'Return', TAB: 'Tab', ESCAPE: 'Escape', BACKSPACE: 'BackSpace', DELETE: 'Delete', INSERT: 'Insert',
  SPACE: 'space', HOME: 'Home', END: 'End', PAGE_UP: 'Page_Up', PAGE_DOWN: 'Page_Down',
  LEFT: 'Left', RIGHT: 'Right', UP: 'Up', DOWN: 'Down',
  CTRL: 'ctrl', ALT: 'alt', SHIFT: 'shift', SUPER: 'super',
  F1: 'F1', F2: 'F2', F3: 'F3', F4: 'F4', F5: 'F5', F6: 'F6', F7: 'F7', F8: 'F8', F9: 'F9', F10: 'F10', F11: 'F11', F12: 'F12',
});

const DISPLAY_KEYS = ['width', 'height', 'vnc'];

/** The config's display: true, { width, height, vnc }, or null (none); sizes are checked by the library. */
function displayMap(display) {
  if (display === undefined || display === null || display === false) return null;
  if (display === true) return true;
  if (typeof display !== 'object' || Array.isArray(display)) {
    throw new InvalidConfigError('display must be true or an object { width, height, vnc }');
  }
  const m = {};
  for (const [k, v] of Object.entries(display)) {
    if (!DISPLAY_KEYS.includes(k)) throw new InvalidConfigError(`unknown display key "${k}" (known: ${DISPLAY_KEYS.join(', ')})`);
    if (v !== undefined && v !== null) m[k] = v;
  }
  return m;
}

/** An integer argument of a C int, or a BadRequestError naming it. */
function int(name, v) {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new BadRequestError(`${name} must be an integer, not ${v}`);
  return v;
}

/** A button name (undefined and null: the left one). */
function button(b) {
  return b === undefined || b === null ? null : String(b);
}

async function call(fn, ptr, ...args) {
  const err = native.outPointer();
  await check(await fn(ptr, ...args, err), err);
}

async function pair(fn, ptr) {
  const a = ref.alloc('int', 0);
  const b = ref.alloc('int', 0);
  await call(fn, ptr, a, b);
  return [a.readInt32LE(0), b.readInt32LE(0)];
}

const desktop = {
  async screenshot(ptr, path) {
    const buf = native.newBuffer();
    await call(screenshotAsync, ptr, buf);
    const png = native.takeBuffer(buf);
    if (path !== undefined && path !== null) await fs.promises.writeFile(path, png);
    return png;
  },
  async displaySize(ptr) {
    const [width, height] = await pair(displaySizeAsync, ptr);
    return { width, height };
  },
  async mousePosition(ptr) {
    const [x, y] = await pair((...a) => Promise.resolve(native.lib().qs_sandbox_mouse_position(...a)), ptr);
    return { x, y };
  },
  async typeText(ptr, text) {
    if (typeof text !== 'string') throw new BadRequestError('text must be a string');
    if (text.includes('\0')) throw new BadRequestError('typing: text holds a NUL character, which has no key');
    await call(typeTextAsync, ptr, text);
  },
  async pressKey(ptr, keys) {
    const list = Buffer.from(encode(keys.map(String)));
    await call(pressKeyAsync, ptr, list, list.length);
  },
  async mouseMove(ptr, x, y) { await call(mouseMoveAsync, ptr, int('x', x), int('y', y)); },
  async mouseClick(ptr, b, double) { await call(mouseClickAsync, ptr, button(b), double ? 1 : 0); },
  async mouseDown(ptr, b) { await call(mouseDownAsync, ptr, button(b)); },
  async mouseUp(ptr, b) { await call(mouseUpAsync, ptr, button(b)); },
  async scroll(ptr, dx, dy) { await call(scrollAsync, ptr, int('dx', dx), int('dy', dy)); },
  async drag(ptr, [x1, y1], [x2, y2]) {
    await call(dragAsync, ptr, int('x1', x1), int('y1', y1), int('x2', x2), int('y2', y2));
  },
  /** { port, password }, or null when the display has no VNC (or there is no display). */
  vnc(ptr) {
    const buf = native.newBuffer();
    const err = native.outPointer();
    const status = native.lib().qs_sandbox_vnc(ptr, buf, err);
    if (status !== 0) {
      const e = native.takeError(status, err);
      if (e instanceof BadRequestError) return null;
      throw e;
    }
    const m = decode(native.takeBuffer(buf));
    return Object.freeze({ port: Number(m.port), password: String(m.password) });
  },
};

module.exports = { desktop, displayMap, Key };
