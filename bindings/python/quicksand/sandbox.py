"""The asyncio API, and the methods of both APIs, written once.

Each method of Sandbox and SyncSandbox is declared once here, in
``Methods``: its signature, defaults, checks, encoding and docstring. It
is a generator that yields the steps that wait (see _drive); ``Sandbox``
takes each as a coroutine (``awaitable``), ``SyncSandbox`` (sync.py) as a
blocking method (``blocking``). What differs between the two APIs is only
how they wait: the boot, and following a call's output (``_follow``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Callable, List, Mapping, Optional, Tuple, Type, TypeVar, Union

from . import _code, _desktop, _files, _mounts, _network, _processes
from ._calls import Execution as _Streamed
from ._core import Handle, ProcT, SandboxBase
from ._drive import Blocking, Native, Op, awaitable, shared_doc
from ._processes import Process
from ._wire import encode_remote, encode_request
from .errors import GuestFileNotFoundError
from ._code import ContextRef, ErrorCallback, ResultCallback, TextCallback
from ._wire import encode_code
from .types import (
    CodeContext, ExecuteResult, Execution, FileInfo, Key, MountHandle, NetworkPolicy, NetworkStats, ProcessInfo, PtySize, SandboxSummary,
)

Callback = Optional[Callable[[str], Any]]
SbT = TypeVar("SbT", bound=SandboxBase[Any])


class Methods:
    """The methods of Sandbox and SyncSandbox (``self`` is either)."""

    @staticmethod
    def start(self: SbT) -> Op[SbT]:
        """Boots the VM and waits until its agent answers."""
        if self._handle is None:
            self._handle = yield Native(self._boot)
        return self

    @staticmethod
    def connect(cls: Type[SbT], id: str, server: Optional[str] = None, api_key: Optional[str] = None) -> Op[SbT]:
        """The sandbox ``id`` (``sb.id``, or ``list``'s) that a server keeps
        for this key, started: its methods go to the server. ``server`` and
        ``api_key`` default to ``QUICKSAND_SERVER`` and
        ``QUICKSAND_API_KEY``. An unknown id (or another key's) raises
        GuestFileNotFoundError, a wrong key AuthError, a server that cannot
        be reached TransportError. Only ``stop()`` (or its idle timeout)
        stops it: a handle dropped leaves it running."""
        handle: Handle = yield Blocking(Handle.connect, id, encode_remote(server, api_key))
        return cls._adopt(handle)

    @staticmethod
    def list(
        cls: Type[SandboxBase[Any]],
        metadata: Optional[Mapping[str, str]] = None,
        server: Optional[str] = None,
        api_key: Optional[str] = None,
    ) -> Op[List[SandboxSummary]]:
        """The sandboxes a server keeps for this key whose metadata has every
        label of ``metadata`` (None: all of them)."""
        found: List[SandboxSummary] = yield Blocking(Handle.list, encode_remote(server, api_key, metadata))
        return found

    @staticmethod
    def set_idle_timeout(self: SandboxBase[Any], seconds: float) -> Op[None]:
        """Sets how long the server lets the sandbox sit idle before it stops
        it (negative: never; 0 raises BadRequestError) and starts that time
        again, as a keep-alive. A local sandbox has none: BadRequestError."""
        yield Blocking(self._require().set_idle_timeout, seconds)

    @staticmethod
    def stop(self: SandboxBase[Any]) -> Op[None]:
        """Stops the VM; calls in flight fail with SandboxNotRunningError.
        Calling it again does nothing."""
        if self._handle is not None:
            yield Blocking(self._handle.stop)

    @staticmethod
    def checkpoint(self: SandboxBase[Any], tag: str) -> Op[None]:
        """Captures RAM and disk as checkpoint ``tag`` (the VM pauses meanwhile)."""
        yield Blocking(self._require().checkpoint, tag)

    @staticmethod
    def revert(self: SandboxBase[Any], tag: str) -> Op[None]:
        """Returns to checkpoint ``tag``, running processes included; executes
        in flight raise CallCancelledError."""
        yield Blocking(self._require().revert, tag)

    @staticmethod
    def save(self: SandboxBase[Any], name: str) -> Op[str]:
        """Writes the sandbox's state to a folder (a name goes to the image
        folder, so ``Sandbox(image=name)`` resumes it) and returns its path.
        The VM pauses while its RAM is written, then runs on."""
        path: str = yield Blocking(self._require().save, name)
        return path

    # --- commands ---

    @staticmethod
    def execute(
        self: SandboxBase[Any],
        command: str,
        timeout: Optional[float] = None,
        cwd: Optional[str] = None,
        shell: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        stdin: Union[str, bytes, None] = None,
        on_stdout: Callback = None,
        on_stderr: Callback = None,
        user: Optional[str] = None,
        max_output: Optional[int] = None,
    ) -> Op[ExecuteResult]:
        """Runs ``command`` with ``shell -c`` and returns how it ended.

        ``timeout`` is in seconds (None: the library's default, 30 s); on
        timeout the command's whole process group is killed and the result
        says ``timed_out``. ``shell`` None is ``/bin/sh``. ``on_stdout`` and
        ``on_stderr`` get the output as text as it arrives, in order: on the
        event loop's thread (Sandbox), on the calling thread (SyncSandbox).
        A callback that raises cancels the command and the call raises its
        exception. Cancelling the task (or Ctrl-C in a SyncSandbox) cancels
        the command. ``user`` runs it as that guest user (a name or uid)
        instead of root; an unknown user raises BadRequestError.
        ``max_output`` caps the bytes of each stream kept in the result
        (default 256 MiB; ``stdout_truncated`` says when it cut); callbacks
        still get every byte.
        """
        request = encode_request(command, timeout, cwd, shell, env, stdin, user, max_output)
        handle = self._require()
        result: ExecuteResult = yield Native(
            self._follow, lambda deliver, run: handle.start_call(request, deliver, run), on_stdout, on_stderr
        )
        return result

    # --- files (guest paths are absolute; errors name the path) ---
    #
    # Each call fails with TransportError once the agent has made no
    # progress for 60 s (a frozen VM); ``timeout`` (seconds) bounds the whole
    # call instead, past which it raises CallCancelledError. A NUL byte in
    # a path is a BadRequestError.

    @staticmethod
    def write_file(
        self: SandboxBase[Any],
        path: str,
        data: Union[bytes, str],
        mode: int = 0o644,
        user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Op[None]:
        """Writes ``data`` (bytes, or str as UTF-8) as the file ``path``, whole
        or not at all, with ``mode`` (setuid, setgid and sticky bits
        included; no umask), belonging to ``user`` (default root). For big
        files, ``upload`` streams from the host's disk."""
        yield Blocking(_files.write_file, self._require()._ptr, path, data, mode, user, timeout)

    @staticmethod
    def read_file(
        self: SandboxBase[Any],
        path: str,
        user: Optional[str] = None,
        max_size: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Op[bytes]:
        """The bytes of the file ``path``, at most ``max_size`` (default
        256 MiB): a larger file raises BadRequestError before any of it is
        read. ``download`` streams a file of any size to the host's disk."""
        data: bytes = yield Blocking(_files.read_file, self._require()._ptr, path, user, max_size, timeout)
        return data

    @staticmethod
    def upload(
        self: SandboxBase[Any], host_path: str, guest_path: str, user: Optional[str] = None, timeout: Optional[float] = None
    ) -> Op[None]:
        """Copies a host file or folder tree (modes, symlinks, empty folders,
        mtimes) to ``guest_path``, which must not exist yet, made as
        ``user`` (default root: what it makes is that user's). Streamed."""
        yield Blocking(_files.upload, self._require()._ptr, host_path, guest_path, user, timeout)

    @staticmethod
    def download(
        self: SandboxBase[Any], guest_path: str, host_path: str, user: Optional[str] = None, timeout: Optional[float] = None
    ) -> Op[None]:
        """Copies a guest file or folder tree, read as ``user`` (default
        root), to ``host_path``, which must not exist yet; a failure leaves
        nothing there. Streamed."""
        yield Blocking(_files.download, self._require()._ptr, guest_path, host_path, user, timeout)

    @staticmethod
    def list_dir(self: SandboxBase[Any], path: str, timeout: Optional[float] = None) -> Op[List[FileInfo]]:
        """The entries of the folder ``path``."""
        entries: List[FileInfo] = yield Blocking(_files.list_dir, self._require()._ptr, path, timeout)
        return entries

    @staticmethod
    def stat(self: SandboxBase[Any], path: str, timeout: Optional[float] = None) -> Op[FileInfo]:
        """Describes ``path`` (a symlink itself); GuestFileNotFoundError if absent."""
        info: Optional[FileInfo] = yield Blocking(_files.stat, self._require()._ptr, path, timeout)
        if info is None:
            raise GuestFileNotFoundError(f"stat of {path}: no such file or folder")
        return info

    @staticmethod
    def exists(self: SandboxBase[Any], path: str, timeout: Optional[float] = None) -> Op[bool]:
        """Whether ``path`` exists (a dangling symlink does)."""
        info: Optional[FileInfo] = yield Blocking(_files.stat, self._require()._ptr, path, timeout)
        return info is not None

    @staticmethod
    def make_dir(
        self: SandboxBase[Any],
        path: str,
        parents: bool = True,
        mode: Optional[int] = None,
        user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Op[None]:
        """Makes the folder ``path`` with ``mode`` (default 0o755; setuid,
        setgid and sticky bits included; no umask); with ``parents`` an
        existing folder is fine and keeps its mode."""
        ptr = self._require()._ptr
        yield Blocking(
            lambda: _files.file_op(ptr, op="mkdir", path=path, parents=parents, mode=mode, user=user, timeout=timeout)
        )

    @staticmethod
    def remove(self: SandboxBase[Any], path: str, recursive: bool = False, timeout: Optional[float] = None) -> Op[None]:
        """Removes the file or (empty, or with ``recursive`` any) folder ``path``."""
        ptr = self._require()._ptr
        yield Blocking(lambda: _files.file_op(ptr, op="remove", path=path, recursive=recursive, timeout=timeout))

    @staticmethod
    def rename(self: SandboxBase[Any], src: str, dst: str, timeout: Optional[float] = None) -> Op[None]:
        """Renames ``src`` to ``dst`` (replacing a file there)."""
        ptr = self._require()._ptr
        yield Blocking(lambda: _files.file_op(ptr, op="rename", path=src, dest=dst, timeout=timeout))

    # --- background processes ---

    @staticmethod
    def start_process(
        self: SandboxBase[ProcT],
        command: str,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        shell: Optional[str] = None,
        on_stdout: Callback = None,
        on_stderr: Callback = None,
        pty: Optional[PtySize] = None,
        user: Optional[str] = None,
    ) -> Op[ProcT]:
        """Starts ``command`` in the background and returns once it runs; it
        outlives this call. ``on_stdout``/``on_stderr`` get its output as
        text from the start, in order: on the loop's thread (Sandbox), on a
        thread of their own (SyncSandbox). With ``pty`` it runs on a
        terminal of that size: one output stream (stdout), raw input."""
        started = yield Blocking(_processes.start, self._require()._ptr, command, cwd, env, shell, user, pty)
        return self._process_type(self, started["id"], started["pid"], on_stdout, on_stderr)

    @staticmethod
    def attach(
        self: SandboxBase[ProcT], process_id: str, on_stdout: Callback = None, on_stderr: Callback = None
    ) -> Op[ProcT]:
        """A handle to a background process another call started; the
        callbacks get its output from the start (as far as it was kept).
        It follows the process from now on (``wait`` gives how it ended);
        an unknown id raises GuestFileNotFoundError here."""
        self._require()
        process: ProcT = yield Native(self._process_type.attached, self, process_id, on_stdout, on_stderr)
        return process

    @staticmethod
    def list_processes(self: SandboxBase[Any]) -> Op[List[ProcessInfo]]:
        """The background processes that still run."""
        running: List[ProcessInfo] = yield Blocking(_processes.list_running, self._require()._ptr)
        return running

    # --- the code interpreter (E2B's names) ---

    @staticmethod
    def run_code(
        self: SandboxBase[Any],
        code: str,
        language: Optional[str] = None,
        context: Optional[ContextRef] = None,
        on_stdout: TextCallback = None,
        on_stderr: TextCallback = None,
        on_result: ResultCallback = None,
        on_error: ErrorCallback = None,
        envs: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = 300,
    ) -> Op[Execution]:
        """Runs ``code`` in a code context, whose variables, imports and
        folder carry from one run to the next, and returns what it produced:
        rich results (``text``, ``html``, ``png``, ...), its output, and the
        exception it raised as ``error`` (not raised here). ``context`` is a
        CodeContext or its id (None: the default context of ``language``,
        "python" when None too; a Python context needs an image with a
        Jupyter kernel, such as "debian-python"). ``envs`` are set for this
        run only. ``timeout`` (seconds; None: none) interrupts the cell: the
        run then ends with the error "TimeoutError" and the context keeps
        its earlier state. The callbacks get each event as it comes, in
        order: text, a Result, an ExecutionError; they may be plain or
        async functions (awaited before the next event), called on the
        loop's thread (Sandbox) or the calling thread (SyncSandbox). A
        callback that raises interrupts the cell and the call raises its
        exception; so does cancelling the task (or Ctrl-C). An unknown
        language raises BadRequestError, an unknown context
        GuestFileNotFoundError."""
        ctx = None if context is None else _code.context_id(context)
        request = encode_code(code, language, ctx, envs, timeout)
        handle = self._require()
        execution: Execution = yield Native(
            self._follow_code, handle, request, (on_stdout, on_stderr, on_result, on_error)
        )
        return execution

    @staticmethod
    def create_code_context(self: SandboxBase[Any], language: str = "python", cwd: Optional[str] = None) -> Op[CodeContext]:
        """Makes a code context of ``language`` ("python" or "bash") whose
        first working folder is ``cwd`` (None: /root), its kernel started."""
        created: CodeContext = yield Blocking(_code.create, self._require()._ptr, language, cwd)
        return created

    @staticmethod
    def list_code_contexts(self: SandboxBase[Any]) -> Op[List[CodeContext]]:
        """The code contexts (the default ones among them once used)."""
        contexts: List[CodeContext] = yield Blocking(_code.list_contexts, self._require()._ptr)
        return contexts

    @staticmethod
    def restart_code_context(self: SandboxBase[Any], context: ContextRef) -> Op[None]:
        """Gives a context (a CodeContext or its id) fresh state: a new kernel."""
        yield Blocking(_code.restart, self._require()._ptr, context)

    @staticmethod
    def remove_code_context(self: SandboxBase[Any], context: ContextRef) -> Op[None]:
        """Stops a context (a CodeContext or its id); a run in it ends."""
        yield Blocking(_code.remove, self._require()._ptr, context)

    # --- shared folders ---

    @staticmethod
    def mount(self: SandboxBase[Any], host: str, guest: str, readonly: bool = False) -> Op[MountHandle]:
        """Shares the host folder ``host`` at ``guest`` (made when missing)
        and returns its handle. The guest sees the host's changes at once and
        the host the guest's; it reaches nothing outside the folder, and with
        ``readonly`` changes nothing in it. Files the guest makes belong to
        the host's user."""
        handle: MountHandle = yield Blocking(_mounts.mount, self._require()._ptr, host, guest, readonly)
        return handle

    @staticmethod
    def unmount(self: SandboxBase[Any], handle: MountHandle) -> Op[None]:
        """Unmounts: once it returns the guest reaches nothing of the folder,
        even through files it held open."""
        yield Blocking(_mounts.unmount, self._require()._ptr, handle)

    # --- network policy ---

    @staticmethod
    def set_network(self: SandboxBase[Any], policy: Optional[NetworkPolicy]) -> Op[None]:
        """Replaces the network policy at once (None: none, plain full
        mode): new connections obey it, open ones at their next packet. A
        sandbox in network mode "full" only (without allow_host_loopback);
        a bad entry raises InvalidConfigError naming it."""
        yield Blocking(_network.set_network, self._require()._ptr, policy)

    @staticmethod
    def network_stats(self: SandboxBase[Any]) -> Op[NetworkStats]:
        """The network guard's counts since the sandbox started (network
        mode "full" only)."""
        stats: NetworkStats = yield Blocking(_network.stats, self._require()._ptr)
        return stats

    # --- the desktop (a sandbox started with display=..., Quicksand's names) ---
    #
    # Driven from the host through QEMU, not by a program in the guest.
    # Coordinates are pixels, (0, 0) the top left corner. Each call on a
    # sandbox without a display raises BadRequestError.

    @staticmethod
    def screenshot(self: SandboxBase[Any], path: Union[str, "os.PathLike[str]", None] = None) -> Op[bytes]:
        """The screen as a PNG image; with ``path`` it is also written to
        that file on the host."""
        png: bytes = yield Blocking(_desktop.screenshot, self._require()._ptr, path)
        return png

    @staticmethod
    def query_display_size(self: SandboxBase[Any]) -> Op[Tuple[int, int]]:
        """The screen's (width, height) in pixels, as the guest has it now."""
        size: Tuple[int, int] = yield Blocking(_desktop.display_size, self._require()._ptr)
        return size

    @staticmethod
    def type_text(self: SandboxBase[Any], text: str) -> Op[None]:
        """Types ``text`` on a US keyboard (shift where it needs it).
        Printable ASCII, newline and tab only: another character raises
        BadRequestError naming it, before anything is typed."""
        yield Blocking(_desktop.type_text, self._require()._ptr, text)

    @staticmethod
    def press_key(self: SandboxBase[Any], *keys: Union[Key, str]) -> Op[None]:
        """Presses a key or a combination (``press_key(Key.CTRL, Key.ALT,
        "t")``): each down in order, then up in reverse. A key is a ``Key``,
        an X keysym name ("Return", "Page_Up", "F4"; case does not matter)
        or one printable character; an unknown one raises BadRequestError
        and nothing is pressed."""
        yield Blocking(_desktop.press_key, self._require()._ptr, keys)

    @staticmethod
    def mouse_move(self: SandboxBase[Any], x: int, y: int) -> Op[None]:
        """Puts the pointer on pixel (x, y); off the screen raises
        BadRequestError. (Quicksand's takes 0..32767 units instead.)"""
        yield Blocking(_desktop.mouse_move, self._require()._ptr, x, y)

    @staticmethod
    def query_mouse_position(self: SandboxBase[Any]) -> Op[Tuple[int, int]]:
        """Where ``mouse_move`` (or ``drag``) last put the pointer, (0, 0)
        before any: QEMU does not report the guest's pointer. (Quicksand's
        gives QEMU's mouse device instead.)"""
        position: Tuple[int, int] = yield Blocking(_desktop.mouse_position, self._require()._ptr)
        return position

    @staticmethod
    def mouse_click(self: SandboxBase[Any], button: str = "left", double: bool = False) -> Op[None]:
        """Clicks ``button`` ("left", "right" or "middle") where the pointer
        is; twice with ``double``."""
        yield Blocking(_desktop.mouse_click, self._require()._ptr, button, double)

    @staticmethod
    def mouse_down(self: SandboxBase[Any], button: str = "left") -> Op[None]:
        """Presses ``button`` and holds it."""
        yield Blocking(_desktop.mouse_down, self._require()._ptr, button)

    @staticmethod
    def mouse_up(self: SandboxBase[Any], button: str = "left") -> Op[None]:
        """Releases ``button``."""
        yield Blocking(_desktop.mouse_up, self._require()._ptr, button)

    @staticmethod
    def scroll(self: SandboxBase[Any], dx: int = 0, dy: int = 0) -> Op[None]:
        """Turns the wheel ``dy`` notches down (negative: up) and ``dx``
        right (negative: left), where the pointer is."""
        yield Blocking(_desktop.scroll, self._require()._ptr, dx, dy)

    @staticmethod
    def drag(self: SandboxBase[Any], start: Tuple[int, int], end: Tuple[int, int]) -> Op[None]:
        """Presses the left button at ``start`` (x, y), moves to ``end`` and
        releases it there."""
        yield Blocking(_desktop.drag, self._require()._ptr, start, end)


class Sandbox(SandboxBase[Process]):
    """A Linux VM of your own, driven from asyncio.

    ::

        async with Sandbox(image="debian", memory="512M") as sb:
            r = await sb.execute("uname -a")

    Callbacks run on the event loop's thread, in the order the output was
    produced. Many executes may run at once on one sandbox.
    """

    _process_type = Process

    @classmethod
    @shared_doc(Methods.connect)
    async def connect(cls, id: str, server: Optional[str] = None, api_key: Optional[str] = None) -> "Sandbox":
        # A classmethod of the shared op's generic cls is beyond mypy's
        # inference (SbT unsolved), hence this one-line wrapper.
        return await awaitable(Methods.connect)(cls, id, server, api_key)

    list = classmethod(awaitable(Methods.list))
    start = awaitable(Methods.start)
    stop = awaitable(Methods.stop)
    set_idle_timeout = awaitable(Methods.set_idle_timeout)
    checkpoint = awaitable(Methods.checkpoint)
    revert = awaitable(Methods.revert)
    save = awaitable(Methods.save)
    execute = awaitable(Methods.execute)
    write_file = awaitable(Methods.write_file)
    read_file = awaitable(Methods.read_file)
    upload = awaitable(Methods.upload)
    download = awaitable(Methods.download)
    list_dir = awaitable(Methods.list_dir)
    stat = awaitable(Methods.stat)
    exists = awaitable(Methods.exists)
    make_dir = awaitable(Methods.make_dir)
    remove = awaitable(Methods.remove)
    rename = awaitable(Methods.rename)
    start_process = awaitable(Methods.start_process)
    attach = awaitable(Methods.attach)
    list_processes = awaitable(Methods.list_processes)
    mount = awaitable(Methods.mount)
    unmount = awaitable(Methods.unmount)
    set_network = awaitable(Methods.set_network)
    network_stats = awaitable(Methods.network_stats)
    run_code = awaitable(Methods.run_code)
    create_code_context = awaitable(Methods.create_code_context)
    list_code_contexts = awaitable(Methods.list_code_contexts)
    restart_code_context = awaitable(Methods.restart_code_context)
    remove_code_context = awaitable(Methods.remove_code_context)
    screenshot = awaitable(Methods.screenshot)
    query_display_size = awaitable(Methods.query_display_size)
    type_text = awaitable(Methods.type_text)
    press_key = awaitable(Methods.press_key)
    mouse_move = awaitable(Methods.mouse_move)
    query_mouse_position = awaitable(Methods.query_mouse_position)
    mouse_click = awaitable(Methods.mouse_click)
    mouse_down = awaitable(Methods.mouse_down)
    mouse_up = awaitable(Methods.mouse_up)
    scroll = awaitable(Methods.scroll)
    drag = awaitable(Methods.drag)

    async def __aenter__(self) -> "Sandbox":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # --- how this API waits ---

    async def _follow_code(self, handle: Handle, request: bytes, callbacks: _code.Callbacks) -> Execution:
        return await _code.follow_async(handle, request, callbacks)

    async def _boot(self) -> Handle:
        """Starts the VM on a worker thread. The boot cannot be
        interrupted: a cancelled start stops the VM as soon as it is up."""
        boot = asyncio.get_running_loop().run_in_executor(None, Handle, self._config)
        def stop_when_up(f: "asyncio.Future[Handle]") -> None:
            if not f.cancelled() and f.exception() is None:
                f.result().stop()

        try:
            return await asyncio.shield(boot)
        except asyncio.CancelledError:
            boot.add_done_callback(stop_when_up)
            raise

    @staticmethod
    async def _start_in_thread(
        start: Callable[[Any, _Streamed], int], deliver: Any, run: _Streamed, started: "asyncio.Future[None]"
    ) -> int:
        """Starts a call on a worker thread and reports it to ``started``; a
        call that starts after this task was cancelled is cancelled too."""
        begun = asyncio.get_running_loop().run_in_executor(None, start, deliver, run)
        try:
            call_id = await asyncio.shield(begun)
        except asyncio.CancelledError:
            begun.add_done_callback(lambda f: f.cancelled() or f.exception() or Handle.cancel(f.result()))
            if not started.done():
                started.cancel()
            raise
        except BaseException as e:
            if not started.done():
                started.set_exception(e)
            raise
        if not started.done():
            started.set_result(None)
        return call_id

    async def _follow(
        self,
        start: Callable[[Any, _Streamed], int],
        on_stdout: Callback,
        on_stderr: Callback,
        started: "Optional[asyncio.Future[None]]" = None,
    ) -> ExecuteResult:
        """Runs an asynchronous library call (an execute or an attach) that
        start begins, its callbacks on the loop's thread; cancelling the task
        cancels the call. With ``started`` the start runs on a worker thread
        (an attach asks the guest first whether the process exists) and
        ``started`` says how it went: the caller hears of a failed start at
        once, not only through this task."""
        handle = self._require()
        loop = asyncio.get_running_loop()
        finished: "asyncio.Future[None]" = loop.create_future()
        call_id = 0
        run = _Streamed(on_stdout, on_stderr, lambda: handle.cancel(call_id))

        def on_event(event: "tuple[Any, ...]") -> None:  # on the loop's thread
            if run.handle(event) and not finished.done():
                finished.set_result(None)

        def deliver(event: "tuple[Any, ...]") -> None:  # on a library thread
            try:
                loop.call_soon_threadsafe(on_event, event)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting any more

        if started is None:
            call_id = start(deliver, run)
        else:
            call_id = await self._start_in_thread(start, deliver, run, started)
        try:
            await finished
        except asyncio.CancelledError:
            handle.cancel(call_id)
            raise
        return run.outcome()
