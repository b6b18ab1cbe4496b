'use strict';

// Network policy (include/quicksand.h, "Network policy"): setting it runs on
// libuv's pool; the counts are the library's own and answer at once.

const { encode, decode } = require('@msgpack/msgpack');
const native = require('./native');
const { InvalidConfigError } = require('./errors');

const { onPool, check } = native;
const setNetworkAsync = onPool('qs_sandbox_set_network');

const POLICY_KEYS = { allowOut: 'allow_out', denyOut: 'deny_out', hosts: 'hosts' };

/** A policy { allowOut, denyOut, hosts } as the library takes it (null: none); entries are checked by the library. */
function policyMap(policy) {
  if (policy === undefined || policy === null) return null;
  if (typeof policy !== 'object' || Array.isArray(policy)) throw new InvalidConfigError('networkPolicy must be an object { allowOut, denyOut, hosts }');
  const m = {};
  for (const [k, v] of Object.entries(policy)) {
    if (!(k in POLICY_KEYS)) throw new InvalidConfigError(`unknown networkPolicy key "${k}" (known: ${Object.keys(POLICY_KEYS).join(', ')})`);
    if (v !== undefined && v !== null) m[POLICY_KEYS[k]] = v;
  }
  return m;
}

function toStats(m) {
  return Object.freeze({ allowed: Number(m.allowed), dropped: Number(m.dropped), namesAllowed: Number(m.names_allowed), namesRefused: Number(m.names_refused) });
}

const network = {
  async set(ptr, policy) {
    const m = policyMap(policy);
    const req = m === null ? null : Buffer.from(encode(m));
    const err = native.outPointer();
    await check(await setNetworkAsync(ptr, req, req === null ? 0 : req.length, err), err);
  },
  stats(ptr) {
    const buf = native.newBuffer();
    const err = native.outPointer();
    const status = native.lib().qs_sandbox_network_stats(ptr, buf, err);
    if (status !== 0) throw native.takeError(status, err);
    return toStats(decode(native.takeBuffer(buf)));
  },
};

module.exports = { network, policyMap, toStats };
