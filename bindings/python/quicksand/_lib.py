"""Finding libquicksand.so and declaring its C functions for ctypes.

Nothing here knows about sandboxes: it is the C ABI (include/quicksand.h)
spelled in ctypes, plus the two calls every wrapper needs (raise on failure,
take ownership of a returned buffer).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .errors import LibraryNotFoundError, error_for

LIB_ENV = "QUICKSAND_LIB"
LIB_NAME = "libquicksand.so"


class Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]


# qs_status, the header's enum of status codes: passed as an int.
Status = ctypes.c_int

ChunkFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t)
DoneFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, Status, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t, ctypes.c_void_p)
LogFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)
EventFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t)


def candidates() -> List[Path]:
    """Where the library is looked for, in order."""
    found: List[Path] = []
    env = os.environ.get(LIB_ENV)
    if env:
        found.append(Path(env))
    here = Path(__file__).resolve().parent
    found.append(here / LIB_NAME)
    # bindings/python/quicksand -> the repository's build output.
    found.append(here.parents[2] / "out" / "lib" / LIB_NAME)
    return found


def _load() -> ctypes.CDLL:
    tried = []
    for path in candidates():
        if not path.is_file():
            tried.append(f"{path} (missing)")
            continue
        try:
            return ctypes.CDLL(str(path))
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise LibraryNotFoundError(
        "libquicksand.so not found; looked in: " + "; ".join(tried) + f". Build it with `make lib` or set {LIB_ENV}."
    )


def signatures() -> Dict[str, Tuple[Any, List[Any]]]:
    """Each function's (restype, argtypes), as include/quicksand.h declares
    it: internal/contract's TestBindingsDeclareTheHeader compares them."""
    c = ctypes
    return {
        "qs_version": (c.c_char_p, []),
        "qs_sandbox_start": (Status, [c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p), c.POINTER(c.c_void_p)]),
        "qs_sandbox_execute_async": (
            Status,
            [c.c_void_p, c.c_char_p, c.c_size_t, ChunkFn, DoneFn, c.c_void_p, c.POINTER(c.c_uint64), c.POINTER(c.c_void_p)],
        ),
        "qs_process_attach_async": (
            Status,
            [c.c_void_p, c.c_char_p, ChunkFn, DoneFn, c.c_void_p, c.POINTER(c.c_uint64), c.POINTER(c.c_void_p)],
        ),
        "qs_call_cancel": (Status, [c.c_uint64]),
        "qs_sandbox_stop": (Status, [c.c_void_p, c.POINTER(c.c_void_p)]),
        "qs_sandbox_free": (None, [c.c_void_p]),
        "qs_sandbox_info": (Status, [c.c_void_p, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_console_log": (Status, [c.c_void_p, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_checkpoint": (Status, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_sandbox_revert": (Status, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_sandbox_save": (Status, [c.c_void_p, c.c_char_p, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_save_validate": (Status, [c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_buffer_free": (None, [c.POINTER(Buffer)]),
        "qs_error_code": (Status, [c.c_void_p]),
        "qs_error_message": (c.c_char_p, [c.c_void_p]),
        "qs_error_free": (None, [c.c_void_p]),
        "qs_log_set_handler": (None, [LogFn, c.c_void_p, c.c_int]),
        "qs_sandbox_write_file": (
            Status, [c.c_void_p, c.c_char_p, c.c_char_p, c.c_size_t, c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p)],
        ),
        "qs_sandbox_read_file": (
            Status, [c.c_void_p, c.c_char_p, c.c_char_p, c.c_size_t, c.POINTER(Buffer), c.POINTER(c.c_void_p)],
        ),
        "qs_sandbox_file_op": (Status, [c.c_void_p, c.c_char_p, c.c_size_t, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_upload": (Status, [c.c_void_p, c.c_char_p, c.c_char_p, c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p)]),
        "qs_sandbox_download": (Status, [c.c_void_p, c.c_char_p, c.c_char_p, c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p)]),
        "qs_serve": (Status, [c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p)]),
        "qs_sandbox_connect": (Status, [c.c_char_p, c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p), c.POINTER(c.c_void_p)]),
        "qs_sandbox_list": (Status, [c.c_char_p, c.c_size_t, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_set_idle_timeout": (Status, [c.c_void_p, c.c_double, c.POINTER(c.c_void_p)]),
        "qs_pool_new": (Status, [c.c_char_p, c.c_size_t, c.c_int, c.POINTER(c.c_void_p), c.POINTER(c.c_void_p)]),
        "qs_pool_start": (Status, [c.c_void_p, c.POINTER(c.c_void_p), c.POINTER(c.c_void_p)]),
        "qs_pool_close": (Status, [c.c_void_p, c.POINTER(c.c_void_p)]),
        "qs_pool_free": (None, [c.c_void_p]),
        "qs_sandbox_start_process": (Status, [c.c_void_p, c.c_char_p, c.c_size_t, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_list_processes": (Status, [c.c_void_p, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_process_write": (Status, [c.c_void_p, c.c_char_p, c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p)]),
        "qs_process_close_stdin": (Status, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_process_signal": (Status, [c.c_void_p, c.c_char_p, c.c_int, c.POINTER(c.c_void_p)]),
        "qs_process_resize": (Status, [c.c_void_p, c.c_char_p, c.c_int, c.c_int, c.POINTER(c.c_void_p)]),
        "qs_sandbox_mount": (Status, [c.c_void_p, c.c_char_p, c.c_size_t, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_unmount": (Status, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_sandbox_list_mounts": (Status, [c.c_void_p, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_set_network": (Status, [c.c_void_p, c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p)]),
        "qs_sandbox_network_stats": (Status, [c.c_void_p, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_run_code_async": (
            Status,
            [c.c_void_p, c.c_char_p, c.c_size_t, EventFn, DoneFn, c.c_void_p, c.POINTER(c.c_uint64), c.POINTER(c.c_void_p)],
        ),
        "qs_sandbox_create_code_context": (
            Status, [c.c_void_p, c.c_char_p, c.c_size_t, c.POINTER(Buffer), c.POINTER(c.c_void_p)],
        ),
        "qs_sandbox_list_code_contexts": (Status, [c.c_void_p, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_restart_code_context": (Status, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_sandbox_remove_code_context": (Status, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_sandbox_screenshot": (Status, [c.c_void_p, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
        "qs_sandbox_display_size": (Status, [c.c_void_p, c.POINTER(c.c_int), c.POINTER(c.c_int), c.POINTER(c.c_void_p)]),
        "qs_sandbox_type_text": (Status, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_sandbox_press_key": (Status, [c.c_void_p, c.c_char_p, c.c_size_t, c.POINTER(c.c_void_p)]),
        "qs_sandbox_mouse_move": (Status, [c.c_void_p, c.c_int, c.c_int, c.POINTER(c.c_void_p)]),
        "qs_sandbox_mouse_position": (Status, [c.c_void_p, c.POINTER(c.c_int), c.POINTER(c.c_int), c.POINTER(c.c_void_p)]),
        "qs_sandbox_mouse_click": (Status, [c.c_void_p, c.c_char_p, c.c_int, c.POINTER(c.c_void_p)]),
        "qs_sandbox_mouse_down": (Status, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_sandbox_mouse_up": (Status, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "qs_sandbox_scroll": (Status, [c.c_void_p, c.c_int, c.c_int, c.POINTER(c.c_void_p)]),
        "qs_sandbox_drag": (Status, [c.c_void_p, c.c_int, c.c_int, c.c_int, c.c_int, c.POINTER(c.c_void_p)]),
        "qs_sandbox_vnc": (Status, [c.c_void_p, c.POINTER(Buffer), c.POINTER(c.c_void_p)]),
    }


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in signatures().items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes


_lib: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use, so importing never fails)."""
    global _lib
    if _lib is None:
        loaded = _load()
        _declare(loaded)
        _lib = loaded
        from . import _log

        _log.install(loaded)
    return _lib


def take_error(err: ctypes.c_void_p) -> Exception:
    """Turns a qs_error into an exception and frees it."""
    lb = lib()
    code = lb.qs_error_code(err)
    msg = (lb.qs_error_message(err) or b"").decode("utf-8", "replace")
    lb.qs_error_free(err)
    return error_for(code, msg)


def error_from_borrowed(status: int, err: Optional[int]) -> Exception:
    """An exception for an error the library still owns (on_done's)."""
    msg = ""
    if err:
        msg = (lib().qs_error_message(err) or b"").decode("utf-8", "replace")
    return error_for(status, msg)


def check(status: int, err: ctypes.c_void_p) -> None:
    """Raises the error of a failed call."""
    if status != 0:
        if err:
            raise take_error(err)
        raise error_for(status, f"libquicksand call failed with code {status}")


def take_buffer(buf: Buffer) -> bytes:
    """Copies a returned buffer into bytes and frees it."""
    try:
        return ctypes.string_at(buf.data, buf.len) if buf.len else b""
    finally:
        lib().qs_buffer_free(ctypes.byref(buf))


def borrowed_view(data: Any, n: int) -> memoryview:
    """A view of n bytes of the library's memory at data (a pointer),
    without copying them: valid only while the library lends it (during a
    callback)."""
    if not n:
        return memoryview(b"")
    return memoryview((ctypes.c_char * n).from_address(ctypes.cast(data, ctypes.c_void_p).value))
