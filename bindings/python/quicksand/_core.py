"""What the async Sandbox and its synchronous twin share: the sandbox handle
and the state, options and properties of both. Their methods are in
sandbox.py (written once, see _drive); the config and request encoding is
in _wire, the callbacks' bridge in _calls.
"""

from __future__ import annotations

import ctypes
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, List, Optional, Type, TypeVar

import msgpack

from . import _calls, _desktop, _lib, _mounts
from ._images import package_image_dirs
from ._wire import SandboxOptions, encode_config, is_remote, takes_options
from .errors import SandboxNotRunningError
from .types import BootTiming, MountHandle, SandboxSummary

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._processes import ProcessBase

# --- the handle -------------------------------------------------------------------


class Handle:
    """An owned qs_sandbox. Blocking calls; the wrappers decide on which
    thread they run. Freed (which stops a VM of this process) when garbage
    collected or at interpreter exit, so no local sandbox outlives the
    interpreter; a server's sandbox is not stopped by the free (the
    library's rule): it runs until stopped or its idle timeout."""

    def __init__(self, config: bytes) -> None:
        ptr, err = ctypes.c_void_p(), ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_start(config, len(config), ctypes.byref(ptr), ctypes.byref(err)), err)
        self._own(ptr.value or 0)

    @classmethod
    def from_pool(cls, pool_ptr: int) -> "Handle":
        """A sandbox taken from a pool (qs_pool_start)."""
        h = cls.__new__(cls)
        ptr, err = ctypes.c_void_p(), ctypes.c_void_p()
        _lib.check(_lib.lib().qs_pool_start(pool_ptr, ctypes.byref(ptr), ctypes.byref(err)), err)
        h._own(ptr.value or 0)
        return h

    @classmethod
    def connect(cls, sandbox_id: str, options: bytes) -> "Handle":
        """A handle to a sandbox a server keeps (qs_sandbox_connect)."""
        h = cls.__new__(cls)
        ptr, err = ctypes.c_void_p(), ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_connect(sandbox_id.encode(), options, len(options), ctypes.byref(ptr), ctypes.byref(err)), err)
        h._own(ptr.value or 0)
        return h

    @staticmethod
    def list(options: bytes) -> List[SandboxSummary]:
        """The sandboxes a server keeps for this key (qs_sandbox_list)."""
        buf, err = _lib.Buffer(), ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_list(options, len(options), ctypes.byref(buf), ctypes.byref(err)), err)
        return [SandboxSummary._from_wire(m) for m in msgpack.unpackb(_lib.take_buffer(buf), raw=False)]

    def set_idle_timeout(self, seconds: float) -> None:
        err = ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_set_idle_timeout(self._ptr, float(seconds), ctypes.byref(err)), err)

    def _own(self, ptr: int) -> None:
        self._ptr = ptr
        self._finalizer = weakref.finalize(self, _lib.lib().qs_sandbox_free, ptr)

    def stop(self) -> None:
        err = ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_stop(self._ptr, ctypes.byref(err)), err)

    def info(self) -> Dict[str, Any]:
        buf, err = _lib.Buffer(), ctypes.c_void_p()
        _lib.check(_lib.lib().qs_sandbox_info(self._ptr, ctypes.byref(buf), ctypes.byref(err)), err)
        info: Dict[str, Any] = msgpack.unpackb(_lib.take_buffer(buf), raw=False)
        return info

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

    def start_call(self, request: bytes, deliver: _calls.Deliver, run: _calls.Execution) -> int:
        """Starts an asynchronous execute whose events go to deliver, for
        run; returns the call id for cancel. Without callbacks the library
        collects the output itself (capped at max_output) and sends no
        chunk events."""
        return _calls.start(_calls.execute_call(self._ptr, request), deliver, run.prepare)

    def start_attach(self, process_id: str, deliver: _calls.Deliver, run: _calls.Execution) -> int:
        """Starts following a background process to its end (as start_call)."""
        return _calls.start(_calls.attach_call(self._ptr, process_id), deliver, run.prepare)

    @staticmethod
    def cancel(call_id: int) -> None:
        _lib.lib().qs_call_cancel(call_id)  # an already finished call is fine


# --- what both wrappers share ----------------------------------------------------

ProcT = TypeVar("ProcT", bound="ProcessBase[Any]")
SbT = TypeVar("SbT", bound="SandboxBase[Any]")


class SandboxBase(Generic[ProcT]):
    """The state, options and read-only properties of Sandbox and
    SyncSandbox; their methods are in sandbox.py, written once."""

    _process_type: Type[ProcT]
    """Process or SyncProcess: the handles this API's processes get."""
    # How each API waits (see _drive.Native): on the loop or on the caller's thread.
    _boot: Callable[[], Any]
    _follow: Callable[..., Any]
    _follow_code: Callable[..., Any]

    @takes_options
    def __init__(self, image: str = "debian", **options: Unpack[SandboxOptions]) -> None:
        """``image`` is an image name, an image folder, or a save (see
        ``save``). ``options`` are SandboxOptions' (memory, cpus,
        network_mode, port_forwards, mounts, ...); those left out take the
        library's defaults (memory 512 MiB, 1 CPU, accel "auto", network
        "restricted", boot timeout 60 s: include/quicksand.h).
        ``cold_boot=True`` boots the kernel even when a template of the
        image could be resumed (the default resumes one in a fraction of a
        second; the first start of an image makes it). Images are looked
        for in ``image_dirs``, then in installed image packages (``pip
        install quicksand-go-debian``), then ``QUICKSAND_IMAGE_PATH``, then
        the default image folder. ``network_mode="full"`` reaches the
        outside but not the host's loopback services, unless
        ``allow_host_loopback=True``. ``mounts`` are host folders shared
        into the guest once it is up (``Mount(host, guest,
        readonly=False)``, or a tuple of those).

        ``server`` (default ``QUICKSAND_SERVER``) makes it a sandbox a
        ``quicksand serve`` server keeps, with ``api_key``, ``metadata``
        and ``idle_timeout``: the same methods, results and errors. ``async
        with``/``with`` stop it at the end; one started with ``start()``
        runs on after this process until ``stop()`` or its idle timeout
        (``Sandbox.connect(sb.id)`` reaches it from elsewhere)."""
        with_packages = options.copy()
        if not is_remote(options):  # a server looks for images itself
            with_packages["image_dirs"] = [*options.get("image_dirs", ()), *package_image_dirs()]
        self._config = encode_config(image, **with_packages)
        self.image = image
        self._options = options
        self._handle: Optional[Handle] = None

    @classmethod
    def _adopt(cls: Type[SbT], handle: Handle) -> SbT:
        """A started sandbox around a handle made elsewhere (connect)."""
        sb = cls.__new__(cls)
        sb._config, sb.image, sb._options, sb._handle = b"", "", {}, handle
        return sb

    def _require(self) -> Handle:
        if self._handle is None:
            raise SandboxNotRunningError("the sandbox is not started: call start() or use it as a context manager")
        return self._handle

    @property
    def is_running(self) -> bool:
        """True between a successful start and stop (False if the VM died)."""
        return self._handle is not None and bool(self._handle.info()["running"])

    @property
    def id(self) -> str:
        """The sandbox's id: a server's (what ``Sandbox.connect`` takes), or
        a random one for a local sandbox."""
        return str(self._require().info()["id"])

    @property
    def metadata(self) -> Dict[str, str]:
        """The sandbox's labels (the ``metadata`` option)."""
        return dict(self._require().info()["metadata"] or {})

    @property
    def remote(self) -> bool:
        """True when a server keeps the sandbox."""
        return bool(self._require().info()["remote"])

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

    @property
    def active_mounts(self) -> List[MountHandle]:
        """The shared folders mounted now, by guest path."""
        return _mounts.active(self._require()._ptr)

    @property
    def vnc_port(self) -> Optional[int]:
        """The 127.0.0.1 port a VNC viewer watches the screen on, with
        ``vnc_password``; None unless the sandbox was started with
        ``display=DisplayOptions(vnc=True)`` (Quicksand's name)."""
        info = _desktop.vnc(self._require()._ptr)
        return None if info is None else info[0]

    @property
    def vnc_password(self) -> Optional[str]:
        """The VNC server's password (8 characters, this sandbox's own: the
        server refuses everyone else); None as ``vnc_port``."""
        info = _desktop.vnc(self._require()._ptr)
        return None if info is None else info[1]

    def console_log(self) -> str:
        """The guest's serial console output so far."""
        return self._require().console_log().decode("utf-8", "replace")


def validate_save(name_or_path: str) -> None:
    """Checks a save without starting it; raises if it cannot be resumed."""
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_save_validate(name_or_path.encode(), ctypes.byref(err)), err)
