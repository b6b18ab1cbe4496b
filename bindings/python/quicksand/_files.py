"""File operations on a sandbox handle (blocking calls into the library;
the async and sync wrappers decide on which thread they run)."""

from __future__ import annotations

import ctypes
import os
from typing import Any, Dict, List, Optional, Union

import msgpack

from . import _lib
from .errors import BadRequestError
from .types import FileInfo


def _options(**kv: Any) -> bytes:
    packed: bytes = msgpack.packb({k: v for k, v in kv.items() if v is not None})
    return packed


def _path(p: Union[str, "os.PathLike[str]"]) -> bytes:
    """A path as the library takes it. A NUL byte is refused here: the
    library takes C strings, which end at the first one, so
    '/tmp/ok.txt\\0/../../etc/x' would have been /tmp/ok.txt."""
    b = os.fsencode(p)
    if b"\0" in b:
        raise BadRequestError(f"the path {os.fsdecode(b)!r} contains a NUL byte")
    return b


def write_file(
    ptr: int, path: str, data: Union[bytes, str], mode: Optional[int], user: Optional[str], timeout: Optional[float]
) -> None:
    if isinstance(data, str):
        data = data.encode("utf-8")
    cpath, opts, err = _path(path), _options(mode=mode, user=user, timeout=timeout), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_write_file(ptr, cpath, data, len(data), opts, len(opts), ctypes.byref(err)), err)


def read_file(ptr: int, path: str, user: Optional[str], max_size: Optional[int], timeout: Optional[float]) -> bytes:
    cpath, buf, err = _path(path), _lib.Buffer(), ctypes.c_void_p()
    opts = _options(user=user, max_size=max_size, timeout=timeout)
    _lib.check(_lib.lib().qs_sandbox_read_file(ptr, cpath, opts, len(opts), ctypes.byref(buf), ctypes.byref(err)), err)
    return _lib.take_buffer(buf)


def file_op(ptr: int, **request: Any) -> Dict[str, Any]:
    for key in ("path", "dest"):
        if request.get(key) is not None:
            _path(request[key])
    req, buf, err = _options(**request), _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_file_op(ptr, req, len(req), ctypes.byref(buf), ctypes.byref(err)), err)
    raw = _lib.take_buffer(buf)
    return msgpack.unpackb(raw, raw=False) if raw else {}


def stat(ptr: int, path: str, timeout: Optional[float] = None) -> Optional[FileInfo]:
    res = file_op(ptr, op="stat", path=path, timeout=timeout)
    return FileInfo._from_wire(res["info"]) if res.get("exists") else None


def list_dir(ptr: int, path: str, timeout: Optional[float] = None) -> List[FileInfo]:
    return [FileInfo._from_wire(e) for e in file_op(ptr, op="list", path=path, timeout=timeout)["entries"]]


def upload(ptr: int, host_path: str, guest_path: str, user: Optional[str], timeout: Optional[float]) -> None:
    opts, err = _options(user=user, timeout=timeout), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_upload(ptr, _path(host_path), _path(guest_path), opts, len(opts), ctypes.byref(err)), err)


def download(ptr: int, guest_path: str, host_path: str, user: Optional[str], timeout: Optional[float]) -> None:
    opts, err = _options(user=user, timeout=timeout), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_download(ptr, _path(guest_path), _path(host_path), opts, len(opts), ctypes.byref(err)), err)
