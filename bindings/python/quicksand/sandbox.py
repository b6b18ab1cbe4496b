"""The asyncio API."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Mapping, Optional, Union

from ._calls import Execution
from ._core import Handle, SandboxBase
from .types import ExecuteResult


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
        self, request: bytes, on_stdout: Optional[Callable[[bytes], Any]], on_stderr: Optional[Callable[[bytes], Any]]
    ) -> ExecuteResult:
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

        call_id = handle.start_call(request, deliver, streaming=on_stdout is not None or on_stderr is not None)
        try:
            await finished
        except asyncio.CancelledError:
            handle.cancel(call_id)
            raise
        return run.outcome()
