'use strict';

// Shared folders (include/quicksand.h, "Shared folders"): mount and unmount
// run on libuv's pool; the list is the library's own and answers at once.

const { encode, decode } = require('@msgpack/msgpack');
const native = require('./native');

const { onPool, check } = native;
const mountAsync = onPool('qs_sandbox_mount');
const unmountAsync = onPool('qs_sandbox_unmount');

function toHandle(m) {
  return Object.freeze({ id: m.id, host: m.host, guest: m.guest, readonly: Boolean(m.readonly) });
}

const mounts = {
  async mount(ptr, host, guest, { readonly = false } = {}) {
    const req = Buffer.from(encode({ host: String(host), guest: String(guest), readonly: Boolean(readonly) }));
    const buf = native.newBuffer();
    const err = native.outPointer();
    await check(await mountAsync(ptr, req, req.length, buf, err), err);
    return toHandle(decode(native.takeBuffer(buf)));
  },
  async unmount(ptr, handle) {
    const err = native.outPointer();
    await check(await unmountAsync(ptr, String(handle?.id ?? handle), err), err);
  },
  active(ptr) {
    const buf = native.newBuffer();
    const err = native.outPointer();
    const status = native.lib().qs_sandbox_list_mounts(ptr, buf, err);
    if (status !== 0) throw native.takeError(status, err);
    return decode(native.takeBuffer(buf)).map(toHandle);
  },
};

module.exports = { mounts, toHandle };
