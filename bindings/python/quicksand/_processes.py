"""Background processes: blocking calls into the library, and the Process
handles of both APIs over them."""

from __future__ import annotations

import asyncio
import ctypes
import signal as _signal
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Mapping, Optional, TypeVar, Union

import msgpack

from . import _lib
from .types import ExecuteResult, ProcessInfo, PtySize

if TYPE_CHECKING:
    from .sandbox import Sandbox
    from .sync import SyncSandbox


def start(
    ptr: int, command: str, cwd: Optional[str], env: Optional[Mapping[str, str]], shell: Optional[str],
    user: Optional[str], pty: Optional[PtySize],
) -> Dict[str, Any]:
    req: Dict[str, Any] = {"command": command}
    for key, value in (("cwd", cwd), ("shell", shell), ("user", user)):
        if value is not None:
            req[key] = value
    if env is not None:
        req["env"] = dict(env)
    if pty is not None:
        req["pty"] = {"rows": pty.rows, "cols": pty.cols}
    raw, buf, err = msgpack.packb(req), _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_start_process(ptr, raw, len(raw), ctypes.byref(buf), ctypes.byref(err)), err)
    return msgpack.unpackb(_lib.take_buffer(buf), raw=False)


def list_running(ptr: int) -> List[ProcessInfo]:
    buf, err = _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_list_processes(ptr, ctypes.byref(buf), ctypes.byref(err)), err)
    return [ProcessInfo._from_wire(p) for p in msgpack.unpackb(_lib.take_buffer(buf), raw=False)]


def write(ptr: int, process_id: str, data: Union[str, bytes]) -> None:
    if isinstance(data, str):
        data = data.encode("utf-8")
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_process_write(ptr, process_id.encode(), data, len(data), ctypes.byref(err)), err)


def close_stdin(ptr: int, process_id: str) -> None:
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_process_close_stdin(ptr, process_id.encode(), ctypes.byref(err)), err)


def send_signal(ptr: int, process_id: str, sig: int) -> None:
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_process_signal(ptr, process_id.encode(), int(sig), ctypes.byref(err)), err)


def resize(ptr: int, process_id: str, rows: int, cols: int) -> None:
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_process_resize(ptr, process_id.encode(), rows, cols, ctypes.byref(err)), err)


Callback = Optional[Callable[[str], Any]]

_F = TypeVar("_F", bound="asyncio.Future[Any]")


def _retrieved(f: _F) -> _F:
    """Marks f's exception as seen once it is set: it reaches the caller
    another way (attach raises it, wait() returns it)."""
    f.add_done_callback(lambda f: f.cancelled() or f.exception())
    return f


class Process:
    """A background process in a Sandbox (``Sandbox.start_process``). It runs
    on after the call that started it, until it exits, is killed, or the
    sandbox stops. The guest keeps the last 4 MiB of its output, so an
    attach or ``wait`` sees it from the start (older output is dropped)."""

    def __init__(self, sb: "Sandbox", id: str, pid: int, on_stdout: Callback = None, on_stderr: Callback = None) -> None:
        self.id = id
        """Names the process within its sandbox (``Sandbox.attach`` takes it)."""
        self.pid = pid
        """Its pid in the guest (0 for a handle made by ``attach``)."""
        self._sb = sb
        self._follower: Optional["asyncio.Future[ExecuteResult]"] = None
        if on_stdout is not None or on_stderr is not None:
            self._follow_in_background(on_stdout, on_stderr)

    @classmethod
    async def attached(cls, sb: "Sandbox", id: str, on_stdout: Callback, on_stderr: Callback) -> "Process":
        """A handle that follows process ``id`` from now on, returned once
        the guest took the attach: an unknown id raises here, not in a
        background task nobody may be waiting on."""
        p = cls(sb, id, 0)
        started = p._follow_in_background(on_stdout, on_stderr)
        try:
            await started
        except asyncio.CancelledError:
            assert p._follower is not None
            p._follower.cancel()  # nobody holds the handle: stop following
            raise
        return p

    def _follow_in_background(self, on_stdout: Callback, on_stderr: Callback) -> "asyncio.Future[None]":
        """Follows the process in a task (wait() gives how it ended);
        returns the future of the attach's start."""
        started = _retrieved(asyncio.get_running_loop().create_future())
        # A handle nobody waits on must not make asyncio log "Task exception
        # was never retrieved" at exit: wait() reports how the follow ended.
        self._follower = _retrieved(asyncio.ensure_future(self._follow(on_stdout, on_stderr, started)))

        def ended(f: "asyncio.Future[ExecuteResult]") -> None:
            # Whatever failed before the start said how it went.
            if not started.done():
                if f.cancelled():
                    started.cancel()
                else:
                    started.set_exception(f.exception() or RuntimeError("the attach ended before it began"))

        self._follower.add_done_callback(ended)
        return started

    def _follow(
        self, on_stdout: Callback, on_stderr: Callback, started: "Optional[asyncio.Future[None]]" = None
    ) -> "Awaitable[ExecuteResult]":
        """Follows the process to its end. The attach starts on a worker
        thread (the library asks the guest whether the process exists
        first, which must not hold up the loop)."""
        handle = self._sb._require()
        if started is None:
            started = _retrieved(asyncio.get_running_loop().create_future())
        return self._sb._follow(lambda deliver, run: handle.start_attach(self.id, deliver, run), on_stdout, on_stderr, started)

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, self._sb._require()._ptr, self.id, *args)

    async def write_stdin(self, data: Union[str, bytes]) -> None:
        """Sends data (str as UTF-8) to stdin, once the process took it."""
        await self._blocking(write, data)

    async def close_stdin(self) -> None:
        """Closes stdin (on a terminal: sends ^D)."""
        await self._blocking(close_stdin)

    async def signal(self, sig: int = _signal.SIGTERM) -> None:
        """Sends ``sig`` (1 to 64) to the process's whole process group."""
        await self._blocking(send_signal, sig)

    async def kill(self) -> None:
        await self.signal(_signal.SIGKILL)

    async def resize(self, rows: int, cols: int) -> None:
        """Resizes the process's terminal (BadRequestError without one)."""
        await self._blocking(resize, rows, cols)

    async def wait(self, timeout: Optional[float] = None) -> ExecuteResult:
        """Waits for the process to exit and returns how it ended, with its
        output (from the start, as far as it was kept). ``timeout`` raises
        asyncio.TimeoutError and leaves the process running."""
        if self._follower is not None:
            return await asyncio.wait_for(asyncio.shield(self._follower), timeout)
        return await asyncio.wait_for(self._follow(None, None), timeout)

    def __repr__(self) -> str:
        return f"Process(id={self.id!r}, pid={self.pid})"


class SyncProcess:
    """A background process in a SyncSandbox: the methods of Process,
    blocking. Callbacks given at start run on a thread of their own, in
    order."""

    def __init__(self, sb: "SyncSandbox", id: str, pid: int, on_stdout: Callback = None, on_stderr: Callback = None) -> None:
        self.id, self.pid, self._sb = id, pid, sb
        self._result: Optional[ExecuteResult] = None
        self._failure: Optional[BaseException] = None
        self._follower: Optional[threading.Thread] = None
        self._begun = threading.Event()  # the follower's attach started, or failed
        if on_stdout is not None or on_stderr is not None:
            self._follow_in_background(on_stdout, on_stderr)

    @classmethod
    def attached(cls, sb: "SyncSandbox", id: str, on_stdout: Callback, on_stderr: Callback) -> "SyncProcess":
        """A handle that follows process ``id`` from now on, returned once
        the guest took the attach: an unknown id raises here, not on the
        follower's thread."""
        p = cls(sb, id, 0)
        p._follow_in_background(on_stdout, on_stderr)
        p._begun.wait()
        if p._failure is not None:
            raise p._failure
        return p

    def _follow_in_background(self, on_stdout: Callback, on_stderr: Callback) -> None:
        self._follower = threading.Thread(target=self._follow_into, args=(on_stdout, on_stderr), daemon=True)
        self._follower.start()

    def _follow(self, on_stdout: Callback, on_stderr: Callback) -> ExecuteResult:
        handle = self._sb._require()
        return self._sb._follow(
            lambda deliver, run: handle.start_attach(self.id, deliver, run), on_stdout, on_stderr, started=self._begun.set
        )

    def _follow_into(self, on_stdout: Callback, on_stderr: Callback) -> None:
        try:
            self._result = self._follow(on_stdout, on_stderr)
        except BaseException as e:  # noqa: BLE001 - wait raises it
            self._failure = e
        finally:
            self._begun.set()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self._sb._require()._ptr, self.id, *args)

    def write_stdin(self, data: Union[str, bytes]) -> None:
        self._call(write, data)

    def close_stdin(self) -> None:
        self._call(close_stdin)

    def signal(self, sig: int = _signal.SIGTERM) -> None:
        self._call(send_signal, sig)

    def kill(self) -> None:
        self.signal(_signal.SIGKILL)

    def resize(self, rows: int, cols: int) -> None:
        self._call(resize, rows, cols)

    def wait(self, timeout: Optional[float] = None) -> ExecuteResult:
        """As Process.wait; ``timeout`` raises TimeoutError."""
        if self._follower is None:
            if timeout is None:
                return self._follow(None, None)
            self._follower = threading.Thread(target=self._follow_into, args=(None, None), daemon=True)
            self._follower.start()
        self._follower.join(timeout)
        if self._follower.is_alive():
            raise TimeoutError(f"process {self.id} still runs after {timeout} s")
        if self._failure is not None:
            raise self._failure
        assert self._result is not None
        return self._result

    def __repr__(self) -> str:
        return f"SyncProcess(id={self.id!r}, pid={self.pid})"
