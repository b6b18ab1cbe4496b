'use strict';

// The desktop on a real VM: a debian-desktop sandbox with a display, driven
// from the host; and a plain sandbox, whose desktop calls all refuse.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Sandbox, Key, BadRequestError, InvalidConfigError } = require('..');

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** [width, height] from a PNG's IHDR chunk. */
function pngSize(png) {
  assert.ok(png.subarray(0, 8).equals(PNG_SIGNATURE), png.subarray(0, 16).toString('hex'));
  assert.equal(png.subarray(12, 16).toString(), 'IHDR');
  return [png.readUInt32BE(16), png.readUInt32BE(20)];
}

let desk;
let plain;
before(async () => {
  desk = await Sandbox.start({ image: 'debian-desktop', memory: 1536, display: true });
  plain = await Sandbox.start();
});
after(async () => {
  await desk?.stop();
  await plain?.stop();
});

test('a screenshot is a PNG of the screen', async () => {
  assert.deepEqual(pngSize(await desk.screenshot()), [1280, 800]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-desktop-'));
  try {
    const file = path.join(dir, 'screen.png');
    const png = await desk.screenshot(file);
    assert.deepEqual(pngSize(png), [1280, 800]);
    assert.ok(fs.readFileSync(file).equals(png));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(await desk.queryDisplaySize(), { width: 1280, height: 800 });
});

test('the pointer goes where it is sent', async () => {
  await desk.mouseMove(640, 400);
  assert.deepEqual(await desk.queryMousePosition(), { x: 640, y: 400 });
  await desk.drag([100, 100], [200, 150]);
  assert.deepEqual(await desk.queryMousePosition(), { x: 200, y: 150 });
  await desk.scroll(0, 2);
  await desk.mouseClick('right');
  await desk.pressKey(Key.ESCAPE);
  await desk.mouseDown();
  await desk.mouseUp();
  await desk.mouseClick('left', true);
});

test('what the desktop cannot do rejects with BadRequestError', async () => {
  const bad = (re) => (e) => e instanceof BadRequestError && re.test(e.message);
  await assert.rejects(desk.mouseMove(1280, 0), bad(/off the 1280x800 screen/));
  await assert.rejects(desk.mouseMove(1.5, 0), bad(/x must be an integer/));
  await assert.rejects(desk.typeText('café'), bad(/U\+00E9/));
  await assert.rejects(desk.pressKey(Key.CTRL, 'Hyper_Q'), bad(/Hyper_Q/));
  await assert.rejects(desk.mouseClick('fourth'), bad(/fourth/));
  assert.equal(desk.vnc(), null); // no vnc asked for
});

test('without a display every desktop call rejects', async () => {
  const calls = [
    () => plain.screenshot(), () => plain.queryDisplaySize(), () => plain.typeText('x'), () => plain.pressKey(Key.ENTER),
    () => plain.mouseMove(1, 1), () => plain.mouseClick(), () => plain.mouseDown(), () => plain.mouseUp(),
    () => plain.scroll(0, 1), () => plain.drag([1, 1], [2, 2]),
  ];
  for (const call of calls) {
    await assert.rejects(call(), (e) => e instanceof BadRequestError && /no display/.test(e.message), String(call));
  }
  assert.deepEqual(await plain.queryMousePosition(), { x: 0, y: 0 });
  assert.equal(plain.vnc(), null);
});

test('a display needs an image with a desktop, and a known shape', async () => {
  await assert.rejects(Sandbox.start({ display: { width: 800, height: 600 } }), (e) => e instanceof InvalidConfigError && /no desktop/.test(e.message));
  await assert.rejects(Sandbox.start({ display: 'yes' }), InvalidConfigError);
  await assert.rejects(Sandbox.start({ display: { depth: 24 } }), (e) => e instanceof InvalidConfigError && /unknown display key "depth"/.test(e.message));
});

test('Key values are the keysym names', () => {
  assert.equal(Key.ENTER, 'Return');
  assert.equal(Key.CTRL, 'ctrl');
  assert.equal(Key.F4, 'F4');
  assert.equal(Key.PAGE_DOWN, 'Page_Down');
  assert.ok(Object.isFrozen(Key));
});
