'use strict';

// Tests against real VMs through libquicksand (`make lib`, `make image`).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const {
  Sandbox, Pool, QuicksandError, ImageNotFoundError, InvalidConfigError, BadRequestError, SandboxNotRunningError,
  NotFoundError, PermissionError,
} = require('..');

let sb;
before(async () => {
  sb = await Sandbox.start({ image: 'debian', memory: '512M' });
});
after(async () => {
  await sb?.stop();
});

test('execute basics and options', async () => {
  let r = await sb.execute('echo hello');
  assert.equal(r.stdout, 'hello\n');
  assert.equal(r.stderr, '');
  assert.equal(r.exitCode, 0);
  assert.equal(r.timedOut, false);
  assert.ok(r.duration > 0);
  r = await sb.execute('echo oops >&2; exit 3');
  assert.deepEqual([r.stdout, r.stderr, r.exitCode], ['', 'oops\n', 3]);
  assert.equal((await sb.execute('pwd', { cwd: '/usr/lib' })).stdout, '/usr/lib\n');
  assert.equal((await sb.execute('echo "$A $B"', { env: { A: '1', B: 'two' } })).stdout, '1 two\n');
  assert.equal((await sb.execute('tr a-z A-Z', { stdin: 'shout' })).stdout, 'SHOUT');
  assert.equal((await sb.execute('od -An -tx1', { stdin: Buffer.from([0, 255]) })).stdout.trim(), '00 ff');
  assert.equal((await sb.execute('echo $0', { shell: '/bin/bash' })).stdout, '/bin/bash\n');
  r = await sb.execute('id -un; head -c1 /etc/shadow', { user: 'nobody' });
  assert.equal(r.stdout, 'nobody\n');
  assert.notEqual(r.exitCode, 0);
});

test('properties', () => {
  assert.equal(sb.isRunning, true);
  assert.ok(['tcg', 'kvm'].includes(sb.accelerator));
  assert.ok(['x86_64', 'arm64'].includes(sb.arch));
  const t = sb.bootTiming;
  assert.ok(t.warm && t.qemuStarted > 0 && t.qemuStarted < t.agentListening && t.agentListening <= t.ready);
  assert.match(sb.consoleLog(), /QUICKSAND_AGENT_READY/);
  assert.equal(typeof sb[Symbol.asyncDispose], 'function');
});

test('streaming order and arrival on the main thread', async () => {
  const events = [];
  const start = Date.now();
  const r = await sb.execute('printf one; sleep 1; printf two >&2; sleep 1; echo three', {
    onStdout: (s) => events.push(['out', s, Date.now()]),
    onStderr: (s) => events.push(['err', s, Date.now()]),
  });
  const end = Date.now();
  assert.deepEqual(events.map(([k, s]) => [k, s]), [['out', 'one'], ['err', 'two'], ['out', 'three\n']]);
  assert.ok(events[0][2] - start < end - start - 1500, 'the first chunk waited for the command to end');
  assert.equal(r.stdout, 'onethree\n');
});

test('unicode and binary output', async () => {
  const chunks = [];
  const r = await sb.execute("printf 'h\\303\\251llo \\342\\202'; sleep 0.3; printf '\\254'", { onStdout: (s) => chunks.push(s) });
  assert.equal(r.stdout, 'héllo €');
  assert.equal(chunks.join(''), 'héllo €');
  const b = await sb.execute("printf 'a\\377\\000b'");
  assert.deepEqual([...b.stdoutBuffer], [0x61, 0xff, 0x00, 0x62]);
});

test('timeout kills the command', async () => {
  const r = await sb.execute('echo started; sleep 60', { timeout: 1 });
  assert.equal(r.timedOut, true);
  assert.equal(r.exitCode, -1);
  assert.equal(r.stdout, 'started\n');
});

test('16 executes at once all progress while the event loop stays free', async () => {
  const dir = `/tmp/rendezvous-${Date.now()}`;
  const n = 16;
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const started = Date.now();
  // Each command waits until all 16 have started: only running them at once
  // (not queued behind libuv's four pool threads) lets them finish.
  const results = await Promise.all(Array.from({ length: n }, (_, i) => sb.execute(
    `mkdir -p ${dir}; touch ${dir}/${i}; while [ $(ls ${dir} | wc -l) -lt ${n} ]; do sleep 0.1; done; echo ${i}`,
    { timeout: 120, onStdout: () => {} },
  )));
  delay.disable();
  clearInterval(timer);
  const elapsed = Date.now() - started;
  results.forEach((r, i) => assert.equal(r.stdout, `${i}\n`));
  assert.ok(ticks > elapsed / 10 / 4, `setInterval ticked ${ticks} times in ${elapsed} ms`);
  const p99 = delay.percentile(99) / 1e6;
  console.log(`event-loop delay during 16 executes: p50 ${(delay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
  assert.ok(p99 < 50, `event-loop delay p99 ${p99} ms`);
});

test('a callback that throws rejects that execute only', async () => {
  const boom = new Error('from the callback');
  await assert.rejects(sb.execute('echo x; sleep 5', { onStdout: () => { throw boom; } }), (e) => e === boom);
  assert.equal((await sb.execute('echo still fine')).stdout, 'still fine\n');
});

test('abort signal cancels the command', async () => {
  const ac = new AbortController();
  const p = sb.execute('sleep 41', { timeout: 120, signal: ac.signal });
  setTimeout(() => ac.abort(new Error('stop it')), 500);
  await assert.rejects(p, /stop it/);
  let left = 'x';
  for (let i = 0; i < 50 && left; i++) left = (await sb.execute("pgrep -f 'slee[p] 41' || true")).stdout;
  assert.equal(left, '', 'the command still runs');
});

test('errors', async () => {
  await assert.rejects(Sandbox.start({ image: 'no-such-image' }), (e) => e instanceof ImageNotFoundError
    && e instanceof QuicksandError && e.code === 'QS_ERR_IMAGE_NOT_FOUND' && /no-such-image/.test(e.message));
  await assert.rejects(Sandbox.start({ memroy: '1G' }), (e) => e instanceof InvalidConfigError && /memroy/.test(e.message));
  await assert.rejects(Sandbox.start({ cpus: 1000 }), (e) => e instanceof InvalidConfigError && /cpus/.test(e.message));
  await assert.rejects(sb.execute('true', { cwd: '/no/such/dir' }), (e) => e instanceof BadRequestError && /no\/such\/dir/.test(e.message));
  await assert.rejects(sb.execute('true', { tiemout: 3 }), (e) => e instanceof BadRequestError && /tiemout/.test(e.message));
  await assert.rejects(sb.execute('id', { user: 'no-such-user' }), (e) => e instanceof BadRequestError && /no such user/.test(e.message));
});

test('after stop', async () => {
  const s = await Sandbox.start();
  await s.stop();
  await s.stop();
  assert.equal(s.isRunning, false);
  await assert.rejects(s.execute('true'), (e) => e instanceof SandboxNotRunningError && e.code === 'QS_ERR_NOT_RUNNING');
});

test('no QEMU remains when the process exits or is killed', () => {
  const script = `
    const { Sandbox } = require(${JSON.stringify(path.join(__dirname, '..'))});
    Sandbox.start().then((sb) => {
      console.log(sb.pid);
      if (process.argv[1] === 'kill') process.kill(process.pid, 'SIGKILL');
    });`;
  for (const how of ['exit', 'kill']) {
    const p = spawnSync(process.execPath, ['-e', script, how], { timeout: 120000 });
    const pid = Number(String(p.stdout).trim());
    assert.ok(pid > 0, `no pid: ${p.stdout} ${p.stderr}`);
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      alive = fs.existsSync(`/proc/${pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      if (alive) spawnSync('sleep', ['0.05']);
    }
    assert.equal(alive, false, `QEMU ${pid} survived (${how})`);
  }
});

test('checkpoint, revert, save and resume', async () => {
  const os = require('node:os');
  const s = await Sandbox.start();
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qs-node-')), 'saved');
  try {
    await s.execute("echo kept > /root/f; (sleep 444 >/dev/null 2>&1 &)");
    await s.checkpoint('t1');
    await s.execute("rm /root/f; pkill -f 'slee[p] 444'");
    await s.revert('t1');
    assert.equal((await s.execute("cat /root/f; pgrep -f 'slee[p] 444' >/dev/null && echo running")).stdout, 'kept\nrunning\n');
    await assert.rejects(s.revert('nope'), (e) => e instanceof BadRequestError && /nope/.test(e.message));
    assert.equal(await s.save(dir), dir);
  } finally {
    await s.stop();
  }
  await Sandbox.validateSave(dir);
  const r = await Sandbox.start({ image: dir });
  try {
    assert.equal((await r.execute("cat /root/f; pgrep -f 'slee[p] 444' >/dev/null && echo running")).stdout, 'kept\nrunning\n');
    assert.equal(r.bootTiming.warm, true);
  } finally {
    await r.stop();
  }
});

test('full network mode keeps the host loopback unless allowed', async () => {
  const http = require('node:http');
  const server = http.createServer((req, res) => res.end('hello from the host'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const fetch = `curl -sS -m 3 http://10.0.2.2:${server.address().port}/`;
  try {
    const guarded = await Sandbox.start({ networkMode: 'full' });
    try {
      assert.notEqual((await guarded.execute(fetch)).exitCode, 0);
    } finally {
      await guarded.stop();
    }
    const open = await Sandbox.start({ networkMode: 'full', allowHostLoopback: true });
    try {
      assert.equal((await open.execute(fetch)).stdout, 'hello from the host');
    } finally {
      await open.stop();
    }
  } finally {
    server.close();
  }
});

test('maxOutput caps the result, callbacks get everything', async () => {
  const cmd = "head -c 300000 /dev/zero | tr '\\0' a";
  let r = await sb.execute(cmd, { maxOutput: 1000 });
  assert.equal(r.stdout.length, 1000);
  assert.equal(r.stdoutTruncated, true);
  assert.equal(r.stderrTruncated, false);
  let got = 0;
  r = await sb.execute(cmd, { maxOutput: 1000, onStdout: (s) => { got += s.length; } });
  assert.equal(r.stdout.length, 1000);
  assert.equal(got, 300000);
  r = await sb.execute(cmd);
  assert.equal(r.stdout.length, 300000);
  assert.equal(r.stdoutTruncated, false);
});

test('QUICKSAND_LOG turns the engine log on (to stderr)', () => {
  const script = `
    const { Sandbox } = require(${JSON.stringify(path.join(__dirname, '..'))});
    Sandbox.start().then((sb) => sb.stop());`;
  const on = spawnSync(process.execPath, ['-e', script], { timeout: 120000, env: { ...process.env, QUICKSAND_LOG: 'info' } });
  assert.match(String(on.stderr), /level=INFO msg="accelerator chosen" accel=/, `stderr: ${on.stderr}`);
  const off = spawnSync(process.execPath, ['-e', script], { timeout: 120000, env: { ...process.env, QUICKSAND_LOG: '' } });
  assert.doesNotMatch(String(off.stderr), /accelerator chosen/);
});

test('files', async () => {
  const os = require('node:os');
  const big = require('node:crypto').randomBytes(100 << 20);
  await sb.writeFile('/tmp/node-big', big);
  assert.ok((await sb.readFile('/tmp/node-big')).equals(big), '100 MiB round trip');
  await sb.remove('/tmp/node-big');
  const data = Buffer.from([0, 1, 2, 255, 10]);
  await sb.writeFile('/tmp/node-file', data, { mode: 0o600 });
  assert.deepEqual(await sb.readFile('/tmp/node-file'), data);
  const info = await sb.stat('/tmp/node-file');
  assert.equal(info.size, 5);
  assert.equal(info.mode, 0o600);
  await sb.makeDir('/tmp/node-dir/a');
  assert.deepEqual((await sb.listDir('/tmp/node-dir')).map((e) => e.name), ['a']);
  await sb.rename('/tmp/node-file', '/tmp/node-dir/f');
  assert.equal(await sb.exists('/tmp/node-file'), false);
  await assert.rejects(sb.stat('/tmp/nope'), (e) => e instanceof NotFoundError && e.code === 'QS_ERR_NOT_FOUND');
  await assert.rejects(sb.writeFile('/root/x', 'x', { user: 'nobody' }), (e) => e instanceof PermissionError);
  const host = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-node-'));
  fs.mkdirSync(path.join(host, 'tree/empty'), { recursive: true });
  fs.writeFileSync(path.join(host, 'tree/t.txt'), 'tree\n');
  await sb.upload(path.join(host, 'tree'), '/tmp/node-tree');
  await sb.download('/tmp/node-tree', path.join(host, 'back'));
  assert.equal(fs.readFileSync(path.join(host, 'back/t.txt'), 'utf8'), 'tree\n');
  assert.ok(fs.statSync(path.join(host, 'back/empty')).isDirectory());
  await sb.remove('/tmp/node-tree', { recursive: true });
  await sb.remove('/tmp/node-dir', { recursive: true });
  fs.rmSync(host, { recursive: true });
});

test('shared folders', async () => {
  const host = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'qs-node-mount-'));
  fs.writeFileSync(path.join(host, 'f'), 'from node');
  try {
    const s = await Sandbox.start({ mounts: [{ host, guest: '/mnt/start', readonly: true }] });
    try {
      assert.deepEqual(s.activeMounts.map((m) => [m.guest, m.readonly]), [['/mnt/start', true]]);
      let r = await s.execute('cat /mnt/start/f; touch /mnt/start/new');
      assert.equal(r.stdout, 'from node');
      assert.notEqual(r.exitCode, 0);
      assert.ok(!fs.existsSync(path.join(host, 'new')));

      const h = await s.mount(host, '/mnt/rw');
      r = await s.execute('echo back > /mnt/rw/out');
      assert.equal(r.exitCode, 0);
      assert.equal(fs.readFileSync(path.join(host, 'out'), 'utf8'), 'back\n');
      await s.unmount(h);
      assert.equal(s.activeMounts.length, 1);
      await assert.rejects(s.unmount(h), BadRequestError);
      await assert.rejects(s.mount('/no/such/folder', '/mnt/x'), (e) => e instanceof NotFoundError && /\/no\/such\/folder/.test(e.message));
      await assert.rejects(s.mount(host, 'relative'), InvalidConfigError);
    } finally {
      await s.stop();
    }
  } finally {
    fs.rmSync(host, { recursive: true, force: true });
  }
});

test('background processes', async () => {
  const seen = [];
  const p = await sb.startProcess('python3 -i -q', { onStdout: (t) => seen.push(t) });
  assert.ok(p.pid > 1 && p.id);
  assert.ok((await sb.listProcesses()).some((i) => i.id === p.id));
  await p.writeStdin('print(6*7)\n');
  await p.closeStdin();
  const r = await p.wait();
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, '42\n');
  assert.equal(seen.join(''), '42\n');
  await assert.rejects(p.writeStdin('late'), (e) => e instanceof BadRequestError && /exited/.test(e.message));

  const q = await sb.startProcess('echo early; sleep 0.3; echo late');
  assert.equal((await (await sb.attach(q.id)).wait()).stdout, 'early\nlate\n');

  const term = await sb.startProcess('read x; stty size', { pty: { rows: 24, cols: 80 } });
  await term.resize(33, 90);
  await term.writeStdin('\n');
  assert.match((await term.wait()).stdout, /33 90/);
  await assert.rejects(q.resize(5, 5), BadRequestError);

  const k = await sb.startProcess('sleep 100');
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('stop waiting')), 300);
  await assert.rejects(k.wait({ signal: ac.signal }), /stop waiting/);
  await assert.rejects(k.signal(99), /out of range/);
  await k.kill();
  assert.equal((await k.wait()).exitCode, 137);
  // An unknown id fails the attach itself, with or without callbacks.
  await assert.rejects(sb.attach('p-none', { onStdout: (t) => seen.push(t) }), (e) => e instanceof NotFoundError && /p-none/.test(e.message));
  await assert.rejects(sb.attach('p-none'), (e) => e instanceof NotFoundError && /p-none/.test(e.message));
});

test('a pool of ready sandboxes', async () => {
  const pool = await Pool.create({ size: 1 });
  try {
    const a = await pool.start(); // from the pool, or a normal start while it fills
    const b = await pool.start();
    try {
      assert.notEqual(a.pid, b.pid);
      assert.equal((await b.execute('echo pooled')).stdout, 'pooled\n');
    } finally {
      await a.stop();
      await b.stop();
    }
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.start(), QuicksandError);
  await assert.rejects(Pool.create({ size: 0 }), InvalidConfigError);
  const missing = await Pool.create({ size: 1, image: 'no-such-image' });
  await assert.rejects(missing.start(), ImageNotFoundError);
  await missing.close();
});
