'use strict';

// Network policy through the Node API: a real VM in full mode whose policy
// refuses a name (NXDOMAIN, counted), then, changed on the running sandbox,
// answers it from its hosts map. No address is ever reached: the only one
// named (198.19.0.9, a benchmarking range) is never dialled.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Sandbox, InvalidConfigError, BadRequestError } = require('..');

const ONLY = '198.19.0.9:1';

test('a policy refuses a name until setNetwork allows it', async () => {
  const sb = await Sandbox.start({ networkPolicy: { allowOut: [ONLY] } });
  try {
    let r = await sb.execute('getent hosts example.invalid; echo $?');
    assert.equal(r.stdout.trim(), '2');
    assert.ok(sb.networkStats().namesRefused >= 1, JSON.stringify(sb.networkStats()));

    await sb.setNetwork({ allowOut: [ONLY, 'example.invalid'], hosts: { 'example.invalid': ['198.19.0.9'] } });
    r = await sb.execute('getent hosts example.invalid');
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.split(/\s+/)[0], '198.19.0.9');
    assert.ok(sb.networkStats().namesAllowed >= 1);

    await assert.rejects(sb.setNetwork({ allowOut: [ONLY, 'bad name!'] }), (e) => e instanceof InvalidConfigError && /allow_out\[1\].*not a domain/.test(e.message));
    await assert.rejects(sb.setNetwork({ hosts: { 'a.test': ['nope'] } }), (e) => e instanceof InvalidConfigError && /hosts.*not an IP address/.test(e.message));
    await assert.rejects(sb.setNetwork({ allow: [] }), (e) => e instanceof InvalidConfigError && /unknown networkPolicy key "allow"/.test(e.message));
    await sb.setNetwork(null);
  } finally {
    await sb.stop();
  }
});

test('bad entries at start, and a sandbox without the guard', async () => {
  await assert.rejects(Sandbox.start({ networkPolicy: { denyOut: ['10.0.0.0/33'] } }),
    (e) => e instanceof InvalidConfigError && /deny_out\[0\].*10\.0\.0\.0\/33/.test(e.message));
  await assert.rejects(Sandbox.start({ networkMode: 'restricted', networkPolicy: { allowOut: ['a.test'] } }),
    (e) => e instanceof InvalidConfigError && /network_policy/.test(e.message));
  const sb = await Sandbox.start({});
  try {
    assert.throws(() => sb.networkStats(), (e) => e instanceof BadRequestError && /no network guard/.test(e.message));
    await assert.rejects(sb.setNetwork({ allowOut: [ONLY] }), BadRequestError);
  } finally {
    await sb.stop();
  }
});
