"""The synchronous twin of Sandbox, for scripts."""

from __future__ import annotations

import queue
from typing import Any, Callable, List, Mapping, Optional, Union

from . import _files, _mounts, _processes
from ._processes import SyncProcess
from ._calls import Execution
from ._core import Handle, SandboxBase
from .errors import GuestFileNotFoundError
from .types import ExecuteResult, FileInfo, MountHandle, ProcessInfo, PtySize


class SyncSandbox(SandboxBase):
    """Sandbox without asyncio::

        with SyncSandbox(image="debian") as sb:
            print(sb.execute("uname -a").stdout)

    Callbacks run on the thread that called execute. Ctrl-C during an
    execute cancels the command.
    """

    def start(self) -> "SyncSandbox":
        """Boots the VM and waits until its agent answers."""
        if self._handle is None:
            self._handle = Handle(self._config)
        return self

    def stop(self) -> None:
        """Stops the VM. Calling it again does nothing."""
        if self._handle is not None:
            self._handle.stop()

    def __enter__(self) -> "SyncSandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def checkpoint(self, tag: str) -> None:
        """Captures RAM and disk as checkpoint ``tag``."""
        self._require().checkpoint(tag)

    def revert(self, tag: str) -> None:
        """Returns to checkpoint ``tag``, running processes included."""
        self._require().revert(tag)

    def save(self, name: str) -> str:
        """Writes the sandbox's state to a folder and returns its path."""
        return self._require().save(name)

    # --- files: as Sandbox's, blocking ---

    def start_process(
        self,
        command: str,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        shell: Optional[str] = None,
        on_stdout: Optional[Callable[[str], Any]] = None,
        on_stderr: Optional[Callable[[str], Any]] = None,
        pty: Optional[PtySize] = None,
        user: Optional[str] = None,
    ) -> SyncProcess:
        """As Sandbox.start_process; callbacks run on a thread of their own."""
        started = _processes.start(self._require()._ptr, command, cwd, env, shell, user, pty)
        return SyncProcess(self, started["id"], started["pid"], on_stdout, on_stderr)

    def attach(
        self, process_id: str, on_stdout: Optional[Callable[[str], Any]] = None, on_stderr: Optional[Callable[[str], Any]] = None
    ) -> SyncProcess:
        """As ``Sandbox.attach``: an unknown id raises GuestFileNotFoundError
        here; callbacks run on a thread of their own."""
        self._require()
        return SyncProcess.attached(self, process_id, on_stdout, on_stderr)

    def list_processes(self) -> List[ProcessInfo]:
        return _processes.list_running(self._require()._ptr)

    def mount(self, host: str, guest: str, readonly: bool = False) -> MountHandle:
        """As ``Sandbox.mount``."""
        return _mounts.mount(self._require()._ptr, host, guest, readonly)

    def unmount(self, handle: MountHandle) -> None:
        _mounts.unmount(self._require()._ptr, handle)

    def write_file(
        self,
        path: str,
        data: Union[bytes, str],
        mode: int = 0o644,
        user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> None:
        """As ``Sandbox.write_file``."""
        _files.write_file(self._require()._ptr, path, data, mode, user, timeout)

    def read_file(
        self, path: str, user: Optional[str] = None, max_size: Optional[int] = None, timeout: Optional[float] = None
    ) -> bytes:
        """As ``Sandbox.read_file``."""
        return _files.read_file(self._require()._ptr, path, user, max_size, timeout)

    def upload(self, host_path: str, guest_path: str) -> None:
        _files.upload(self._require()._ptr, host_path, guest_path)

    def download(self, guest_path: str, host_path: str) -> None:
        _files.download(self._require()._ptr, guest_path, host_path)

    def list_dir(self, path: str, timeout: Optional[float] = None) -> List[FileInfo]:
        return _files.list_dir(self._require()._ptr, path, timeout)

    def stat(self, path: str, timeout: Optional[float] = None) -> FileInfo:
        info = _files.stat(self._require()._ptr, path, timeout)
        if info is None:
            raise GuestFileNotFoundError(f"stat of {path}: no such file or folder")
        return info

    def exists(self, path: str, timeout: Optional[float] = None) -> bool:
        return _files.stat(self._require()._ptr, path, timeout) is not None

    def make_dir(
        self,
        path: str,
        parents: bool = True,
        mode: Optional[int] = None,
        user: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> None:
        """As ``Sandbox.make_dir``."""
        _files.file_op(self._require()._ptr, op="mkdir", path=path, parents=parents, mode=mode, user=user, timeout=timeout)

    def remove(self, path: str, recursive: bool = False, timeout: Optional[float] = None) -> None:
        _files.file_op(self._require()._ptr, op="remove", path=path, recursive=recursive, timeout=timeout)

    def rename(self, src: str, dst: str, timeout: Optional[float] = None) -> None:
        _files.file_op(self._require()._ptr, op="rename", path=src, dest=dst, timeout=timeout)

    def execute(
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
        """Runs ``command``; the same arguments as Sandbox.execute."""
        return self._execute(*self._prepare(command, timeout, cwd, shell, env, stdin, on_stdout, on_stderr, user, max_output))

    def _execute(
        self,
        request: bytes,
        on_stdout: Optional[Callable[[Any], Any]],
        on_stderr: Optional[Callable[[Any], Any]],
        raw: bool = False,
    ) -> ExecuteResult:
        """Runs an encoded request; raw callbacks get bytes, not text."""
        handle = self._require()
        return self._follow(lambda deliver, run: handle.start_call(request, deliver, run), on_stdout, on_stderr, raw)

    def _follow(
        self,
        start: Callable[[Any, Execution], int],
        on_stdout: Optional[Callable[[Any], Any]],
        on_stderr: Optional[Callable[[Any], Any]],
        raw: bool = False,
        started: Optional[Callable[[], None]] = None,
    ) -> ExecuteResult:
        """Runs an asynchronous library call (an execute or an attach) that
        start begins, its callbacks on this thread, until it ends; started
        (if given) is called once the call began (a failed start raises)."""
        handle = self._require()
        events: "queue.Queue[tuple]" = queue.Queue()
        call_id = 0
        run = Execution(on_stdout, on_stderr, lambda: handle.cancel(call_id), raw)
        call_id = start(events.put, run)
        if started is not None:
            started()
        try:
            while True:
                try:
                    # A timeout keeps the wait interruptible by signals.
                    event = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if run.handle(event):
                    return run.outcome()
        except BaseException:
            handle.cancel(call_id)
            raise
