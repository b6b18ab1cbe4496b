"""Background processes: blocking calls into the library, and the Process
handles of both APIs over them (their methods written once, in
``Methods``; see _drive)."""

from __future__ import annotations

import asyncio
import ctypes
import signal as _signal
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Dict, Generic, List, Mapping, Optional, TypeVar, Union

import msgpack

from . import _lib
from ._drive import Blocking, Native, Op, awaitable, blocking
from ._wire import encode_process
from .types import ExecuteResult, ProcessInfo, PtySize

if TYPE_CHECKING:
    from ._core import SandboxBase
    from .sandbox import Sandbox
    from .sync import SyncSandbox


def start(
    ptr: int, command: str, cwd: Optional[str], env: Optional[Mapping[str, str]], shell: Optional[str],
    user: Optional[str], pty: Optional[PtySize],
) -> Dict[str, Any]:
    raw, buf, err = encode_process(command, cwd, env, shell, user, pty), _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_start_process(ptr, raw, len(raw), ctypes.byref(buf), ctypes.byref(err)), err)
    started: Dict[str, Any] = msgpack.unpackb(_lib.take_buffer(buf), raw=False)
    return started


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
SbT = TypeVar("SbT", bound="SandboxBase[Any]")
_F = TypeVar("_F", bound="asyncio.Future[Any]")


def _retrieved(f: _F) -> _F:
    """Marks f's exception as seen once it is set: it reaches the caller
    another way (attach raises it, wait() returns it)."""
    f.add_done_callback(lambda f: f.cancelled() or f.exception())
    return f


class ProcessBase(Generic[SbT]):
    """What Process and SyncProcess share: the handle's state."""

    # What each API does its own way (see _drive.Native).
    attached: ClassVar[Callable[..., Any]]
    """A handle that follows a process from now on (``Sandbox.attach``)."""
    _wait: Callable[[Optional[float]], Any]
    _follow_in_background: Callable[[Callback, Callback], Any]

    def __init__(self, sb: SbT, id: str, pid: int, on_stdout: Callback = None, on_stderr: Callback = None) -> None:
        """A handle to process ``id``; with callbacks it follows the process
        from the start at once (as each API does: ``_follow_in_background``)."""
        self.id = id
        """Names the process within its sandbox (``Sandbox.attach`` takes it)."""
        self.pid = pid
        """Its pid in the guest (0 for a handle made by ``attach``)."""
        self._sb = sb
        if on_stdout is not None or on_stderr is not None:
            self._follow_in_background(on_stdout, on_stderr)

    def _ptr(self) -> int:
        return self._sb._require()._ptr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, pid={self.pid})"


class Methods:
    """The methods of Process and SyncProcess, written once (see _drive)."""

    @staticmethod
    def write_stdin(self: ProcessBase[Any], data: Union[str, bytes]) -> Op[None]:
        """Sends data (str as UTF-8) to stdin, once the process took it."""
        yield Blocking(write, self._ptr(), self.id, data)

    @staticmethod
    def close_stdin(self: ProcessBase[Any]) -> Op[None]:
        """Closes stdin (on a terminal: sends ^D)."""
        yield Blocking(close_stdin, self._ptr(), self.id)

    @staticmethod
    def signal(self: ProcessBase[Any], sig: int = _signal.SIGTERM) -> Op[None]:
        """Sends ``sig`` (1 to 64) to the process's whole process group."""
        yield Blocking(send_signal, self._ptr(), self.id, sig)

    @staticmethod
    def kill(self: ProcessBase[Any]) -> Op[None]:
        """Sends SIGKILL to the process's whole process group."""
        yield Blocking(send_signal, self._ptr(), self.id, _signal.SIGKILL)

    @staticmethod
    def resize(self: ProcessBase[Any], rows: int, cols: int) -> Op[None]:
        """Resizes the process's terminal (BadRequestError without one)."""
        yield Blocking(resize, self._ptr(), self.id, rows, cols)

    @staticmethod
    def wait(self: ProcessBase[Any], timeout: Optional[float] = None) -> Op[ExecuteResult]:
        """Waits for the process to exit and returns how it ended, with its
        output (from the start, as far as it was kept). ``timeout``
        (seconds) raises TimeoutError (on Python before 3.11, Process's
        raises asyncio.TimeoutError) and leaves the process running."""
        result: ExecuteResult = yield Native(self._wait, timeout)
        return result


class Process(ProcessBase["Sandbox"]):
    """A background process in a Sandbox (``Sandbox.start_process``). It runs
    on after the call that started it, until it exits, is killed, or the
    sandbox stops. The guest keeps the last 4 MiB of its output, so an
    attach or ``wait`` sees it from the start (older output is dropped)."""

    write_stdin = awaitable(Methods.write_stdin)
    close_stdin = awaitable(Methods.close_stdin)
    signal = awaitable(Methods.signal)
    kill = awaitable(Methods.kill)
    resize = awaitable(Methods.resize)
    wait = awaitable(Methods.wait)

    def __init__(self, sb: "Sandbox", id: str, pid: int, on_stdout: Callback = None, on_stderr: Callback = None) -> None:
        self._follower: Optional["asyncio.Future[ExecuteResult]"] = None
        super().__init__(sb, id, pid, on_stdout, on_stderr)

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
        started: "asyncio.Future[None]" = _retrieved(asyncio.get_running_loop().create_future())
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

    async def _wait(self, timeout: Optional[float]) -> ExecuteResult:
        if self._follower is not None:
            return await asyncio.wait_for(asyncio.shield(self._follower), timeout)
        return await asyncio.wait_for(self._follow(None, None), timeout)


class SyncProcess(ProcessBase["SyncSandbox"]):
    """A background process in a SyncSandbox: the methods of Process,
    blocking. Callbacks given at start run on a thread of their own, in
    order."""

    write_stdin = blocking(Methods.write_stdin)
    close_stdin = blocking(Methods.close_stdin)
    signal = blocking(Methods.signal)
    kill = blocking(Methods.kill)
    resize = blocking(Methods.resize)
    wait = blocking(Methods.wait)

    def __init__(self, sb: "SyncSandbox", id: str, pid: int, on_stdout: Callback = None, on_stderr: Callback = None) -> None:
        self._result: Optional[ExecuteResult] = None
        self._failure: Optional[BaseException] = None
        self._follower: Optional[threading.Thread] = None
        self._begun = threading.Event()  # the follower's attach started, or failed
        super().__init__(sb, id, pid, on_stdout, on_stderr)

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

    def _wait(self, timeout: Optional[float]) -> ExecuteResult:
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
