"""The synchronous twin of Sandbox, for scripts."""

from __future__ import annotations

import queue
from typing import Any, Callable, Mapping, Optional, Union

from ._calls import Execution
from ._core import Handle, SandboxBase
from .types import ExecuteResult


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
        self, request: bytes, on_stdout: Optional[Callable[[bytes], Any]], on_stderr: Optional[Callable[[bytes], Any]]
    ) -> ExecuteResult:
        handle = self._require()
        events: "queue.Queue[tuple]" = queue.Queue()
        call_id = handle.start_call(request, events.put, streaming=on_stdout is not None or on_stderr is not None)
        run = Execution(on_stdout, on_stderr, lambda: handle.cancel(call_id))
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
