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

const onDone = native.ffi.Callback(...native.doneFnType, (key, status, result, len, err) => {
  try {
    const call = calls.get(Number(key));
    if (!call) return;
    calls.delete(Number(key));
    trackCalls();
    if (status === 0) call.done(null, decode(native.copyBytes(result, len)));
    else call.done(native.borrowedError(status, err));
  } catch (e) {
    // see onChunk
  }
});

function toResult(m) {
  const stdoutBuffer = Buffer.from(m.stdout);
  const stderrBuffer = Buffer.from(m.stderr);
  return {
    stdout: stdoutBuffer.toString('utf8'),
    stderr: stderrBuffer.toString('utf8'),
    exitCode: m.exit_code,
    timedOut: m.timed_out,
    stdoutTruncated: Boolean(m.stdout_truncated),
    stderrTruncated: Boolean(m.stderr_truncated),
    stdoutBuffer,
    stderrBuffer,
    duration: m.duration_ms / 1000, // seconds, as timeout and as in Python
    durationMs: m.duration_ms,
  };
}

/** Registers a call's handlers ({chunk, done}); returns its key for the library. */
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

module.exports = { register, forget, onChunk, onDone, toResult };
