"""Calls in flight: the bridge that carries the library's callbacks (which
arrive on library threads) to the caller, and cancels what is left at exit."""

from __future__ import annotations

import atexit
import codecs
import ctypes
import itertools
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple, Union

import msgpack

from . import _lib
from .types import ExecuteResult

STDOUT, STDERR = 1, 2

# --- calls in flight ------------------------------------------------------------

# Events a call delivers to its owner, in order: ("chunk", stream, str) any
# number of times, then ("done", ExecuteResult | None, Exception | None).
Deliver = Callable[[tuple], None]
# Turns a chunk the library lends (a memoryview, valid during its callback
# only) into what is delivered (str, or bytes for raw callbacks), on the
# library thread; None: nothing.
Prepare = Callable[[int, memoryview], Union[str, bytes, None]]

# Turns on_done's result map into what the call returns.
Decode = Callable[[Dict[str, Any]], Any]

_calls: Dict[int, Tuple[Deliver, Optional[Prepare], Decode]] = {}
_call_ids: Dict[int, int] = {}  # key -> the library's call id, for cancel
_ids = itertools.count(1)
_calls_lock = threading.Lock()


@atexit.register
def _end_calls_at_exit(timeout: float = 5.0) -> None:
    """The library calls back from its own threads; a callback that runs
    once the interpreter is being torn down crashes the process. So calls
    still in flight at exit are cancelled, and their last callbacks awaited
    (for a bounded time), while the interpreter can still take them."""
    with _calls_lock:
        ids = list(_call_ids.values())
    for call_id in ids:
        _lib.lib().qs_call_cancel(call_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _calls_lock:
            if not _calls:
                return
        time.sleep(0.01)


@_lib.ChunkFn
def _on_chunk(user_data: Optional[int], stream: int, data: Any, n: int) -> None:
    # Runs on a library thread; must never raise into C. The chunk is
    # decoded where the library lends it: no copy of the bytes first.
    try:
        deliver, prepare, _ = _calls.get(user_data or 0, (None, None, None))
        if deliver is not None and prepare is not None:
            text = prepare(stream, _lib.borrowed_view(data, n))
            if text:
                deliver(("chunk", stream, text))
    except BaseException:  # noqa: BLE001 - nothing may cross into C
        pass


@_lib.EventFn
def _on_event(user_data: Optional[int], data: Any, n: int) -> None:
    # A code run's event (qs_event_fn), decoded on the library thread.
    try:
        deliver, _, _ = _calls.get(user_data or 0, (None, None, None))
        if deliver is not None:
            deliver(("event", msgpack.unpackb(_lib.borrowed_view(data, n), raw=False)))
    except BaseException:  # noqa: BLE001 - nothing may cross into C
        pass


@_lib.DoneFn
def _on_done(user_data: Optional[int], status: int, result: Any, n: int, err: Optional[int]) -> None:
    try:
        with _calls_lock:
            deliver, _, decode = _calls.pop(user_data or 0, (None, None, None))
            _call_ids.pop(user_data or 0, None)
        if deliver is None or decode is None:
            return
        try:
            if status == 0:
                # Unpacked straight from the library's memory (valid during
                # this call): one copy of the output fewer than string_at.
                res = decode(msgpack.unpackb(_lib.borrowed_view(result, n), raw=False))
                event: tuple = ("done", res, None)
            else:
                event = ("done", None, _lib.error_from_borrowed(status, err))
        except BaseException as e:  # noqa: BLE001 - the caller must hear of it, not wait for ever
            event = ("done", None, e)
        deliver(event)
    except BaseException:  # noqa: BLE001 - nothing may cross into C
        pass


class Execution:
    """Turns a call's events into callbacks on the owner's thread, then a
    result. The callbacks get text: each stream is decoded as UTF-8 across
    chunk boundaries (invalid bytes become U+FFFD), on the library thread
    (prepare); raw callbacks get the bytes. A callback that raises cancels
    the call; its exception is what the caller gets."""

    def __init__(
        self,
        on_stdout: Optional[Callable[[Any], Any]],
        on_stderr: Optional[Callable[[Any], Any]],
        cancel: Callable[[], None],
        raw: bool = False,
    ) -> None:
        self._callbacks = {s: cb for s, cb in ((STDOUT, on_stdout), (STDERR, on_stderr)) if cb is not None}
        self._decoders = {} if raw else {s: codecs.getincrementaldecoder("utf-8")("replace") for s in self._callbacks}
        self._raw = raw
        self._cancel = cancel
        self.error: Optional[BaseException] = None

    @property
    def prepare(self) -> Optional[Prepare]:
        """What the library thread does with each chunk; None when no
        stream has a callback (the library then sends no chunks)."""
        return self._prepare if self._callbacks else None

    def _prepare(self, stream: int, chunk: memoryview) -> Union[str, bytes, None]:
        if stream not in self._callbacks:
            return None
        return bytes(chunk) if self._raw else self._decoders[stream].decode(chunk)

    def _call(self, stream: int, data: Union[str, bytes]) -> None:
        cb = self._callbacks.get(stream)
        if cb is not None and data and self.error is None:
            try:
                cb(data)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                self.error = e
                self._cancel()

    def handle(self, event: tuple) -> bool:
        """Processes one event; True once the call is over."""
        if event[0] == "chunk":
            self._call(event[1], event[2])
            return False
        # The library thread is done with the decoders: what they hold back
        # (an incomplete character at the very end) goes out now.
        for stream, decoder in self._decoders.items():
            self._call(stream, decoder.decode(b"", final=True))
        _, self.result, self.failure = event
        return True

    def outcome(self) -> ExecuteResult:
        if self.error is not None:
            raise self.error
        if self.failure is not None:
            raise self.failure
        return self.result


# Invoke starts an asynchronous library call with its callbacks, key,
# call-id and error out-pointers, and returns its status.
Invoke = Callable[[Any, Any, int, Any, Any], int]


def start(invoke: Invoke, deliver: Deliver, prepare: Optional[Prepare], decode: Optional[Decode] = None) -> int:
    """Starts an asynchronous call (an execute, an attach or a code run)
    whose events go to deliver, its chunks made ready by prepare (None: the
    library collects the output itself and sends no chunks), its result
    made by decode; returns the library's call id."""
    streaming = prepare is not None
    if decode is None:  # looked up now, not when this module was loaded
        decode = ExecuteResult._from_wire
    with _calls_lock:
        key = next(_ids)
        _calls[key] = (deliver, prepare, decode)
    call_id, err = ctypes.c_uint64(), ctypes.c_void_p()
    status = invoke(_on_chunk if streaming else _lib.ChunkFn(), _on_done, key, ctypes.byref(call_id), ctypes.byref(err))
    with _calls_lock:
        if status != 0:
            _calls.pop(key, None)
        elif key in _calls:  # else it is over already
            _call_ids[key] = call_id.value
    _lib.check(status, err)
    return call_id.value


def execute_call(ptr: Any, request: bytes) -> Invoke:
    return lambda *cb: _lib.lib().qs_sandbox_execute_async(ptr, request, len(request), *cb)


def attach_call(ptr: Any, process_id: str) -> Invoke:
    return lambda *cb: _lib.lib().qs_process_attach_async(ptr, process_id.encode(), *cb)


def run_code_call(ptr: Any, request: bytes) -> Invoke:
    """A code run: its events go to _on_event (the chunk callback is unused)."""
    return lambda _chunks, *cb: _lib.lib().qs_sandbox_run_code_async(ptr, request, len(request), _on_event, *cb)
