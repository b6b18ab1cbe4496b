"""Shared folders on a sandbox handle (blocking calls into the library; the
async and sync wrappers decide on which thread they run)."""

from __future__ import annotations

import ctypes
import os
from typing import List, Union

import msgpack

from . import _lib
from ._wire import mount_map
from .types import Mount, MountHandle


def mount(ptr: int, host: Union[str, "os.PathLike[str]"], guest: str, readonly: bool) -> MountHandle:
    req, buf, err = msgpack.packb(mount_map(Mount(os.fspath(host), guest, readonly))), _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_mount(ptr, req, len(req), ctypes.byref(buf), ctypes.byref(err)), err)
    return MountHandle._from_wire(msgpack.unpackb(_lib.take_buffer(buf), raw=False))


def unmount(ptr: int, handle: MountHandle) -> None:
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_unmount(ptr, handle.id.encode(), ctypes.byref(err)), err)


def active(ptr: int) -> List[MountHandle]:
    buf, err = _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_list_mounts(ptr, ctypes.byref(buf), ctypes.byref(err)), err)
    return [MountHandle._from_wire(m) for m in msgpack.unpackb(_lib.take_buffer(buf), raw=False)]
