"""File operations on a sandbox handle (blocking calls into the library;
the async and sync wrappers decide on which thread they run)."""

from __future__ import annotations

import ctypes
import os
from typing import Any, Dict, List, Optional, Union

import msgpack

from . import _lib
from .types import FileInfo


def _options(**kv: Any) -> bytes:
    return msgpack.packb({k: v for k, v in kv.items() if v is not None})


def _path(p: Union[str, "os.PathLike[str]"]) -> bytes:
    return os.fsencode(p)


def write_file(ptr: int, path: str, data: Union[bytes, str], mode: Optional[int], user: Optional[str]) -> None:
    if isinstance(data, str):
        data = data.encode("utf-8")
    opts, err = _options(mode=mode, user=user), ctypes.c_void_p()
    _lib.check(
        _lib.lib().qs_sandbox_write_file(ptr, _path(path), data, len(data), opts, len(opts), ctypes.byref(err)), err
    )


def read_file(ptr: int, path: str, user: Optional[str]) -> bytes:
    opts, buf, err = _options(user=user), _lib.Buffer(), ctypes.c_void_p()
    _lib.check(
        _lib.lib().qs_sandbox_read_file(ptr, _path(path), opts, len(opts), ctypes.byref(buf), ctypes.byref(err)), err
    )
    return _lib.take_buffer(buf)


def file_op(ptr: int, **request: Any) -> Dict[str, Any]:
    req, buf, err = _options(**request), _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_file_op(ptr, req, len(req), ctypes.byref(buf), ctypes.byref(err)), err)
    raw = _lib.take_buffer(buf)
    return msgpack.unpackb(raw, raw=False) if raw else {}


def stat(ptr: int, path: str) -> Optional[FileInfo]:
    res = file_op(ptr, op="stat", path=path)
    return FileInfo._from_wire(res["info"]) if res.get("exists") else None


def list_dir(ptr: int, path: str) -> List[FileInfo]:
    return [FileInfo._from_wire(e) for e in file_op(ptr, op="list", path=path)["entries"]]


def upload(ptr: int, host_path: str, guest_path: str) -> None:
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_upload(ptr, _path(host_path), _path(guest_path), ctypes.byref(err)), err)


def download(ptr: int, guest_path: str, host_path: str) -> None:
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_download(ptr, _path(guest_path), _path(host_path), ctypes.byref(err)), err)
