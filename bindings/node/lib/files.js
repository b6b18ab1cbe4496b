'use strict';

// Files in a sandbox (include/quicksand.h, "Files"): each call runs on
// libuv's pool, so nothing blocks the event loop. Guest paths are absolute;
// errors name the path.

const { encode, decode } = require('@msgpack/msgpack');
const native = require('./native');
const { NotFoundError } = require('./errors');

const { onPool, check } = native;
const writeAsync = onPool('qs_sandbox_write_file');
const readAsync = onPool('qs_sandbox_read_file');
const opAsync = onPool('qs_sandbox_file_op');
const uploadAsync = onPool('qs_sandbox_upload');
const downloadAsync = onPool('qs_sandbox_download');

function options(kv) {
  const m = {};
  for (const [k, v] of Object.entries(kv)) if (v !== undefined && v !== null) m[k] = v;
  return Buffer.from(encode(m));
}

function toInfo(m) {
  return { name: m.name, type: m.type, size: Number(m.size), mode: m.mode, mtime: m.mtime, target: m.target ?? null };
}

async function fileOp(ptr, request) {
  const req = options(request);
  const buf = native.newBuffer();
  const err = native.outPointer();
  await check(await opAsync(ptr, req, req.length, buf, err), err);
  const raw = native.takeBuffer(buf);
  return raw.length ? decode(raw) : {};
}

const files = {
  async writeFile(ptr, path, data, { mode = 0o644, user } = {}) {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    const opts = options({ mode, user });
    const err = native.outPointer();
    await check(await writeAsync(ptr, String(path), bytes, bytes.length, opts, opts.length, err), err);
  },
  async readFile(ptr, path, { user } = {}) {
    const opts = options({ user });
    const buf = native.newBuffer();
    const err = native.outPointer();
    await check(await readAsync(ptr, String(path), opts, opts.length, buf, err), err);
    return native.takeBuffer(buf);
  },
  async stat(ptr, path) {
    const r = await fileOp(ptr, { op: 'stat', path });
    if (!r.exists) throw new NotFoundError(`stat of ${path}: no such file or folder`);
    return toInfo(r.info);
  },
  async exists(ptr, path) {
    return Boolean((await fileOp(ptr, { op: 'stat', path })).exists);
  },
  async listDir(ptr, path) {
    return (await fileOp(ptr, { op: 'list', path })).entries.map(toInfo);
  },
  async makeDir(ptr, path, { parents = true, mode, user } = {}) {
    await fileOp(ptr, { op: 'mkdir', path, parents, mode, user });
  },
  async remove(ptr, path, { recursive = false } = {}) {
    await fileOp(ptr, { op: 'remove', path, recursive });
  },
  async rename(ptr, src, dst) {
    await fileOp(ptr, { op: 'rename', path: src, dest: dst });
  },
  async upload(ptr, hostPath, guestPath) {
    const err = native.outPointer();
    await check(await uploadAsync(ptr, String(hostPath), String(guestPath), err), err);
  },
  async download(ptr, guestPath, hostPath) {
    const err = native.outPointer();
    await check(await downloadAsync(ptr, String(guestPath), String(hostPath), err), err);
  },
};

module.exports = { files };
