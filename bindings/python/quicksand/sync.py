"""The synchronous twin of Sandbox, for scripts: the same methods
(sandbox.py's ``Methods``, written once), run on the calling thread."""

from __future__ import annotations

import queue
from typing import Any, Callable, Optional

from . import _code
from ._calls import Execution
from ._core import Handle, SandboxBase
from ._drive import blocking, shared_doc
from ._processes import SyncProcess
from .sandbox import Methods
from .types import ExecuteResult
from .types import Execution as CodeExecution  # _calls.Execution is the streaming bridge


class SyncSandbox(SandboxBase[SyncProcess]):
    """Sandbox without asyncio::

        with SyncSandbox(image="debian") as sb:
            print(sb.execute("uname -a").stdout)

    Callbacks run on the thread that called execute. Ctrl-C during an
    execute cancels the command.
    """

    _process_type = SyncProcess

    @classmethod
    @shared_doc(Methods.connect)
    def connect(cls, id: str, server: Optional[str] = None, api_key: Optional[str] = None) -> "SyncSandbox":
        # As Sandbox.connect: mypy cannot type the shared op as a classmethod.
        return blocking(Methods.connect)(cls, id, server, api_key)

    list = classmethod(blocking(Methods.list))
    start = blocking(Methods.start)
    stop = blocking(Methods.stop)
    set_idle_timeout = blocking(Methods.set_idle_timeout)
    checkpoint = blocking(Methods.checkpoint)
    revert = blocking(Methods.revert)
    save = blocking(Methods.save)
    execute = blocking(Methods.execute)
    write_file = blocking(Methods.write_file)
    read_file = blocking(Methods.read_file)
    upload = blocking(Methods.upload)
    download = blocking(Methods.download)
    list_dir = blocking(Methods.list_dir)
    stat = blocking(Methods.stat)
    exists = blocking(Methods.exists)
    make_dir = blocking(Methods.make_dir)
    remove = blocking(Methods.remove)
    rename = blocking(Methods.rename)
    start_process = blocking(Methods.start_process)
    attach = blocking(Methods.attach)
    list_processes = blocking(Methods.list_processes)
    mount = blocking(Methods.mount)
    unmount = blocking(Methods.unmount)
    set_network = blocking(Methods.set_network)
    network_stats = blocking(Methods.network_stats)
    run_code = blocking(Methods.run_code)
    create_code_context = blocking(Methods.create_code_context)
    list_code_contexts = blocking(Methods.list_code_contexts)
    restart_code_context = blocking(Methods.restart_code_context)
    remove_code_context = blocking(Methods.remove_code_context)
    screenshot = blocking(Methods.screenshot)
    query_display_size = blocking(Methods.query_display_size)
    type_text = blocking(Methods.type_text)
    press_key = blocking(Methods.press_key)
    mouse_move = blocking(Methods.mouse_move)
    query_mouse_position = blocking(Methods.query_mouse_position)
    mouse_click = blocking(Methods.mouse_click)
    mouse_down = blocking(Methods.mouse_down)
    mouse_up = blocking(Methods.mouse_up)
    scroll = blocking(Methods.scroll)
    drag = blocking(Methods.drag)

    def __enter__(self) -> "SyncSandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- how this API waits ---

    def _follow_code(self, handle: Handle, request: bytes, callbacks: _code.Callbacks) -> CodeExecution:
        return _code.follow_blocking(handle, request, callbacks)

    def _boot(self) -> Handle:
        return Handle(self._config)

    def _execute(
        self,
        request: bytes,
        on_stdout: Optional[Callable[[Any], Any]],
        on_stderr: Optional[Callable[[Any], Any]],
        raw: bool = False,
    ) -> ExecuteResult:
        """Runs an encoded request; raw callbacks get bytes, not text (the
        CLI passes the guest's bytes through)."""
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
        events: "queue.Queue[tuple[Any, ...]]" = queue.Queue()
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
