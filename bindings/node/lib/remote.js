'use strict';

// Sandboxes a server keeps (include/quicksand.h, "Sandboxes a server
// keeps"): connect by id and list, through the library's own client. A
// sandbox started with the `server` option is one too.

const { decode } = require('@msgpack/msgpack');
const native = require('./native');
const { encodeRemote } = require('./options');

const { onPool, check } = native;
const connectAsync = onPool('qs_sandbox_connect');
const listAsync = onPool('qs_sandbox_list');
const idleAsync = onPool('qs_sandbox_set_idle_timeout');

/** An entry of qs_sandbox_list, in the binding's names. */
function toSummary(m) {
  return {
    id: m.id, metadata: m.metadata ?? {}, image: m.image, running: m.running,
    created: m.created, idleTimeout: m.idle_timeout,
  };
}

const remote = {
  /** A new handle (a pointer) to the sandbox `id`; opts: server, apiKey. */
  async connect(id, opts = {}) {
    const o = encodeRemote(opts, ['server', 'apiKey']);
    const out = native.outPointer();
    const err = native.outPointer();
    await check(await connectAsync(String(id), o, o.length, out, err), err);
    return out.deref();
  },
  /** The sandboxes the server keeps for this key; opts: metadata, server, apiKey. */
  async list(opts = {}) {
    const o = encodeRemote(opts, ['metadata', 'server', 'apiKey']);
    const buf = native.newBuffer();
    const err = native.outPointer();
    await check(await listAsync(o, o.length, buf, err), err);
    return decode(native.takeBuffer(buf)).map(toSummary);
  },
  async setIdleTimeout(ptr, seconds) {
    const err = native.outPointer();
    await check(await idleAsync(ptr, Number(seconds), err), err);
  },
};

module.exports = { remote, toSummary };
