'use strict';

// The code interpreter (E2B's names): code runs in contexts whose state
// carries from one run to the next, and the contexts themselves.

const { encode, decode } = require('@msgpack/msgpack');
const native = require('./native');
const calls = require('./calls');
const { BadRequestError } = require('./errors');

const { onPool, check } = native;
const createAsync = onPool('qs_sandbox_create_code_context');
const listAsync = onPool('qs_sandbox_list_code_contexts');
const restartAsync = onPool('qs_sandbox_restart_code_context');
const removeAsync = onPool('qs_sandbox_remove_code_context');

const RUN_KEYS = ['language', 'context', 'onStdout', 'onStderr', 'onResult', 'onError', 'envs', 'timeout', 'signal'];
const FORMATS = ['text', 'html', 'markdown', 'svg', 'png', 'jpeg', 'pdf', 'latex', 'json', 'javascript'];

/** A rich result from the library's map: each format it has, isMainResult, extra, formats(). */
function toResult(m) {
  const r = { isMainResult: Boolean(m.is_main_result) };
  for (const f of FORMATS) if (m[f] !== undefined && m[f] !== null) r[f] = m[f];
  if (m.extra) r.extra = m.extra;
  Object.defineProperty(r, 'formats', {
    value: () => [...FORMATS.filter((f) => r[f] !== undefined), ...Object.keys(r.extra ?? {})],
  });
  return r;
}

function toError(m) {
  return { name: m.name, value: m.value, traceback: m.traceback };
}

/** The caller's Execution from the library's result map. */
function toExecution(m) {
  const results = (m.results ?? []).map(toResult);
  return {
    results,
    logs: { stdout: m.logs?.stdout ?? [], stderr: m.logs?.stderr ?? [] },
    error: m.error ? toError(m.error) : null,
    executionCount: m.execution_count,
    /** The main result's text; undefined if there is none. */
    get text() {
      return results.find((r) => r.isMainResult)?.text;
    },
  };
}

function toContext(m) {
  return { id: m.id, language: m.language, cwd: m.cwd };
}

/** A context's id, from a context or the id itself. */
function contextId(ctx) {
  const id = typeof ctx === 'object' && ctx !== null ? ctx.id : ctx;
  if (typeof id !== 'string' || !id) throw new BadRequestError('a code context must be a context or its id');
  return id;
}

/** The msgpack request of qs_sandbox_run_code_async. */
function encodeRun(code, opts) {
  if (opts === null || typeof opts !== 'object') throw new BadRequestError('runCode options must be an object');
  for (const k of Object.keys(opts)) {
    if (!RUN_KEYS.includes(k)) throw new BadRequestError(`unknown runCode option "${k}" (known: ${RUN_KEYS.join(', ')})`);
  }
  if (typeof code !== 'string') throw new BadRequestError('code must be a string');
  for (const cb of ['onStdout', 'onStderr', 'onResult', 'onError']) {
    if (opts[cb] !== undefined && typeof opts[cb] !== 'function') throw new BadRequestError(`${cb} must be a function`);
  }
  const req = { code };
  if (opts.language !== undefined && opts.language !== null) req.language = opts.language;
  if (opts.context !== undefined && opts.context !== null) req.context = contextId(opts.context);
  if (opts.envs !== undefined && opts.envs !== null) req.env = opts.envs;
  const timeout = opts.timeout === undefined ? 300 : opts.timeout;
  if (timeout !== null) req.timeout = timeout;
  return Buffer.from(encode(req));
}

/**
 * Runs code in sandbox ptr; resolves with its Execution. The events are
 * handled one after another on the main thread, each callback awaited
 * (an async one too) before the next; one that throws cancels the run
 * (the cell is interrupted) and the call rejects with its error, as does
 * aborting opts.signal.
 */
function run(ptr, code, opts = {}) {
  let request;
  try {
    request = encodeRun(code, opts);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(opts.signal.reason);
      return;
    }
    const callbacks = { stdout: opts.onStdout, stderr: opts.onStderr, result: opts.onResult, error: opts.onError };
    const argOf = { stdout: (e) => e.text, stderr: (e) => e.text, result: (e) => toResult(e.result), error: (e) => toError(e.error) };
    let callId = null;
    let failure = null; // a callback's exception, or the abort reason
    let chain = Promise.resolve(); // the events, in order
    const cancel = () => {
      if (callId !== null) native.lib().qs_call_cancel(callId);
    };
    const fail = (e) => {
      if (failure) return;
      failure = e;
      cancel();
    };
    const onAbort = () => fail(opts.signal.reason);
    const key = calls.register({
      decode: toExecution,
      event(e) {
        const cb = callbacks[e.type];
        if (!cb) return;
        chain = chain.then(async () => {
          if (failure) return;
          try {
            await cb(argOf[e.type](e));
          } catch (err) {
            fail(err);
          }
        });
      },
      done(err, execution) {
        chain = chain.then(() => {
          opts.signal?.removeEventListener('abort', onAbort);
          if (failure) reject(failure);
          else if (err) reject(err);
          else resolve(execution);
        });
      },
    });
    const idOut = Buffer.alloc(8);
    const errOut = native.outPointer();
    const status = native.lib().qs_sandbox_run_code_async(ptr, request, request.length, calls.onEvent, calls.onDone, key, idOut, errOut);
    if (status !== 0) {
      calls.forget(key);
      reject(native.takeError(status, errOut));
      return;
    }
    callId = Number(idOut.readBigUInt64LE());
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const code = {
  run,

  async createContext(ptr, opts = {}) {
    const m = { language: opts.language ?? 'python' };
    if (opts.cwd !== undefined && opts.cwd !== null) m.cwd = opts.cwd;
    const raw = Buffer.from(encode(m));
    const buf = native.newBuffer();
    const err = native.outPointer();
    await check(await createAsync(ptr, raw, raw.length, buf, err), err);
    return toContext(decode(native.takeBuffer(buf)));
  },

  async listContexts(ptr) {
    const buf = native.newBuffer();
    const err = native.outPointer();
    await check(await listAsync(ptr, buf, err), err);
    return decode(native.takeBuffer(buf)).map(toContext);
  },

  async restartContext(ptr, ctx) {
    const err = native.outPointer();
    await check(await restartAsync(ptr, contextId(ctx), err), err);
  },

  async removeContext(ptr, ctx) {
    const err = native.outPointer();
    await check(await removeAsync(ptr, contextId(ctx), err), err);
  },
};

module.exports = { code, RUN_KEYS };
