'use strict';

// Image packages found by their package.json (lib/images.js), and the
// `quicksand image` command line's refusals (lib/imagecli.js). No VM: the
// install from npm and a start from the package's image are tried by
// `make test-dist` (build/dist-test.sh).

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { packageImageDirs } = require('../lib/images');
const { run, UsageError } = require('../lib/imagecli');

function pkg(root, name, body) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), typeof body === 'string' ? body : JSON.stringify({ name, ...body }));
  return dir;
}

test('image packages are found by their field, nearest node_modules first, once per name', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-images-'));
  try {
    const near = path.join(tmp, 'a', 'node_modules');
    const far = path.join(tmp, 'node_modules');
    const x64 = pkg(near, 'quicksand-go-debian-x64', { 'quicksand-go': { images: 'images' } });
    const scoped = pkg(near, '@quicksand-go/alpine', { 'quicksand-go': { images: 'imgs' } });
    pkg(near, 'quicksand-go-tools', { version: '1.0.0' }); // no field: no image package
    pkg(near, 'other-package', { 'quicksand-go': { images: 'images' } }); // not our name
    pkg(far, 'quicksand-go-debian-x64', { 'quicksand-go': { images: 'images' } }); // hoisted copy: the nearer wins
    const arm = pkg(far, 'quicksand-go-debian-arm64', { 'quicksand-go': { images: 'images' } });
    const warnings = [];
    const dirs = packageImageDirs([near, path.join(tmp, 'missing'), far], (m) => warnings.push(m));
    assert.deepStrictEqual(dirs, [path.join(scoped, 'imgs'), path.join(x64, 'images'), path.join(arm, 'images')]);
    assert.deepStrictEqual(warnings, []);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('a broken image package is skipped with a warning that names it', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-images-'));
  try {
    pkg(tmp, 'quicksand-go-bad-json', '{ not json');
    pkg(tmp, 'quicksand-go-absolute', { 'quicksand-go': { images: '/etc' } });
    pkg(tmp, 'quicksand-go-number', { 'quicksand-go': { images: 7 } });
    const good = pkg(tmp, 'quicksand-go-good', { 'quicksand-go': { images: 'images' } });
    const warnings = [];
    assert.deepStrictEqual(packageImageDirs([tmp], (m) => warnings.push(m)), [path.join(good, 'images')]);
    assert.strictEqual(warnings.length, 3, warnings.join('\n'));
    for (const name of ['quicksand-go-bad-json', 'quicksand-go-absolute', 'quicksand-go-number']) {
      assert.ok(warnings.some((w) => w.includes(name)), `no warning names ${name}: ${warnings.join('\n')}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('the image command line refuses what it does not know, before loading anything', () => {
  for (const argv of [[], ['run'], ['image'], ['image', 'frobnicate'], ['image', 'list', 'x'], ['image', 'remove'],
    ['image', 'install', 'a', 'b'], ['image', 'install', 'a', '--dir'], ['image', 'remove', 'x', '--force']]) {
    assert.throws(() => run(argv), UsageError, `accepted: ${argv.join(' ')}`);
  }
});
