"""What the async Sandbox and its synchronous twin share: the sandbox handle,
the config and request encoding, and the bridge that carries the library's
callbacks (which arrive on library threads) to the caller's thread.
"""

from __future__ import annotations

import atexit
import codecs
import ctypes
import itertools
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Union

import msgpack

from . import _lib
from .errors import SandboxNotRunningError
from .types import BootTiming, ExecuteResult, NetworkMode, PortForward

STDOUT, STDERR = 1, 2

# --- config and requests ------------------------------------------------------


def encode_config(
    image: str,
    memory: Union[str, int, None],
    cpus: Optional[int],
    accel: Optional[str],
    network_mode: Union[NetworkMode, str, None],
    port_forwards: Iterable[Union[PortForward, tuple]],
    boot_timeout: Optional[float],
    extra_qemu_args: Iterable[str],
    extra_kernel_args: Iterable[str],
    workdir: Optional[str],
    cold_boot: Optional[bool] = None,
    allow_host_loopback: Optional[bool] = None,
    template_dir: Optional[str] = None,
) -> bytes:
    """The msgpack config of qs_sandbox_start. Values are checked by the
    library, whose errors name the option."""
    forwards = []
    for pf in port_forwards:
        host, guest = (pf.host, pf.guest) if isinstance(pf, PortForward) else pf
        forwards.append({"host": host, "guest": guest})
    cfg: Dict[str, Any] = {
        "image": image,
        "memory": memory,
        "cpus": cpus,
        "accel": accel,
        "network_mode": network_mode.value if isinstance(network_mode, NetworkMode) else network_mode,
        "port_forwards": forwards or None,
        "boot_timeout": boot_timeout,
        "extra_qemu_args": list(extra_qemu_args) or None,
        "extra_kernel_args": list(extra_kernel_args) or None,
        "workdir": workdir,
        "cold_boot": cold_boot,
        "allow_host_loopback": allow_host_loopback,
        "template_dir": template_dir,
    }
    return msgpack.packb({k: v for k, v in cfg.items() if v is not None})


def encode_request(
    command: str,
    timeout: Optional[float],
    cwd: Optional[str],
    shell: Optional[str],
    env: Optional[Mapping[str, str]],
    stdin: Union[str, bytes, None],
    user: Optional[str] = None,
    max_output: Optional[int] = None,
) -> bytes:
    req: Dict[str, Any] = {"command": command}
    for key, value in (
        ("timeout", timeout), ("cwd", cwd), ("shell", shell), ("stdin", stdin), ("user", user), ("max_output", max_output),
    ):
        if value is not None:
            req[key] = value
    if env is not None:
        req["env"] = dict(env)
    return msgpack.packb(req, use_bin_type=True)


# --- calls in flight ------------------------------------------------------------

# Events a call delivers to its owner, in order: ("chunk", stream, bytes) any
# number of times, then ("done", ExecuteResult | None, Exception | None).
Deliver = Callable[[tuple], None]

_calls: Dict[int, Deliver] = {}
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
    # Runs on a library thread; must never raise into C.
    try:
        deliver = _calls.get(user_data or 0)
        if deliver is not None:
            deliver(("chunk", stream, ctypes.string_at(data, n)))
    except BaseException:  # noqa: BLE001 - nothing may cross into C
        pass


@_lib.DoneFn
def _on_done(user_data: Optional[int], status: int, result: Any, n: int, err: Optional[int]) -> None:
    try:
        with _calls_lock:
            deliver = _calls.pop(user_data or 0, None)
            _call_ids.pop(user_data or 0, None)
        if deliver is None:
            return
        if status == 0:
            res = ExecuteResult._from_wire(msgpack.unpackb(ctypes.string_at(result, n), raw=False))
            deliver(("done", res, None))
        else:
            deliver(("done", None, _lib.error_from_borrowed(status, err)))
    except BaseException:  # noqa: BLE001
        pass


class Execution:
    """Turns a call's events into callbacks on the owner's thread, then a
    result. A callback that raises cancels the call; its exception is what
    the caller gets."""

    def __init__(
        self,
        on_stdout: Optional[Callable[[bytes], Any]],
        on_stderr: Optional[Callable[[bytes], Any]],
        cancel: Callable[[], None],
    ) -> None:
        self._callbacks = {STDOUT: on_stdout, STDERR: on_stderr}
        self._cancel = cancel
        self.error: Optional[BaseException] = None

    def handle(self, event: tuple) -> bool:
        """Processes one event; True once the call is over."""
        if event[0] == "chunk":
            cb = self._callbacks.get(event[1])
            if cb is not None and self.error is None:
                try:
                    cb(event[2])
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    self.error = e
                    self._cancel()
            return False
        _, self.result, self.failure = event
        return True

    def outcome(self) -> ExecuteResult:
        if self.error is not None:
            raise self.error
        if self.failure is not None:
            raise self.failure
        return self.result


def text_callback(cb: Optional[Callable[[str], Any]]) -> Optional[Callable[[bytes], Any]]:
    """Wraps a str callback for byte chunks, decoding UTF-8 across chunk
    boundaries (invalid bytes become U+FFFD)."""
    if cb is None:
        return None
    decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def on_bytes(chunk: bytes) -> None:
        text = decoder.decode(chunk)
        if text:
            cb(text)

    return on_bytes


# --- the handle -------------------------------------------------------------------


class Handle:
    """An owned qs_sandbox. Blocking calls; the wrappers decide on which
    thread they run. Freed (which stops the VM) when garbage collected or
    at interpreter exit, so no sandbox outlives the interpreter."""

    def __init__(self, config: bytes) -> None:
        lb = _lib.lib()
        ptr, err = ctypes.c_void_p(), ctypes.c_void_p()
        _lib.check(lb.qs_sandbox_start(config, len(config), ctypes.byref(ptr), ctypes.byref(err)), err)
        self._ptr = ptr.value
        self._finalizer = weakref.finalize(self, lb.qs_sandbox_free, self._ptr)

    def stop(self) -> None:
        err = ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_stop(self._ptr, ctypes.byref(err)), err)

    def info(self) -> Dict[str, Any]:
        buf, err = _lib.Buffer(), ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_info(self._ptr, ctypes.byref(buf), ctypes.byref(err)), err)
        return msgpack.unpackb(_lib.take_buffer(buf), raw=False)

    def console_log(self) -> bytes:
        buf, err = _lib.Buffer(), ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_console_log(self._ptr, ctypes.byref(buf), ctypes.byref(err)), err)
        return _lib.take_buffer(buf)

    def checkpoint(self, tag: str) -> None:
        err = ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_checkpoint(self._ptr, tag.encode(), ctypes.byref(err)), err)

    def revert(self, tag: str) -> None:
        err = ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_revert(self._ptr, tag.encode(), ctypes.byref(err)), err)

    def save(self, name: str) -> str:
        buf, err = _lib.Buffer(), ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_save(self._ptr, name.encode(), ctypes.byref(buf), ctypes.byref(err)), err)
        return _lib.take_buffer(buf).decode()

    def start_call(self, request: bytes, deliver: Deliver, streaming: bool) -> int:
        """Starts an asynchronous execute whose events go to deliver; returns
        the call id for cancel. Without streaming the library collects the
        output itself (capped at max_output) and sends no chunk events."""
        with _calls_lock:
            key = next(_ids)
            _calls[key] = deliver
        call_id, err = ctypes.c_uint64(), ctypes.c_void_p()
        status = _lib.lib().qs_sandbox_execute_async(
            self._ptr, request, len(request), _on_chunk if streaming else _lib.ChunkFn(), _on_done, key,
            ctypes.byref(call_id), ctypes.byref(err),
        )
        with _calls_lock:
            if status != 0:
                _calls.pop(key, None)
            elif key in _calls:  # else it is over already
                _call_ids[key] = call_id.value
        _lib.check(status, err)
        return call_id.value

    @staticmethod
    def cancel(call_id: int) -> None:
        _lib.lib().qs_call_cancel(call_id)  # an already finished call is fine


# --- what both wrappers expose --------------------------------------------------


class SandboxBase:
    """Options and the read-only properties shared by Sandbox and SyncSandbox."""

    def __init__(
        self,
        image: str = "debian",
        *,
        memory: Union[str, int, None] = None,
        cpus: Optional[int] = None,
        accel: Optional[str] = None,
        network_mode: Union[NetworkMode, str, None] = None,
        port_forwards: Iterable[Union[PortForward, tuple]] = (),
        boot_timeout: Optional[float] = None,
        extra_qemu_args: Iterable[str] = (),
        extra_kernel_args: Iterable[str] = (),
        workdir: Optional[str] = None,
        cold_boot: bool = False,
        allow_host_loopback: bool = False,
        template_dir: Optional[str] = None,
    ) -> None:
        """``image`` is an image name, an image folder, or a save (see
        ``save``). ``cold_boot=True`` boots the kernel even when a template of
        the image could be resumed (the default resumes one in a fraction of
        a second; the first start of an image makes it).
        ``network_mode="full"`` reaches the outside but not the host's
        loopback services, unless ``allow_host_loopback=True``. Options left
        at None take the library's defaults (memory 512 MiB, 1 CPU, accel
        "auto", network "restricted", boot timeout 60 s: include/quicksand.h)."""
        self._config = encode_config(
            image, memory, cpus, accel, network_mode, port_forwards, boot_timeout,
            extra_qemu_args, extra_kernel_args, workdir, cold_boot or None,
            allow_host_loopback or None, template_dir,
        )
        self.image = image
        self._handle: Optional[Handle] = None

    @staticmethod
    def _prepare(
        command: str,
        timeout: Optional[float],
        cwd: Optional[str],
        shell: Optional[str],
        env: Optional[Mapping[str, str]],
        stdin: Union[str, bytes, None],
        on_stdout: Optional[Callable[[str], Any]],
        on_stderr: Optional[Callable[[str], Any]],
        user: Optional[str] = None,
        max_output: Optional[int] = None,
    ) -> "tuple[bytes, Optional[Callable[[bytes], Any]], Optional[Callable[[bytes], Any]]]":
        """The request and byte callbacks of an execute (both APIs take the same arguments)."""
        request = encode_request(command, timeout, cwd, shell, env, stdin, user, max_output)
        return request, text_callback(on_stdout), text_callback(on_stderr)

    def _require(self) -> Handle:
        if self._handle is None:
            raise SandboxNotRunningError("the sandbox is not started: call start() or use it as a context manager")
        return self._handle

    @property
    def is_running(self) -> bool:
        """True between a successful start and stop (False if the VM died)."""
        return self._handle is not None and bool(self._handle.info()["running"])

    @property
    def accelerator(self) -> str:
        """The accelerator the VM runs on: "kvm", "hvf" or "tcg"."""
        return str(self._require().info()["accelerator"])

    @property
    def arch(self) -> str:
        """The guest's architecture: "x86_64" or "arm64"."""
        return str(self._require().info()["arch"])

    @property
    def pid(self) -> int:
        """The QEMU process id."""
        return int(self._require().info()["pid"])

    @property
    def boot_timing(self) -> BootTiming:
        """How long each phase of the start took."""
        return BootTiming._from_info(self._require().info()["boot_timing"])

    def console_log(self) -> str:
        """The guest's serial console output so far."""
        return self._require().console_log().decode("utf-8", "replace")


def validate_save(name_or_path: str) -> None:
    """Checks a save without starting it; raises if it cannot be resumed."""
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_validate_save(name_or_path.encode(), ctypes.byref(err)), err)
