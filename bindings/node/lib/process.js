'use strict';

// Background processes (include/quicksand.h, "Processes"): each call runs
// on libuv's pool; following the output (attach, wait) is an asynchronous
// library call like execute.

const os = require('node:os');
const { encode, decode } = require('@msgpack/msgpack');
const native = require('./native');
const { BadRequestError } = require('./errors');

const { onPool, check } = native;
const startAsync = onPool('qs_sandbox_start_process');
const listAsync = onPool('qs_sandbox_list_processes');
const writeAsync = onPool('qs_process_write');
const closeAsync = onPool('qs_process_close_stdin');
const signalAsync = onPool('qs_process_signal');
const resizeAsync = onPool('qs_process_resize');

const START_KEYS = ['cwd', 'env', 'shell', 'user', 'pty', 'onStdout', 'onStderr'];

/** A running process as listProcesses gives it, from the library's map. */
function toProcessInfo(p) {
  return { id: p.id, pid: p.pid, command: p.command, pty: Boolean(p.pty) };
}

const processes = {
  async start(ptr, command, opts) {
    for (const k of Object.keys(opts)) {
      if (!START_KEYS.includes(k)) throw new BadRequestError(`unknown process option "${k}" (known: ${START_KEYS.join(', ')})`);
    }
    if (typeof command !== 'string') throw new BadRequestError('command must be a string');
    const req = { command };
    for (const k of ['cwd', 'env', 'shell', 'user']) if (opts[k] !== undefined && opts[k] !== null) req[k] = opts[k];
    if (opts.pty) req.pty = { rows: opts.pty.rows ?? 24, cols: opts.pty.cols ?? 80 };
    const raw = Buffer.from(encode(req));
    const buf = native.newBuffer();
    const err = native.outPointer();
    await check(await startAsync(ptr, raw, raw.length, buf, err), err);
    return decode(native.takeBuffer(buf));
  },
  async list(ptr) {
    const buf = native.newBuffer();
    const err = native.outPointer();
    await check(await listAsync(ptr, buf, err), err);
    return decode(native.takeBuffer(buf)).map(toProcessInfo);
  },
};

/** A signal as a number: a number, or a name such as 'SIGTERM'. */
function signalNumber(sig) {
  if (typeof sig === 'number') return sig;
  const n = os.constants.signals[String(sig)];
  if (n === undefined) throw new BadRequestError(`unknown signal ${sig}`);
  return n;
}

/**
 * A background process. It runs on after the call that started it, until it
 * exits, is killed, or the sandbox stops; the guest keeps the last 4 MiB of
 * its output, so wait() and attaches see it from the start.
 */
class Process {
  #ptr;
  #follow;
  #follower = null;

  // opts.follow: follow from now on even without callbacks (an attach);
  // started hears how the follower's start went.
  constructor(ptr, id, pid, follow, opts, started) {
    this.#ptr = ptr;
    this.#follow = follow;
    /** Names the process within its sandbox (Sandbox.attach takes it). */
    this.id = id;
    /** Its pid in the guest (0 for a handle made by attach). */
    this.pid = pid;
    if (opts.follow || opts.onStdout || opts.onStderr) {
      this.#follower = follow({ onStdout: opts.onStdout, onStderr: opts.onStderr }, started);
      this.#follower.catch(() => {}); // wait() reports it
    }
    Object.freeze(this);
  }

  /** Sends data (string as UTF-8, Buffer or Uint8Array) to stdin, once the process took it. */
  async writeStdin(data) {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    const err = native.outPointer();
    await check(await writeAsync(this.#ptr(), this.id, bytes, bytes.length, err), err);
  }

  /** Closes stdin (on a terminal: sends ^D). */
  async closeStdin() {
    const err = native.outPointer();
    await check(await closeAsync(this.#ptr(), this.id, err), err);
  }

  /** Sends a signal (a number 1 to 64, or a name; default 'SIGTERM') to the process's group. */
  async signal(sig = 'SIGTERM') {
    const n = signalNumber(sig);
    const err = native.outPointer();
    await check(await signalAsync(this.#ptr(), this.id, n, err), err);
  }

  async kill() { return this.signal('SIGKILL'); }

  /** Resizes the process's terminal (BadRequestError without one). */
  async resize(rows, cols) {
    const err = native.outPointer();
    await check(await resizeAsync(this.#ptr(), this.id, rows, cols, err), err);
  }

  /**
   * Resolves once the process exits with how it ended, its output from the
   * start (as far as it was kept). `signal` (an AbortSignal) stops waiting;
   * the process runs on.
   */
  wait({ signal } = {}) {
    if (this.#follower && !signal) return this.#follower;
    if (this.#follower) {
      return new Promise((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        this.#follower.then(resolve, reject);
      });
    }
    return this.#follow({ signal });
  }
}

module.exports = { processes, Process, toProcessInfo };
