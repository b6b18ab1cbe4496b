"""Pools of ready sandboxes (include/quicksand.h, "Pools")."""

from __future__ import annotations

import ctypes
import weakref
from typing import TYPE_CHECKING, Any, Generic, Optional, Type, TypeVar

from . import _lib
from ._core import Handle, SandboxBase
from ._drive import Blocking, Op, awaitable, blocking
from ._wire import SandboxOptions, takes_options
from .errors import SandboxNotRunningError
from .sandbox import Sandbox
from .sync import SyncSandbox

if TYPE_CHECKING:
    from typing_extensions import Unpack

SbT = TypeVar("SbT", bound=SandboxBase[Any])
PoolT = TypeVar("PoolT", bound="PoolBase[Any]")


class PoolBase(Generic[SbT]):
    """What Pool and SyncPool share; their methods are in ``Methods``."""

    _sandbox_type: Type[SbT]
    """Sandbox or SyncSandbox: what this API's pool hands out."""

    @takes_options
    def __init__(self, size: int = 4, image: str = "debian", **options: Unpack[SandboxOptions]) -> None:
        """``size`` sandboxes of this configuration (the options of
        ``Sandbox``: SandboxOptions) are kept started, warmed and waiting
        once it is opened (which checks them)."""
        self.size = size
        self._image, self._options = image, options
        self._config = self._sandbox_type(image, **options)._config  # encodes and checks the options
        self._ptr: Optional[int] = None

    def _open(self) -> None:
        if self._ptr is not None:
            return
        ptr, err = ctypes.c_void_p(), ctypes.c_void_p()
        _lib.check(_lib.lib().qs_pool_new(self._config, len(self._config), self.size, ctypes.byref(ptr), ctypes.byref(err)), err)
        self._ptr = ptr.value
        self._finalizer = weakref.finalize(self, _lib.lib().qs_pool_free, self._ptr)

    def _take(self) -> Handle:
        if self._ptr is None:
            raise SandboxNotRunningError("the pool is not open: use it as a context manager or call open()")
        return Handle.from_pool(self._ptr)

    def _close(self) -> None:
        if self._ptr is not None:
            err = ctypes.c_void_p()
            _lib.check(_lib.lib().qs_pool_close(self._ptr, ctypes.byref(err)), err)


class Methods:
    """The methods of Pool and SyncPool, written once (see _drive)."""

    @staticmethod
    def open(self: PoolT) -> Op[PoolT]:
        """Starts filling the pool (the context manager does it)."""
        yield Blocking(self._open)
        return self

    @staticmethod
    def start(self: PoolBase[SbT]) -> Op[SbT]:
        """A started sandbox from the pool (a fresh start's: its own token,
        its clock set now), or one started now if the pool cannot refill."""
        handle = yield Blocking(self._take)
        sb = self._sandbox_type(self._image, **self._options)
        sb._handle = handle
        return sb

    @staticmethod
    def close(self: PoolBase[Any]) -> Op[None]:
        """Stops the sandboxes still waiting (not those taken)."""
        yield Blocking(self._close)


class Pool(PoolBase[Sandbox]):
    """Sandboxes started ahead, for asyncio::

        async with Pool(size=4, image="debian") as pool:
            async with await pool.start() as sb:   # a started Sandbox, in milliseconds
                await sb.execute("uname -a")

    A sandbox from the pool is a fresh start's (its own token, issued when
    taken; the clock set then); the pool refills in the background. When it
    cannot (the image missing, QEMU failing), ``start`` starts normally.
    Closing the pool stops the sandboxes still waiting, not those taken."""

    _sandbox_type = Sandbox

    open = awaitable(Methods.open)
    start = awaitable(Methods.start)
    close = awaitable(Methods.close)

    async def __aenter__(self) -> "Pool":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class SyncPool(PoolBase[SyncSandbox]):
    """Pool, blocking::

        with SyncPool(size=4) as pool:
            with pool.start() as sb:
                sb.execute("true")
    """

    _sandbox_type = SyncSandbox

    open = blocking(Methods.open)
    start = blocking(Methods.start)
    close = blocking(Methods.close)

    def __enter__(self) -> "SyncPool":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()
