'use strict';

// A server's errors through the binding (issue 26), against the real
// `quicksand serve` built from this checkout, without a VM: a wrong key is
// an AuthError ('QS_ERR_AUTH') naming the server, an unknown id a
// NotFoundError, a server that is not there a TransportError naming it.

const test = require('node:test');
const assert = require('node:assert');
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { Sandbox, AuthError, NotFoundError, TransportError } = require('..');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const KEY = 'node-test-0123456789abcdef';

function goBinary() {
  const local = path.join(ROOT, 'out', 'go', 'bin', 'go');
  return fs.existsSync(local) ? local : 'go';
}

/** Builds and runs quicksand serve on 127.0.0.1; resolves with { url, stop }. */
async function startServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-node-server-'));
  const bin = path.join(dir, 'quicksand');
  execFileSync(goBinary(), ['build', '-o', bin, './cmd/quicksand'], { cwd: ROOT, stdio: 'inherit' });
  fs.writeFileSync(path.join(dir, 'keys'), `${KEY}\n`, { mode: 0o600 });
  const proc = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--keys', path.join(dir, 'keys'), '--data', path.join(dir, 'data')],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise((resolve, reject) => {
    let log = '';
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /msg=serving address=(\S+)/.exec(log);
      if (m) resolve(`http://${m[1]}`);
    });
    proc.on('exit', (code) => reject(new Error(`the server exited with ${code}:\n${log}`)));
  });
  const stop = async () => {
    const exited = new Promise((resolve) => proc.on('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { url, stop };
}

/** A loopback port nobody listens on. */
async function deadPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

const escape = (s) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

test('a server: wrong key, unknown id, and one that is not there', async (t) => {
  const server = await startServer();
  t.after(server.stop);

  await t.test('a wrong key is an AuthError naming the server', async () => {
    const wrong = { server: server.url, apiKey: 'wrong-key-0123456789abcdef' };
    for (const call of [() => Sandbox.list(wrong), () => Sandbox.connect('sb-anything', wrong)]) {
      await assert.rejects(call(), (e) => e instanceof AuthError && e.code === 'QS_ERR_AUTH' && escape(server.url).test(e.message));
    }
  });

  await t.test('an unknown id is a NotFoundError', async () => {
    await assert.rejects(Sandbox.connect('sb-nobody-has-this', { server: server.url, apiKey: KEY }),
      (e) => e instanceof NotFoundError && e.code === 'QS_ERR_NOT_FOUND' && /sb-nobody-has-this/.test(e.message));
    assert.deepStrictEqual(await Sandbox.list({ server: server.url, apiKey: KEY, metadata: { test: 'nothing has this' } }), []);
  });

  await t.test('a server that is not there is a TransportError naming it', async () => {
    const gone = `http://127.0.0.1:${await deadPort()}`;
    const isTransport = (e) => e instanceof TransportError && e.code === 'QS_ERR_TRANSPORT' && escape(gone).test(e.message);
    await assert.rejects(Sandbox.list({ server: gone, apiKey: KEY }), isTransport);
    await assert.rejects(Sandbox.connect('sb-x', { server: gone, apiKey: KEY }), isTransport);
    await assert.rejects(Sandbox.start({ server: gone, apiKey: KEY }), isTransport);
  });

  await t.test('options the binding does not know are refused by name', async () => {
    await assert.rejects(Sandbox.list({ sever: server.url }), /sever/);
    await assert.rejects(Sandbox.connect('sb-x', { metadata: {} }), /metadata/);
  });
});
