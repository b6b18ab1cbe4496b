'use strict';

// The options of Sandbox.start and execute, and the msgpack they cross the
// C ABI as (include/quicksand.h). Options left undefined are left out, so
// that the library's defaults apply.

const { encode } = require('@msgpack/msgpack');
const { InvalidConfigError, BadRequestError } = require('./errors');
const { packageImageDirs } = require('./images');
const { policyMap } = require('./network');
const { displayMap } = require('./desktop');

const CONFIG_KEYS = {
  image: 'image',
  memory: 'memory',
  cpus: 'cpus',
  accel: 'accel',
  networkMode: 'network_mode',
  portForwards: 'port_forwards',
  bootTimeout: 'boot_timeout',
  extraQemuArgs: 'extra_qemu_args',
  extraKernelArgs: 'extra_kernel_args',
  workdir: 'workdir',
  coldBoot: 'cold_boot',
  allowHostLoopback: 'allow_host_loopback',
  networkPolicy: 'network_policy', // { allowOut, denyOut, hosts }: lib/network.js
  templateDir: 'template_dir',
  imageDirs: 'image_dirs',
  qemuPath: 'qemu_path',
  mounts: 'mounts', // [{ host, guest, readonly }]
  server: 'server',
  apiKey: 'api_key',
  metadata: 'metadata', // { key: value }
  idleTimeout: 'idle_timeout',
  display: 'display', // true | { width, height, vnc }: lib/desktop.js
};

/** Whether a sandbox of these options is a server's (the library's rule: the server option, else $QUICKSAND_SERVER). */
function isRemote(options) {
  return Boolean(options.server || process.env.QUICKSAND_SERVER);
}

/** The msgpack options of qs_sandbox_connect and qs_sandbox_list. */
function encodeRemote(options, allowed) {
  checkKeys(options, allowed, 'option', InvalidConfigError);
  const m = {};
  for (const js of allowed) {
    if (options[js] !== undefined && options[js] !== null) m[CONFIG_KEYS[js]] = options[js];
  }
  return Buffer.from(encode(m));
}

const EXECUTE_KEYS = ['timeout', 'cwd', 'shell', 'env', 'stdin', 'user', 'maxOutput', 'onStdout', 'onStderr', 'signal'];

function checkKeys(obj, allowed, what, ErrorClass) {
  if (obj === null || typeof obj !== 'object') throw new ErrorClass(`${what} must be an object`);
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new ErrorClass(`unknown ${what} "${k}" (known: ${allowed.join(', ')})`);
  }
}

/** The msgpack config of qs_sandbox_start; values are checked by the library. */
function encodeConfig(options) {
  checkKeys(options, Object.keys(CONFIG_KEYS), 'option', InvalidConfigError);
  const cfg = {};
  for (const [js, wire] of Object.entries(CONFIG_KEYS)) {
    if (options[js] !== undefined && options[js] !== null) cfg[wire] = options[js];
  }
  if (cfg.network_policy !== undefined) cfg.network_policy = policyMap(cfg.network_policy);
  if (cfg.display !== undefined) {
    cfg.display = displayMap(cfg.display);
    if (cfg.display === null) delete cfg.display; // false: none, the library's default
  }
  // After the caller's folders, those of installed image packages (lib/images.js).
  // (Anything but an array is left for the library to refuse.)
  // A server looks for images itself.
  if (!isRemote(options) && (cfg.image_dirs === undefined || Array.isArray(cfg.image_dirs))) {
    const dirs = [...(cfg.image_dirs || []), ...packageImageDirs()];
    if (dirs.length) cfg.image_dirs = dirs;
  }
  return Buffer.from(encode(cfg));
}

function encodeRequest(command, opts) {
  checkKeys(opts, EXECUTE_KEYS, 'execute option', BadRequestError);
  if (typeof command !== 'string') throw new BadRequestError('command must be a string');
  for (const cb of ['onStdout', 'onStderr']) {
    if (opts[cb] !== undefined && typeof opts[cb] !== 'function') throw new BadRequestError(`${cb} must be a function`);
  }
  const req = { command };
  for (const k of ['timeout', 'cwd', 'shell', 'env', 'user']) if (opts[k] !== undefined && opts[k] !== null) req[k] = opts[k];
  if (opts.maxOutput !== undefined && opts.maxOutput !== null) req.max_output = opts.maxOutput;
  if (opts.stdin !== undefined && opts.stdin !== null) {
    req.stdin = typeof opts.stdin === 'string' ? opts.stdin : Uint8Array.from(opts.stdin);
  }
  return Buffer.from(encode(req));
}

module.exports = { CONFIG_KEYS, EXECUTE_KEYS, encodeConfig, encodeRequest, encodeRemote };
