'use strict';

// File calls as a hostile guest or a careless path would have them: a NUL
// byte in a path, files larger than the host's memory, a frozen VM, modes
// the umask would change. Real VMs through libquicksand.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Sandbox, BadRequestError, CallCancelledError } = require('..');

const EVIL = '/tmp/node-ok.txt\0/../../etc/cron.d/evil';

let sb;
before(async () => {
  sb = await Sandbox.start({ image: 'debian' });
});
after(async () => {
  await sb?.stop();
});

test('a NUL in a path is refused', async () => {
  // The library takes C strings: '/tmp/node-ok.txt\0/...' wrote /tmp/node-ok.txt.
  const host = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-nul-'));
  fs.writeFileSync(path.join(host, 'ok'), 'host');
  const calls = {
    writeFile: () => sb.writeFile(EVIL, '* * * * * root id\n'),
    readFile: () => sb.readFile(EVIL),
    stat: () => sb.stat(EVIL),
    exists: () => sb.exists(EVIL),
    listDir: () => sb.listDir(EVIL),
    makeDir: () => sb.makeDir(EVIL),
    remove: () => sb.remove(EVIL),
    'rename to': () => sb.rename('/etc/hostname', EVIL),
    'upload to': () => sb.upload(path.join(host, 'ok'), EVIL),
    'upload from': () => sb.upload(`${path.join(host, 'ok')}\0/x`, '/tmp/node-up'),
    'download from': () => sb.download(EVIL, path.join(host, 'down')),
    'download to': () => sb.download('/etc/hostname', path.join(host, 'down\0x')),
  };
  for (const [name, call] of Object.entries(calls)) {
    await assert.rejects(call(), (e) => e instanceof BadRequestError && /NUL/.test(e.message), name);
  }
  const r = await sb.execute('ls /tmp/node-ok.txt /tmp/node-up /etc/cron.d/evil 2>/dev/null || true');
  assert.equal(r.stdout, '');
  assert.deepEqual(fs.readdirSync(host), ['ok']);
  fs.rmSync(host, { recursive: true });
});

test('readFile has a limit', async () => {
  await sb.execute('head -c 2097152 /dev/urandom > /root/node-two-mib');
  await assert.rejects(sb.readFile('/root/node-two-mib', { maxSize: 1 << 20 }),
    (e) => e instanceof BadRequestError && /max_size/.test(e.message));
  assert.equal((await sb.readFile('/root/node-two-mib', { maxSize: 2 << 20 })).length, 2 << 20);
  await sb.remove('/root/node-two-mib');
});

// In a process of its own, so that its peak memory (VmHWM) is this test's:
// a sparse file of 1 GiB and /proc/kcore each fail at once with the limit's
// error, and the peak grows by less than 64 MiB.
const boundedChild = `
const fs = require('node:fs');
const { Sandbox, BadRequestError } = require(${JSON.stringify(path.join(__dirname, '..'))});
const peak = () => Number(/VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
(async () => {
  const sb = await Sandbox.start({ image: 'debian' });
  await sb.execute('truncate -s 1G /root/sparse');
  const before = peak();
  for (const p of ['/root/sparse', '/proc/kcore']) {
    try {
      await sb.readFile(p);
      throw new Error(p + ': read whole');
    } catch (e) {
      if (!(e instanceof BadRequestError) || !/max_size/.test(e.message)) throw e;
    }
  }
  console.log(peak() - before);
  await sb.stop();
})().catch((e) => { console.error(e); process.exit(1); });
`;

test("readFile's memory stays bounded", () => {
  const child = spawnSync(process.execPath, ['-e', boundedChild], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(child.status, 0, child.stderr);
  assert.ok(Number(child.stdout) < 64 << 20, `the peak grew by ${Number(child.stdout) >> 20} MiB`);
});

test('modes are exact', async () => {
  await sb.makeDir('/tmp/node-sticky', { mode: 0o1777 });
  await sb.writeFile('/tmp/node-suid', 'x', { mode: 0o4755 });
  assert.equal((await sb.stat('/tmp/node-sticky')).mode, 0o1777);
  assert.equal((await sb.stat('/tmp/node-suid')).mode, 0o4755);
  assert.equal((await sb.execute('stat -c %a /tmp/node-sticky /tmp/node-suid')).stdout, '1777\n4755\n');
  await sb.remove('/tmp/node-sticky');
  await sb.remove('/tmp/node-suid');
});

test('a timeout ends a call to a frozen VM', async () => {
  const frozen = await Sandbox.start({ image: 'debian' });
  try {
    process.kill(frozen.pid, 'SIGSTOP');
    const start = Date.now();
    await assert.rejects(frozen.stat('/root', { timeout: 2 }), (e) => e instanceof CallCancelledError && /timeout/.test(e.message));
    await assert.rejects(frozen.readFile('/etc/hostname', { timeout: 2 }), (e) => e instanceof CallCancelledError);
    assert.ok(Date.now() - start < 15_000);
    process.kill(frozen.pid, 'SIGCONT');
    assert.equal((await frozen.execute('echo again')).stdout, 'again\n');
  } finally {
    process.kill(frozen.pid, 'SIGCONT');
    await frozen.stop();
  }
});
