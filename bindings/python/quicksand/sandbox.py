"""The asyncio API."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, List, Mapping, Optional, Union

from . import _files, _mounts, _processes
from ._processes import Process
from ._calls import Execution
from ._core import Handle, SandboxBase
from .errors import GuestFileNotFoundError
from .types import ExecuteResult, FileInfo, MountHandle, ProcessInfo, PtySize


class Sandbox(SandboxBase):
    """A Linux VM of your own, driven from asyncio.

    ::

        async with Sandbox(image="debian", memory="512M") as sb:
            r = await sb.execute("uname -a")

    Callbacks run on the event loop's thread, in the order the output was
    produced. Many executes may run at once on one sandbox.
    """

    async def start(self) -> "Sandbox":
        """Boots the VM and waits until its agent answers."""
        if self._handle is not None:
            return self
        loop = asyncio.get_running_loop()
        boot = loop.run_in_executor(None, Handle, self._config)
        try:
            self._handle = await asyncio.shield(boot)
        except asyncio.CancelledError:
            # The boot cannot be interrupted; stop it as soon as it is up.
            boot.add_done_callback(lambda f: f.cancelled() or f.exception() or f.result().stop())
            raise
        return self

    async def stop(self) -> None:
        """Stops the VM; calls in flight fail with SandboxNotRunningError.
        Calling it again does nothing."""
        if self._handle is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._handle.stop)

    async def __aenter__(self) -> "Sandbox":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def checkpoint(self, tag: str) -> None:
        """Captures RAM and disk as checkpoint ``tag`` (the VM pauses meanwhile)."""
        await self._blocking(self._require().checkpoint, tag)

    async def revert(self, tag: str) -> None:
        """Returns to checkpoint ``tag``, running processes included; executes
        in flight raise CallCancelledError."""
        await self._blocking(self._require().revert, tag)

    async def save(self, name: str) -> str:
        """Writes the sandbox's state to a folder (a name goes to the image
        folder, so ``Sandbox(image=name)`` resumes it) and returns its path.
        The VM pauses while its RAM is written, then runs on."""
        return await self._blocking(self._require().save, name)

    # --- files (guest paths are absolute; errors name the path) ---
    #
    # Each call fails with TransportError once the agent has made no
    # progress for 60 s (a frozen VM); ``timeout`` (seconds) bounds the whole
    # call instead, past which it raises CallCancelledError. A NUL byte in
    # a path is a BadRequestError.

    async def write_file(
        self,
        path: str,
        data: Union[bytes, str],
        mode: int = 0o644,
        user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> None:
        """Writes ``data`` (bytes, or str as UTF-8) as the file ``path``, whole
        or not at all, with ``mode`` (setuid, setgid and sticky bits
        included; no umask), belonging to ``user`` (default root). For big
        files, ``upload`` streams from the host's disk."""
        await self._blocking(_files.write_file, self._require()._ptr, path, data, mode, user, timeout)

    async def read_file(
        self, path: str, user: Optional[str] = None, max_size: Optional[int] = None, timeout: Optional[float] = None
    ) -> bytes:
        """The bytes of the file ``path``, at most ``max_size`` (default
        256 MiB): a larger file raises BadRequestError before any of it is
        read. ``download`` streams a file of any size to the host's disk."""
        return await self._blocking(_files.read_file, self._require()._ptr, path, user, max_size, timeout)

    async def upload(self, host_path: str, guest_path: str) -> None:
        """Copies a host file or folder tree (modes, symlinks, empty folders,
        mtimes) to ``guest_path``, which must not exist yet. Streamed."""
        await self._blocking(_files.upload, self._require()._ptr, host_path, guest_path)

    async def download(self, guest_path: str, host_path: str) -> None:
        """Copies a guest file or folder tree to ``host_path``, which must not
        exist yet; a failure leaves nothing there. Streamed."""
        await self._blocking(_files.download, self._require()._ptr, guest_path, host_path)

    async def list_dir(self, path: str, timeout: Optional[float] = None) -> List[FileInfo]:
        """The entries of the folder ``path``."""
        return await self._blocking(_files.list_dir, self._require()._ptr, path, timeout)

    async def stat(self, path: str, timeout: Optional[float] = None) -> FileInfo:
        """Describes ``path`` (a symlink itself); GuestFileNotFoundError if absent."""
        info = await self._blocking(_files.stat, self._require()._ptr, path, timeout)
        if info is None:
            raise GuestFileNotFoundError(f"stat of {path}: no such file or folder")
        return info

    async def exists(self, path: str, timeout: Optional[float] = None) -> bool:
        return await self._blocking(_files.stat, self._require()._ptr, path, timeout) is not None

    async def make_dir(
        self,
        path: str,
        parents: bool = True,
        mode: Optional[int] = None,
        user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> None:
        """Makes the folder ``path`` with ``mode`` (default 0o755; setuid,
        setgid and sticky bits included; no umask); with ``parents`` an
        existing folder is fine and keeps its mode."""
        await self._blocking(
            lambda: _files.file_op(
                self._require()._ptr, op="mkdir", path=path, parents=parents, mode=mode, user=user, timeout=timeout
            )
        )

    async def remove(self, path: str, recursive: bool = False, timeout: Optional[float] = None) -> None:
        await self._blocking(
            lambda: _files.file_op(self._require()._ptr, op="remove", path=path, recursive=recursive, timeout=timeout)
        )

    async def rename(self, src: str, dst: str, timeout: Optional[float] = None) -> None:
        await self._blocking(
            lambda: _files.file_op(self._require()._ptr, op="rename", path=src, dest=dst, timeout=timeout)
        )

    # --- background processes ---

    async def start_process(
        self,
        command: str,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        shell: Optional[str] = None,
        on_stdout: Optional[Callable[[str], Any]] = None,
        on_stderr: Optional[Callable[[str], Any]] = None,
        pty: Optional[PtySize] = None,
        user: Optional[str] = None,
    ) -> Process:
        """Starts ``command`` in the background and returns once it runs; it
        outlives this call. ``on_stdout``/``on_stderr`` get its output as
        text from the start, on the loop's thread. With ``pty`` it runs on a
        terminal of that size: one output stream (stdout), raw input."""
        started = await self._blocking(_processes.start, self._require()._ptr, command, cwd, env, shell, user, pty)
        return Process(self, started["id"], started["pid"], on_stdout, on_stderr)

    async def attach(
        self, process_id: str, on_stdout: Optional[Callable[[str], Any]] = None, on_stderr: Optional[Callable[[str], Any]] = None
    ) -> Process:
        """A handle to a background process another call started; the
        callbacks get its output from the start (as far as it was kept).
        It follows the process from now on (``wait`` gives how it ended);
        an unknown id raises GuestFileNotFoundError here."""
        self._require()
        return await Process.attached(self, process_id, on_stdout, on_stderr)

    async def list_processes(self) -> List[ProcessInfo]:
        """The background processes that still run."""
        return await self._blocking(_processes.list_running, self._require()._ptr)

    # --- shared folders ---

    async def mount(self, host: str, guest: str, readonly: bool = False) -> MountHandle:
        """Shares the host folder ``host`` at ``guest`` (made when missing)
        and returns its handle. The guest sees the host's changes at once and
        the host the guest's; it reaches nothing outside the folder, and with
        ``readonly`` changes nothing in it. Files the guest makes belong to
        the host's user."""
        return await self._blocking(_mounts.mount, self._require()._ptr, host, guest, readonly)

    async def unmount(self, handle: MountHandle) -> None:
        """Unmounts: once it returns the guest reaches nothing of the folder,
        even through files it held open."""
        await self._blocking(_mounts.unmount, self._require()._ptr, handle)

    @staticmethod
    async def _start_in_thread(
        start: Callable[[Any, Execution], int], deliver: Any, run: Execution, started: "asyncio.Future[None]"
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

    @staticmethod
    async def _blocking(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def execute(
        self,
        command: str,
        timeout: Optional[float] = None,
        cwd: Optional[str] = None,
        shell: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        stdin: Union[str, bytes, None] = None,
        on_stdout: Optional[Callable[[str], Any]] = None,
        on_stderr: Optional[Callable[[str], Any]] = None,
        user: Optional[str] = None,
        max_output: Optional[int] = None,
    ) -> ExecuteResult:
        """Runs ``command`` with ``shell -c`` and returns how it ended.

        ``timeout`` is in seconds (None: the library's default, 30 s); on
        timeout the command's whole process group is killed and the result
        says ``timed_out``. ``shell`` None is ``/bin/sh``. ``on_stdout`` and
        ``on_stderr`` get the output as text as it arrives. Cancelling the
        task cancels the command. ``user`` runs it as that guest user (a
        name or uid) instead of root; an unknown user raises BadRequestError.
        ``max_output`` caps the bytes of each stream kept in the result
        (default 256 MiB; ``stdout_truncated`` says when it cut); callbacks
        still get every byte.
        """
        return await self._execute(*self._prepare(command, timeout, cwd, shell, env, stdin, on_stdout, on_stderr, user, max_output))

    async def _execute(
        self, request: bytes, on_stdout: Optional[Callable[[str], Any]], on_stderr: Optional[Callable[[str], Any]]
    ) -> ExecuteResult:
        handle = self._require()
        return await self._follow(lambda deliver, run: handle.start_call(request, deliver, run), on_stdout, on_stderr)

    async def _follow(
        self,
        start: Callable[[Any, Execution], int],
        on_stdout: Optional[Callable[[str], Any]],
        on_stderr: Optional[Callable[[str], Any]],
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
        finished: asyncio.Future = loop.create_future()
        call_id = 0
        run = Execution(on_stdout, on_stderr, lambda: handle.cancel(call_id))

        def on_event(event: tuple) -> None:  # on the loop's thread
            if run.handle(event) and not finished.done():
                finished.set_result(None)

        def deliver(event: tuple) -> None:  # on a library thread
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
