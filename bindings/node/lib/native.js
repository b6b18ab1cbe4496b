'use strict';

// libquicksand through ffi-napi: finding the library and declaring the C
// ABI (include/quicksand.h). Nothing here knows about sandboxes.

const fs = require('fs');
const { promisify } = require('util');
const path = require('path');
const ffi = require('@2060.io/ffi-napi');
const ref = require('@2060.io/ref-napi');
const { LibraryNotFoundError, errorFor } = require('./errors');

const LIB_ENV = 'QUICKSAND_LIB';
const LIB_NAME = 'libquicksand.so';

/** Where the library is looked for, in order. */
function candidates() {
  const list = [];
  if (process.env[LIB_ENV]) list.push(process.env[LIB_ENV]);
  // The npm package carries the library built for each platform it supports.
  list.push(path.join(__dirname, '..', 'prebuilds', `${process.platform}-${process.arch}`, LIB_NAME));
  list.push(path.join(__dirname, '..', LIB_NAME));
  // bindings/node/lib -> the repository's build output.
  list.push(path.join(__dirname, '..', '..', '..', 'out', 'lib', LIB_NAME));
  return list;
}

const voidPtr = ref.refType(ref.types.void);
const voidPtrPtr = ref.refType(voidPtr);
// qs_buffer { uint8_t *data; size_t len; } as two pointer-sized words.
const BUFFER_SIZE = 2 * ref.sizeof.pointer;

// qs_status, the header's enum of status codes: passed as an int.
const qsStatus = 'int';

// user_data crosses as a pointer-sized integer (uint64: only 64-bit
// platforms are built for): a key into a table of calls.
const chunkFnType = ['void', ['uint64', 'int', voidPtr, 'size_t']];
const doneFnType = ['void', ['uint64', qsStatus, voidPtr, 'size_t', voidPtr]];
const eventFnType = ['void', ['uint64', voidPtr, 'size_t']];

const signatures = {
  qs_version: ['string', []],
  qs_sandbox_start: [qsStatus, [voidPtr, 'size_t', voidPtrPtr, voidPtrPtr]],
  qs_sandbox_execute_async: [qsStatus, [voidPtr, voidPtr, 'size_t', voidPtr, voidPtr, 'uint64', voidPtr, voidPtrPtr]],
  qs_call_cancel: [qsStatus, ['uint64']],
  qs_sandbox_stop: [qsStatus, [voidPtr, voidPtrPtr]],
  qs_sandbox_free: ['void', [voidPtr]],
  qs_sandbox_info: [qsStatus, [voidPtr, voidPtr, voidPtrPtr]],
  qs_sandbox_console_log: [qsStatus, [voidPtr, voidPtr, voidPtrPtr]],
  qs_sandbox_checkpoint: [qsStatus, [voidPtr, 'string', voidPtrPtr]],
  qs_sandbox_revert: [qsStatus, [voidPtr, 'string', voidPtrPtr]],
  qs_sandbox_save: [qsStatus, [voidPtr, 'string', voidPtr, voidPtrPtr]],
  qs_save_validate: [qsStatus, ['string', voidPtrPtr]],
  qs_sandbox_write_file: [qsStatus, [voidPtr, 'string', voidPtr, 'size_t', voidPtr, 'size_t', voidPtrPtr]],
  qs_sandbox_read_file: [qsStatus, [voidPtr, 'string', voidPtr, 'size_t', voidPtr, voidPtrPtr]],
  qs_sandbox_file_op: [qsStatus, [voidPtr, voidPtr, 'size_t', voidPtr, voidPtrPtr]],
  qs_sandbox_upload: [qsStatus, [voidPtr, 'string', 'string', voidPtr, 'size_t', voidPtrPtr]],
  qs_sandbox_download: [qsStatus, [voidPtr, 'string', 'string', voidPtr, 'size_t', voidPtrPtr]],
  qs_sandbox_connect: [qsStatus, ['string', voidPtr, 'size_t', voidPtrPtr, voidPtrPtr]],
  qs_sandbox_list: [qsStatus, [voidPtr, 'size_t', voidPtr, voidPtrPtr]],
  qs_sandbox_set_idle_timeout: [qsStatus, [voidPtr, 'double', voidPtrPtr]],
  qs_pool_new: [qsStatus, [voidPtr, 'size_t', 'int', voidPtrPtr, voidPtrPtr]],
  qs_pool_start: [qsStatus, [voidPtr, voidPtrPtr, voidPtrPtr]],
  qs_pool_close: [qsStatus, [voidPtr, voidPtrPtr]],
  qs_pool_free: ['void', [voidPtr]],
  qs_sandbox_start_process: [qsStatus, [voidPtr, voidPtr, 'size_t', voidPtr, voidPtrPtr]],
  qs_sandbox_list_processes: [qsStatus, [voidPtr, voidPtr, voidPtrPtr]],
  qs_process_write: [qsStatus, [voidPtr, 'string', voidPtr, 'size_t', voidPtrPtr]],
  qs_process_close_stdin: [qsStatus, [voidPtr, 'string', voidPtrPtr]],
  qs_process_signal: [qsStatus, [voidPtr, 'string', 'int', voidPtrPtr]],
  qs_process_resize: [qsStatus, [voidPtr, 'string', 'int', 'int', voidPtrPtr]],
  qs_process_attach_async: [qsStatus, [voidPtr, 'string', voidPtr, voidPtr, 'uint64', voidPtr, voidPtrPtr]],
  qs_sandbox_mount: [qsStatus, [voidPtr, voidPtr, 'size_t', voidPtr, voidPtrPtr]],
  qs_sandbox_unmount: [qsStatus, [voidPtr, 'string', voidPtrPtr]],
  qs_sandbox_list_mounts: [qsStatus, [voidPtr, voidPtr, voidPtrPtr]],
  qs_sandbox_set_network: [qsStatus, [voidPtr, voidPtr, 'size_t', voidPtrPtr]],
  qs_sandbox_network_stats: [qsStatus, [voidPtr, voidPtr, voidPtrPtr]],
  qs_sandbox_run_code_async: [qsStatus, [voidPtr, voidPtr, 'size_t', voidPtr, voidPtr, 'uint64', voidPtr, voidPtrPtr]],
  qs_sandbox_create_code_context: [qsStatus, [voidPtr, voidPtr, 'size_t', voidPtr, voidPtrPtr]],
  qs_sandbox_list_code_contexts: [qsStatus, [voidPtr, voidPtr, voidPtrPtr]],
  qs_sandbox_restart_code_context: [qsStatus, [voidPtr, 'string', voidPtrPtr]],
  qs_sandbox_remove_code_context: [qsStatus, [voidPtr, 'string', voidPtrPtr]],
  qs_sandbox_screenshot: [qsStatus, [voidPtr, voidPtr, voidPtrPtr]],
  qs_sandbox_display_size: [qsStatus, [voidPtr, voidPtr, voidPtr, voidPtrPtr]],
  qs_sandbox_type_text: [qsStatus, [voidPtr, 'string', voidPtrPtr]],
  qs_sandbox_press_key: [qsStatus, [voidPtr, voidPtr, 'size_t', voidPtrPtr]],
  qs_sandbox_mouse_move: [qsStatus, [voidPtr, 'int', 'int', voidPtrPtr]],
  qs_sandbox_mouse_position: [qsStatus, [voidPtr, voidPtr, voidPtr, voidPtrPtr]],
  qs_sandbox_mouse_click: [qsStatus, [voidPtr, 'string', 'int', voidPtrPtr]],
  qs_sandbox_mouse_down: [qsStatus, [voidPtr, 'string', voidPtrPtr]],
  qs_sandbox_mouse_up: [qsStatus, [voidPtr, 'string', voidPtrPtr]],
  qs_sandbox_scroll: [qsStatus, [voidPtr, 'int', 'int', voidPtrPtr]],
  qs_sandbox_drag: [qsStatus, [voidPtr, 'int', 'int', 'int', 'int', voidPtrPtr]],
  qs_sandbox_vnc: [qsStatus, [voidPtr, voidPtr, voidPtrPtr]],
  qs_buffer_free: ['void', [voidPtr]],
  qs_error_code: [qsStatus, [voidPtr]],
  qs_error_message: ['string', [voidPtr]],
  qs_error_free: ['void', [voidPtr]],
};

let loaded = null;
let loadedPath = null; // for lib/imagecli.js, which declares its own functions

/** The library, loaded on first use so that requiring never fails. */
function lib() {
  if (loaded) return loaded;
  const tried = [];
  for (const p of candidates()) {
    if (!fs.existsSync(p)) {
      tried.push(`${p} (missing)`);
      continue;
    }
    try {
      loaded = ffi.Library(p, signatures);
      loadedPath = p;
      return loaded;
    } catch (e) {
      tried.push(`${p} (${e.message})`);
    }
  }
  throw new LibraryNotFoundError(
    `libquicksand.so not found; looked in: ${tried.join('; ')}. Build it with \`make lib\` or set ${LIB_ENV}.`,
  );
}

/** A fresh out-parameter for a pointer (qs_sandbox **, qs_error **). */
function outPointer() {
  return ref.alloc(voidPtr, ref.NULL);
}

/** An error owned by the library (on_done's): read, not freed. */
function borrowedError(status, errPtr) {
  const message = errPtr && !ref.isNull(errPtr) ? lib().qs_error_message(errPtr) : '';
  return errorFor(status, message);
}

/** Turns an owned qs_error into an Error and frees it. */
function takeError(status, errOut) {
  const errPtr = errOut.deref();
  if (ref.isNull(errPtr)) return errorFor(status, `libquicksand call failed with status ${status}`);
  const e = errorFor(lib().qs_error_code(errPtr), lib().qs_error_message(errPtr));
  lib().qs_error_free(errPtr);
  return e;
}

/** A zeroed qs_buffer for the library to fill. */
function newBuffer() {
  return Buffer.alloc(BUFFER_SIZE);
}

/** Copies a filled qs_buffer into a Node Buffer and frees it. */
function takeBuffer(buf) {
  const data = ref.readPointer(buf, 0, 0);
  const len = Number(ref.readUInt64LE(buf, ref.sizeof.pointer));
  const out = len ? Buffer.from(ref.reinterpret(data, len, 0)) : Buffer.alloc(0);
  lib().qs_buffer_free(buf);
  return out;
}

/** A view of len bytes at ptr, without copying them: valid only while the library lends them (during a callback). */
function borrowedBytes(ptr, len) {
  return len ? ref.reinterpret(ptr, Number(len), 0) : Buffer.alloc(0);
}

/** Copies len bytes at ptr (valid only during a callback). */
function copyBytes(ptr, len) {
  return len ? Buffer.from(ref.reinterpret(ptr, Number(len), 0)) : Buffer.alloc(0);
}

// onPool runs a library call that waits on the VM on libuv's pool, off the
// main thread, as a Promise of its status.
const onPool = (name) => (...a) => promisify(lib()[name].async)(...a);

/** Throws the error of a failed call (status not 0). */
function check(status, err) {
  if (status !== 0) throw takeError(status, err);
}

module.exports = {
  onPool,
  check,
  ffi, ref, lib, candidates, libraryPath: () => (lib(), loadedPath), outPointer, borrowedError, takeError, newBuffer, takeBuffer, copyBytes, borrowedBytes,
  chunkFnType, doneFnType, eventFnType, voidPtr, qsStatus,
  // For internal/contract, which checks them against include/quicksand.h.
  signatures, voidPtrPtr,
};
