"""The code interpreter: blocking calls into the library for code
contexts, and a code run's events turned into callbacks and an Execution
(the run_code methods are in sandbox.py, written once; each API follows a
run its own way: ``follow_async``, ``follow_blocking``)."""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import queue
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

import msgpack

from . import _calls, _lib
from .types import CodeContext, Execution, ExecutionError, Result

if TYPE_CHECKING:
    from ._core import Handle

ContextRef = Union[CodeContext, str]
"""A code context or its id."""


def context_id(ctx: ContextRef) -> str:
    return ctx.id if isinstance(ctx, CodeContext) else str(ctx)


def create(ptr: int, language: str, cwd: Optional[str]) -> CodeContext:
    options: Dict[str, Any] = {"language": language}
    if cwd is not None:
        options["cwd"] = cwd
    raw, buf, err = bytes(msgpack.packb(options)), _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_create_code_context(ptr, raw, len(raw), ctypes.byref(buf), ctypes.byref(err)), err)
    return CodeContext._from_wire(msgpack.unpackb(_lib.take_buffer(buf), raw=False))


def list_contexts(ptr: int) -> List[CodeContext]:
    buf, err = _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_list_code_contexts(ptr, ctypes.byref(buf), ctypes.byref(err)), err)
    return [CodeContext._from_wire(c) for c in msgpack.unpackb(_lib.take_buffer(buf), raw=False)]


def restart(ptr: int, ctx: ContextRef) -> None:
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_restart_code_context(ptr, context_id(ctx).encode(), ctypes.byref(err)), err)


def remove(ptr: int, ctx: ContextRef) -> None:
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_remove_code_context(ptr, context_id(ctx).encode(), ctypes.byref(err)), err)


# A callback of run_code: a plain function, or an async one (awaited
# before the next event is handled).
TextCallback = Optional[Callable[[str], Any]]
ResultCallback = Optional[Callable[[Result], Any]]
ErrorCallback = Optional[Callable[[ExecutionError], Any]]
Callbacks = Tuple[TextCallback, TextCallback, ResultCallback, ErrorCallback]
"""on_stdout, on_stderr, on_result, on_error."""


class CodeRun:
    """A code run's events, in order, turned into its callbacks; then its
    Execution. A callback that raises cancels the run (the cell is
    interrupted) and its exception is what the caller gets."""

    def __init__(self, callbacks: Callbacks, cancel: Callable[[], None]) -> None:
        on_stdout, on_stderr, on_result, on_error = callbacks
        self._on: Dict[str, Optional[Callable[[Any], Any]]] = {
            "stdout": on_stdout, "stderr": on_stderr, "result": on_result, "error": on_error,
        }
        self._cancel = cancel
        self.error: Optional[BaseException] = None
        self._result: Optional[Execution] = None
        self._failure: Optional[BaseException] = None

    def call(self, event: Dict[str, Any]) -> Any:
        """Calls the event's callback, if any; returns what it returned (an
        awaitable for an async callback, which the API awaits)."""
        kind = event.get("type")
        cb = self._on.get(str(kind))
        if cb is None or self.error is not None:
            return None
        arg: Any
        if kind == "result":
            arg = Result._from_wire(event["result"])
        elif kind == "error":
            arg = ExecutionError._from_wire(event["error"])
        else:
            arg = str(event["text"])
        try:
            return cb(arg)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            self.fail(e)
            return None

    def fail(self, e: BaseException) -> None:
        if self.error is None:
            self.error = e
            self._cancel()

    def handle(self, event: Tuple[Any, ...]) -> Any:
        """Processes one delivered event: ("event", map) gives call's
        value; ("done", Execution | None, Exception | None) records the end."""
        if event[0] == "event":
            return self.call(event[1])
        _, self._result, self._failure = event
        return None

    @property
    def over(self) -> bool:
        return self._result is not None or self._failure is not None

    def outcome(self) -> Execution:
        if self.error is not None:
            raise self.error
        if self._failure is not None:
            raise self._failure
        assert self._result is not None
        return self._result


def _start(handle: "Handle", request: bytes, deliver: _calls.Deliver) -> int:
    return _calls.start(_calls.run_code_call(handle._ptr, request), deliver, None, Execution._from_wire)


async def follow_async(handle: "Handle", request: bytes, callbacks: Callbacks) -> Execution:
    """Runs a code run on the event loop: its callbacks on the loop's
    thread, an async one awaited before the next event; cancelling the task
    cancels the run."""
    loop = asyncio.get_running_loop()
    events: "asyncio.Queue[Tuple[Any, ...]]" = asyncio.Queue()
    call_id = 0
    run = CodeRun(callbacks, lambda: handle.cancel(call_id))

    def deliver(event: Tuple[Any, ...]) -> None:  # on a library thread
        try:
            loop.call_soon_threadsafe(events.put_nowait, event)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    call_id = _start(handle, request, deliver)
    try:
        while not run.over:
            value = run.handle(await events.get())
            if inspect.isawaitable(value):
                try:
                    await value
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    run.fail(e)
    except asyncio.CancelledError:
        handle.cancel(call_id)
        raise
    return run.outcome()


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def follow_blocking(handle: "Handle", request: bytes, callbacks: Callbacks) -> Execution:
    """Runs a code run on this thread: its callbacks here, an async one run
    to its end on an event loop of its own; Ctrl-C cancels the run."""
    events: "queue.Queue[Tuple[Any, ...]]" = queue.Queue()
    call_id = 0
    run = CodeRun(callbacks, lambda: handle.cancel(call_id))
    call_id = _start(handle, request, events.put)
    # The async callbacks' loop is this call's own, never the thread's
    # current one: asyncio.run would leave the thread without one (and
    # the caller's own asyncio code, or pytest-asyncio, failing after).
    loop: Optional[asyncio.AbstractEventLoop] = None
    try:
        while not run.over:
            try:
                # A timeout keeps the wait interruptible by signals.
                event = events.get(timeout=0.2)
            except queue.Empty:
                continue
            value = run.handle(event)
            if inspect.isawaitable(value):
                if loop is None:
                    loop = asyncio.new_event_loop()
                try:
                    loop.run_until_complete(_await(value))
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    run.fail(e)
    except BaseException:
        handle.cancel(call_id)
        raise
    finally:
        if loop is not None:
            loop.close()
    return run.outcome()
