'use strict';

const { decode } = require('@msgpack/msgpack');
const native = require('./native');
const calls = require('./calls');
const { files } = require('./files');
const { mounts } = require('./mounts');
const { network } = require('./network');
const { remote } = require('./remote');
const { processes, Process } = require('./process');
const { code } = require('./code');
const { desktop } = require('./desktop');
const { encodeConfig, encodeRequest } = require('./options');
const { SandboxNotRunningError } = require('./errors');

/** The boot timing of the library's info map, in the binding's names. */
function toBootTiming(t) {
  return { warm: t.warm, qemuStarted: t.qemu_started, kernelBooted: t.kernel_booted, agentListening: t.agent_listening, ready: t.ready };
}

const STDOUT = 1;
const STDERR = 2;

// --- lifetime ---------------------------------------------------------------------
// No VM of this process outlives it: QEMU dies with it (the library's
// parent-death signal), and at a normal exit every live handle is freed,
// which stops its VM and removes its folder. A collected Sandbox is freed
// too. A server's sandbox is not stopped by a free (the library's rule): it
// runs until stop() or its idle timeout, and Sandbox.connect reaches it.

const live = new Set();
const freeHandle = (ptr) => {
  if (live.delete(ptr)) native.lib().qs_sandbox_free(ptr);
};
const collected = new FinalizationRegistry(freeHandle);
process.on('exit', () => {
  for (const ptr of [...live]) freeHandle(ptr);
});

const { onPool, check } = native;
const startAsync = onPool('qs_sandbox_start');
const stopAsync = onPool('qs_sandbox_stop');
const checkpointAsync = onPool('qs_sandbox_checkpoint');
const revertAsync = onPool('qs_sandbox_revert');
const saveAsync = onPool('qs_sandbox_save');
const validateAsync = onPool('qs_save_validate');
const attachAsync = onPool('qs_process_attach_async');

/**
 * A Linux VM of your own.
 *
 *   const sb = await Sandbox.start({ image: 'debian', memory: '512M' });
 *   const r = await sb.execute('uname -a');
 *   await sb.stop();
 */
class Sandbox {
  #ptr;

  /** @private Use Sandbox.start. */
  constructor(ptr) {
    this.#ptr = ptr;
    live.add(ptr);
    collected.register(this, ptr);
  }

  /**
   * Boots a VM and resolves once its agent answers. The boot runs off the
   * main thread.
   * @param {import('../index').SandboxOptions} [options]
   * @returns {Promise<Sandbox>}
   */
  static async start(options = {}) {
    const cfg = encodeConfig(options);
    const out = native.outPointer();
    const err = native.outPointer();
    await check(await startAsync(cfg, cfg.length, out, err), err);
    return new Sandbox(out.deref());
  }

  /**
   * The sandbox `id` (sb.id, or Sandbox.list's) that a server keeps for
   * this key; its methods go to the server. opts: server, apiKey (default
   * $QUICKSAND_SERVER, $QUICKSAND_API_KEY). An unknown id (or another
   * key's) rejects with NotFoundError, a wrong key with AuthError, a server
   * that cannot be reached with TransportError. Only stop() (or its idle
   * timeout) stops it.
   * @returns {Promise<Sandbox>}
   */
  static async connect(id, opts = {}) {
    return new Sandbox(await remote.connect(id, opts));
  }

  /**
   * The sandboxes a server keeps for this key whose metadata has every
   * label of opts.metadata: [{ id, metadata, image, running, created
   * (seconds since the epoch), idleTimeout (seconds; 0: never) }].
   * opts: metadata, server, apiKey.
   */
  static async list(opts = {}) {
    return remote.list(opts);
  }

  /**
   * Sets how long the server lets the sandbox sit idle before it stops it
   * (negative: never; 0 rejects with BadRequestError) and starts that time
   * again, as a keep-alive. A local sandbox has none: BadRequestError.
   */
  async setIdleTimeout(seconds) { return remote.setIdleTimeout(this.#live(), seconds); }

  /**
   * Runs a command with `shell -c` and resolves with how it ended; a failing
   * command resolves too (see exitCode). Rejects with a QuicksandError when
   * the call itself fails, or with the error a callback threw.
   * @param {string} command
   * @param {import('../index').ExecuteOptions} [opts]
   * @returns {Promise<import('../index').ExecuteResult>}
   */
  execute(command, opts = {}) {
    let request;
    try {
      request = encodeRequest(command, opts);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#follow((ptr, ...cb) => native.lib().qs_sandbox_execute_async(ptr, request, request.length, ...cb), opts);
  }

  /**
   * Runs an asynchronous library call (an execute or an attach) that invoke
   * starts with the sandbox, its callbacks, key and out-pointers (invoke
   * returns the status, or a Promise of it when it runs on libuv's pool);
   * resolves with its result. opts: onStdout, onStderr, signal. started
   * (if given) is called once the call began, or with the error of a start
   * that failed: the caller hears of that at once (an attach to an unknown
   * id), not only through the result nobody may be waiting on yet.
   */
  #follow(invoke, opts, started = () => {}) {
    const call = new Promise((resolve, reject) => {
      if (opts.signal?.aborted) {
        started(opts.signal.reason);
        reject(opts.signal.reason);
        return;
      }
      const ptr = this.#live();
      const decoders = { [STDOUT]: new TextDecoder('utf-8'), [STDERR]: new TextDecoder('utf-8') };
      const callbacks = { [STDOUT]: opts.onStdout, [STDERR]: opts.onStderr };
      let callId = null;
      let failure = null; // a callback's exception, or the abort reason
      const cancel = () => {
        if (callId !== null) native.lib().qs_call_cancel(callId);
      };
      const onAbort = () => {
        failure = failure ?? opts.signal.reason;
        cancel();
      };
      const deliver = (stream, text) => {
        if (!text || failure) return;
        try {
          callbacks[stream](text);
        } catch (e) {
          failure = e;
          cancel();
        }
      };
      const key = calls.register({
        chunk(stream, bytes) {
          if (callbacks[stream]) deliver(stream, decoders[stream].decode(bytes, { stream: true }));
        },
        done(err, result) {
          opts.signal?.removeEventListener('abort', onAbort);
          for (const s of [STDOUT, STDERR]) if (callbacks[s]) deliver(s, decoders[s].decode());
          if (failure) reject(failure);
          else if (err) reject(err);
          else resolve(result);
        },
      });
      const idOut = Buffer.alloc(8);
      const errOut = native.outPointer();
      // Without callbacks the library collects the output itself (capped
      // at maxOutput) instead of handing every chunk to JavaScript.
      const streaming = Boolean(opts.onStdout || opts.onStderr);
      const begun = (status) => {
        if (status !== 0) {
          calls.forget(key);
          const e = native.takeError(status, errOut);
          started(e);
          reject(e);
          return;
        }
        callId = Number(idOut.readBigUInt64LE());
        started(null);
        if (opts.signal?.aborted) onAbort();
        else opts.signal?.addEventListener('abort', onAbort, { once: true });
      };
      const status = invoke(ptr, streaming ? calls.onChunk : null, calls.onDone, key, idOut, errOut);
      if (typeof status === 'number') begun(status);
      else status.then(begun, (e) => { calls.forget(key); started(e); reject(e); });
    });
    // Whatever threw before the start was reported (started is a no-op
    // once it was told).
    call.catch((e) => started(e));
    return call;
  }

  /** Captures RAM and disk as checkpoint `tag` (the VM pauses meanwhile). */
  async checkpoint(tag) {
    const err = native.outPointer();
    await check(await checkpointAsync(this.#live(), String(tag), err), err);
  }

  // --- files: guest paths are absolute; errors name the path -------------------
  // Each takes `timeout` (seconds, the whole call's bound; without one a call
  // fails with TransportError once the agent has made no progress for 60 s).
  // A NUL byte in a path is a BadRequestError.

  /**
   * Writes data (Buffer, Uint8Array or string as UTF-8) as the file `path`, whole or not at all,
   * with `mode` (setuid, setgid and sticky bits included; no umask).
   */
  async writeFile(path, data, opts) { return files.writeFile(this.#live(), path, data, opts); }

  /**
   * The bytes of the file `path`, as a Buffer, at most `maxSize` (default 256 MiB): a larger file
   * rejects with BadRequestError before any of it is read (`download` streams to the host's disk).
   */
  async readFile(path, opts) { return files.readFile(this.#live(), path, opts); }

  /**
   * Copies a host file or folder tree (modes, symlinks, empty folders, mtimes) to `guestPath`, which must not exist,
   * made as opts.user (default root).
   */
  async upload(hostPath, guestPath, opts) { return files.upload(this.#live(), hostPath, guestPath, opts); }

  /**
   * Copies a guest file or folder tree, read as opts.user (default root), to `hostPath`, which must not exist;
   * a failure leaves nothing there.
   */
  async download(guestPath, hostPath, opts) { return files.download(this.#live(), guestPath, hostPath, opts); }

  /** The entries of a folder: { name, type, size, mode, mtime, target }. */
  async listDir(path, opts) { return files.listDir(this.#live(), path, opts); }

  /** Describes `path` (a symlink itself); rejects with NotFoundError when absent. */
  async stat(path, opts) { return files.stat(this.#live(), path, opts); }

  async exists(path, opts) { return files.exists(this.#live(), path, opts); }

  /** Makes a folder with `mode` (default 0o755, no umask); with `parents` an existing one keeps its mode. */
  async makeDir(path, opts) { return files.makeDir(this.#live(), path, opts); }

  async remove(path, opts) { return files.remove(this.#live(), path, opts); }

  async rename(src, dst, opts) { return files.rename(this.#live(), src, dst, opts); }

  // --- background processes ------------------------------------------------

  /**
   * Starts `command` in the background and resolves once it runs; it
   * outlives the call. opts: cwd, env, shell, user, pty ({ rows, cols }: a
   * terminal, one output stream, raw input), onStdout, onStderr (its output
   * from the start, as text).
   */
  async startProcess(command, opts = {}) {
    const started = await processes.start(this.#live(), command, opts);
    return this.#process(started.id, started.pid, opts);
  }

  /** A handle to a process another call started; callbacks get its output from the start. */
  /**
   * A handle to a process another call started, following it from now on
   * (wait() gives how it ended); callbacks get its output from the start.
   * An unknown id rejects here, with NotFoundError.
   */
  async attach(id, opts = {}) {
    this.#live();
    let started;
    const begun = new Promise((resolve, reject) => {
      started = (e) => (e ? reject(e) : resolve());
    });
    const p = this.#process(String(id), 0, { ...opts, follow: true }, started);
    await begun;
    return p;
  }

  /** The background processes that still run: [{ id, pid, command, pty }]. */
  async listProcesses() { return processes.list(this.#live()); }

  #process(id, pid, opts, started) {
    // On libuv's pool: the library asks the guest whether the process
    // exists before the attach starts, which must not hold up the main thread.
    const follow = (o, s) => this.#follow((ptr, ...cb) => attachAsync(ptr, id, ...cb), o, s);
    return new Process(() => this.#live(), id, pid, follow, opts, started);
  }

  // --- the code interpreter (E2B's names) -------------------------------------

  /**
   * Runs `source` in a code context, whose variables, imports and folder
   * carry from one run to the next, and resolves with its Execution: rich
   * results (text, html, png, ...), its output, and the exception it raised
   * as `error` (the call does not reject for it). opts: context (a context
   * or its id; none: the default context of `language`, "python" by
   * default, which needs an image with a Jupyter kernel such as
   * debian-python), envs (for this run only), timeout (seconds, default
   * 300, null for none: it interrupts the cell, which then ends with the
   * error "TimeoutError", and the context keeps its state), onStdout,
   * onStderr, onResult, onError (each event in order on the main thread; an
   * async callback is awaited before the next; one that throws interrupts
   * the cell and the call rejects with its error), signal.
   */
  runCode(source, opts = {}) {
    let ptr;
    try {
      ptr = this.#live();
    } catch (e) {
      return Promise.reject(e);
    }
    return code.run(ptr, source, opts);
  }

  /** Makes a code context ({ language: "python" | "bash", cwd }) and starts its kernel: { id, language, cwd }. */
  async createCodeContext(opts) { return code.createContext(this.#live(), opts); }

  /** The code contexts (the default ones among them once used). */
  async listCodeContexts() { return code.listContexts(this.#live()); }

  /** Gives a context (a context or its id) fresh state: a new kernel. */
  async restartCodeContext(ctx) { return code.restartContext(this.#live(), ctx); }

  /** Stops a context (a context or its id); a run in it ends. */
  async removeCodeContext(ctx) { return code.removeContext(this.#live(), ctx); }

  // --- shared folders --------------------------------------------------------

  /**
   * Shares the host folder `host` at `guest` (made when missing) and resolves
   * with its handle { id, host, guest, readonly }. The guest reaches nothing
   * outside the folder; with `{ readonly: true }` it changes nothing in it
   * (the host refuses). Files the guest makes belong to the host's user.
   */
  async mount(host, guest, opts) { return mounts.mount(this.#live(), host, guest, opts); }

  /** Unmounts: once it resolves the guest reaches nothing of the folder, even through files it held open. */
  async unmount(handle) { return mounts.unmount(this.#live(), handle); }

  /** The shared folders mounted now, by guest path. */
  get activeMounts() { return mounts.active(this.#live()); }

  // --- network policy --------------------------------------------------------

  /**
   * Replaces the network policy { allowOut, denyOut, hosts } at once (null:
   * none, plain full mode): new connections obey it, open ones at their next
   * packet. Network mode "full" only; a bad entry rejects with
   * InvalidConfigError naming it.
   */
  async setNetwork(policy) { return network.set(this.#live(), policy); }

  /** The network guard's counts since the sandbox started: { allowed, dropped, namesAllowed, namesRefused }. */
  networkStats() { return network.stats(this.#live()); }

  // --- the desktop (a sandbox started with `display`) ---------------------------
  // Driven from the host through QEMU, not by a program in the guest.
  // Coordinates are pixels, (0, 0) the top left corner. Each call on a
  // sandbox without a display rejects with BadRequestError.

  /** The screen as a PNG image (a Buffer); with `path` it is also written to that file on the host. */
  async screenshot(path) { return desktop.screenshot(this.#live(), path); }

  /** The screen's size in pixels, as the guest has it now: { width, height }. */
  async queryDisplaySize() { return desktop.displaySize(this.#live()); }

  /**
   * Types `text` on a US keyboard (shift where it needs it). Printable ASCII, newline and tab
   * only: another character rejects with BadRequestError naming it, before anything is typed.
   */
  async typeText(text) { return desktop.typeText(this.#live(), text); }

  /**
   * Presses a key or a combination (pressKey(Key.CTRL, Key.ALT, 't')): each down in order, then
   * up in reverse. A key is an X keysym name ("Return", "Page_Up", "F4"; case does not matter)
   * or one printable character; an unknown one rejects with BadRequestError, nothing pressed.
   */
  async pressKey(...keys) { return desktop.pressKey(this.#live(), keys); }

  /** Puts the pointer on pixel (x, y); off the screen rejects with BadRequestError. */
  async mouseMove(x, y) { return desktop.mouseMove(this.#live(), x, y); }

  /** Where mouseMove (or drag) last put the pointer, { x, y }, (0, 0) before any: QEMU does not report the guest's. */
  async queryMousePosition() { return desktop.mousePosition(this.#live()); }

  /** Clicks `button` ("left", the default, "right" or "middle") where the pointer is; twice with `double`. */
  async mouseClick(button = 'left', double = false) { return desktop.mouseClick(this.#live(), button, double); }

  /** Presses `button` (default "left") and holds it. */
  async mouseDown(button = 'left') { return desktop.mouseDown(this.#live(), button); }

  /** Releases `button` (default "left"). */
  async mouseUp(button = 'left') { return desktop.mouseUp(this.#live(), button); }

  /** Turns the wheel `dy` notches down (negative: up) and `dx` right (negative: left), where the pointer is. */
  async scroll(dx = 0, dy = 0) { return desktop.scroll(this.#live(), dx, dy); }

  /** Presses the left button at `start` [x, y], moves to `end` and releases it there. */
  async drag(start, end) { return desktop.drag(this.#live(), start, end); }

  /**
   * Where a VNC viewer watches the screen: { port (on 127.0.0.1), password (8 characters, this
   * sandbox's own) }, or null unless the sandbox was started with display: { vnc: true }.
   */
  vnc() { return desktop.vnc(this.#live()); }

  /** Returns to checkpoint `tag`, running processes included; executes in flight reject with CallCancelledError. */
  async revert(tag) {
    const err = native.outPointer();
    await check(await revertAsync(this.#live(), String(tag), err), err);
  }

  /**
   * Writes the sandbox's state to a folder (a name goes to the image folder,
   * so Sandbox.start({ image: name }) resumes it) and resolves with its path.
   * The VM pauses while its RAM is written, then runs on.
   */
  async save(name) {
    const err = native.outPointer();
    const buf = native.newBuffer();
    await check(await saveAsync(this.#live(), String(name), buf, err), err);
    return native.takeBuffer(buf).toString('utf8');
  }

  /** Checks a save without starting it; rejects when it cannot be resumed. */
  static async validateSave(nameOrPath) {
    const err = native.outPointer();
    await check(await validateAsync(String(nameOrPath), err), err);
  }

  /** Stops the VM; calls in flight reject with SandboxNotRunningError. Safe to call twice. */
  async stop() {
    if (!live.has(this.#ptr)) return;
    const err = native.outPointer();
    await check(await stopAsync(this.#ptr, err), err);
  }

  async [Symbol.asyncDispose]() {
    await this.stop();
  }

  /** True between start and stop (false if the VM died). */
  get isRunning() {
    return live.has(this.#ptr) && this.#info().running;
  }

  /** The sandbox's id: a server's (what Sandbox.connect takes), or a random one for a local sandbox. */
  get id() {
    return this.#info().id;
  }

  /** The sandbox's labels (the metadata option). */
  get metadata() {
    return { ...(this.#info().metadata ?? {}) };
  }

  /** True when a server keeps the sandbox. */
  get remote() {
    return Boolean(this.#info().remote);
  }

  /** "kvm", "hvf" or "tcg". */
  get accelerator() {
    return this.#info().accelerator;
  }

  /** "x86_64" or "arm64". */
  get arch() {
    return this.#info().arch;
  }

  /** The QEMU process id. */
  get pid() {
    return this.#info().pid;
  }

  /** Seconds from the start call to each boot phase. */
  get bootTiming() {
    return toBootTiming(this.#info().boot_timing);
  }

  /** The guest's serial console output so far. */
  consoleLog() {
    const buf = native.newBuffer();
    const err = native.outPointer();
    const status = native.lib().qs_sandbox_console_log(this.#live(), buf, err);
    if (status !== 0) throw native.takeError(status, err);
    return native.takeBuffer(buf).toString('utf8');
  }

  #live() {
    if (!live.has(this.#ptr)) throw new SandboxNotRunningError('the sandbox handle was released');
    return this.#ptr;
  }

  #info() {
    const buf = native.newBuffer();
    const err = native.outPointer();
    const status = native.lib().qs_sandbox_info(this.#live(), buf, err);
    if (status !== 0) throw native.takeError(status, err);
    return decode(native.takeBuffer(buf));
  }
}

module.exports = { Sandbox, toBootTiming };
