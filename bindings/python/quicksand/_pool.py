"""Pools of ready sandboxes (include/quicksand.h, "Pools")."""

from __future__ import annotations

import asyncio
import ctypes
import weakref
from typing import Any, Optional

from . import _lib
from ._core import Handle
from .errors import SandboxNotRunningError
from .sandbox import Sandbox
from .sync import SyncSandbox


class _PoolBase:
    def __init__(self, size: int = 4, image: str = "debian", **options: Any) -> None:
        """``size`` sandboxes of this configuration (the options of
        ``Sandbox``) are kept started, warmed and waiting once it is opened
        (which checks them)."""
        self.size = size
        self._image, self._options = image, options
        self._config = Sandbox(image, **options)._config  # encodes and checks the options
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


class Pool(_PoolBase):
    """Sandboxes started ahead, for asyncio::

        async with Pool(size=4, image="debian") as pool:
            async with await pool.start() as sb:   # a started Sandbox, in milliseconds
                await sb.execute("uname -a")

    A sandbox from the pool is a fresh start's (its own token, issued when
    taken; the clock set then); the pool refills in the background. When it
    cannot (the image missing, QEMU failing), ``start`` starts normally.
    Closing the pool stops the sandboxes still waiting, not those taken."""

    async def open(self) -> "Pool":
        await asyncio.get_running_loop().run_in_executor(None, self._open)
        return self

    async def start(self) -> Sandbox:
        handle = await asyncio.get_running_loop().run_in_executor(None, self._take)
        sb = Sandbox(self._image, **self._options)
        sb._handle = handle
        return sb

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._close)

    async def __aenter__(self) -> "Pool":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class SyncPool(_PoolBase):
    """Pool, blocking::

        with SyncPool(size=4) as pool:
            with pool.start() as sb:
                sb.execute("true")
    """

    def open(self) -> "SyncPool":
        self._open()
        return self

    def start(self) -> SyncSandbox:
        sb = SyncSandbox(self._image, **self._options)
        sb._handle = self._take()
        return sb

    def close(self) -> None:
        self._close()

    def __enter__(self) -> "SyncPool":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()
