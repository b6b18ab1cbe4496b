'use strict';

// Files in a sandbox (include/quicksand.h, "Files"): each call runs on
// libuv's pool, so nothing blocks the event loop. Guest paths are absolute;
// errors name the path.

const { encode, decode } = require('@msgpack/msgpack');
const native = require('./native');
const { NotFoundError, BadRequestError } = require('./errors');

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

// A path as the library takes it. A NUL byte is refused here: the library
// takes C strings, which end at the first one, so '/tmp/ok.txt\0/../x'
// would have been /tmp/ok.txt.
function cPath(p) {
  const s = String(p);
  if (s.includes('\0')) throw new BadRequestError(`the path ${JSON.stringify(s)} contains a NUL byte`);
  return s;
}

function toInfo(m) {
  return { name: m.name, type: m.type, size: Number(m.size), mode: m.mode, mtime: m.mtime, target: m.target ?? null };
}

async function fileOp(ptr, request) {
  if (request.path != null) cPath(request.path);
  if (request.dest != null) cPath(request.dest);
  const req = options(request);
  const buf = native.newBuffer();
  const err = native.outPointer();
  await check(await opAsync(ptr, req, req.length, buf, err), err);
  const raw = native.takeBuffer(buf);
  return raw.length ? decode(raw) : {};
}

// Every call takes `timeout` (seconds): its bound on the whole call, past
// which it rejects with CallCancelledError; without one, a call fails with
// TransportError once the agent has made no progress for 60 s.
const files = {
  async writeFile(ptr, path, data, { mode = 0o644, user, timeout } = {}) {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    const p = cPath(path);
    const opts = options({ mode, user, timeout });
    const err = native.outPointer();
    await check(await writeAsync(ptr, p, bytes, bytes.length, opts, opts.length, err), err);
  },
  async readFile(ptr, path, { user, maxSize, timeout } = {}) {
    const p = cPath(path);
    const opts = options({ user, max_size: maxSize, timeout });
    const buf = native.newBuffer();
    const err = native.outPointer();
    await check(await readAsync(ptr, p, opts, opts.length, buf, err), err);
    return native.takeBuffer(buf);
  },
  async stat(ptr, path, { timeout } = {}) {
    const r = await fileOp(ptr, { op: 'stat', path, timeout });
    if (!r.exists) throw new NotFoundError(`stat of ${path}: no such file or folder`);
    return toInfo(r.info);
  },
  async exists(ptr, path, { timeout } = {}) {
    return Boolean((await fileOp(ptr, { op: 'stat', path, timeout })).exists);
  },
  async listDir(ptr, path, { timeout } = {}) {
    return (await fileOp(ptr, { op: 'list', path, timeout })).entries.map(toInfo);
  },
  async makeDir(ptr, path, { parents = true, mode, user, timeout } = {}) {
    await fileOp(ptr, { op: 'mkdir', path, parents, mode, user, timeout });
  },
  async remove(ptr, path, { recursive = false, timeout } = {}) {
    await fileOp(ptr, { op: 'remove', path, recursive, timeout });
  },
  async rename(ptr, src, dst, { timeout } = {}) {
    await fileOp(ptr, { op: 'rename', path: src, dest: dst, timeout });
  },
  async upload(ptr, hostPath, guestPath, { user, timeout } = {}) {
    const opts = options({ user, timeout });
    const err = native.outPointer();
    await check(await uploadAsync(ptr, cPath(hostPath), cPath(guestPath), opts, opts.length, err), err);
  },
  async download(ptr, guestPath, hostPath, { user, timeout } = {}) {
    const opts = options({ user, timeout });
    const err = native.outPointer();
    await check(await downloadAsync(ptr, cPath(guestPath), cPath(hostPath), opts, opts.length, err), err);
  },
};

module.exports = { files, toInfo };
