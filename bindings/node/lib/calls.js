'use strict';

// Calls in flight: the library calls back on its own threads; ffi-napi
// carries each call to the main thread and holds the library thread until
// JavaScript has run it, so chunks arrive in order and a slow callback slows
// the command, not memory.

const { decode } = require('@msgpack/msgpack');
const native = require('./native');

// The library calls back on its own threads; ffi-napi carries each call to the
// main thread and holds the library thread until JavaScript has run it, so
// chunks arrive in order and a slow callback slows the command, not memory.

const calls = new Map();
let nextKey = 1;
// Pending Promises alone do not keep Node alive: a timer does, while calls run.
let keepAlive = null;

function trackCalls() {
  if (calls.size > 0 && !keepAlive) keepAlive = setInterval(() => {}, 1 << 30);
  if (calls.size === 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = null;
  }
}

const onChunk = native.ffi.Callback(...native.chunkFnType, (key, stream, data, len) => {
  try {
    const call = calls.get(Number(key));
    if (call) call.chunk(stream, native.copyBytes(data, len));
  } catch (e) {
    // Nothing may throw into C; call.chunk records callback errors itself.
  }
});

// A code run's events (qs_event_fn): decoded from the lent bytes at once.
const onEvent = native.ffi.Callback(...native.eventFnType, (key, data, len) => {
  try {
    const call = calls.get(Number(key));
    if (call) call.event(decode(native.borrowedBytes(data, len)));
  } catch (e) {
    // see onChunk
  }
});

const onDone = native.ffi.Callback(...native.doneFnType, (key, status, result, len, err) => {
  try {
    const call = calls.get(Number(key));
    if (!call) return;
    calls.delete(Number(key));
    trackCalls();
    let outcome;
    try {
      // Decoded straight from the library's memory (lent for this call
      // only); toResult copies the output out of it.
      // A call may decode its result its own way (a code run's Execution).
      const toOutcome = call.decode ?? toResult;
      outcome = status === 0 ? [null, toOutcome(decode(native.borrowedBytes(result, len)))]
        : [native.borrowedError(status, err)];
    } catch (e) {
      outcome = [e]; // the caller must hear of it, not wait for ever
    }
    call.done(...outcome);
  } catch (e) {
    // see onChunk
  }
});

/** A lazily decoded UTF-8 view of buffer, as an enumerable property. */
function textOf(target, name, buffer) {
  let text = null;
  Object.defineProperty(target, name, {
    enumerable: true,
    get() {
      if (text === null) text = buffer.toString('utf8');
      return text;
    },
  });
}

/**
 * The caller's result from the library's. stdout and stderr are decoded
 * when first read: a caller that streamed hundreds of MiB through callbacks
 * does not pay for text it never looks at.
 */
function toResult(m) {
  const stdoutBuffer = Buffer.from(m.stdout); // a copy: m may view borrowed memory
  const stderrBuffer = Buffer.from(m.stderr);
  const r = {};
  textOf(r, 'stdout', stdoutBuffer);
  textOf(r, 'stderr', stderrBuffer);
  return Object.assign(r, {
    exitCode: m.exit_code,
    timedOut: m.timed_out,
    stdoutTruncated: Boolean(m.stdout_truncated),
    stderrTruncated: Boolean(m.stderr_truncated),
    stdoutBuffer,
    stderrBuffer,
    duration: m.duration, // seconds, as timeout and as in Python
  });
}

/** Registers a call's handlers ({chunk, done}, or {event, done, decode}); returns its key for the library. */
function register(call) {
  const key = nextKey++;
  calls.set(key, call);
  trackCalls();
  return key;
}

/** Forgets a call the library refused to start. */
function forget(key) {
  calls.delete(key);
  trackCalls();
}

module.exports = { register, forget, onChunk, onEvent, onDone, toResult };
