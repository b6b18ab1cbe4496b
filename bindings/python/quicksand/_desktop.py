"""The desktop of a sandbox started with a display (include/quicksand.h,
"Desktop"): blocking calls into the library; the async and sync wrappers
decide on which thread they run."""

from __future__ import annotations

import ctypes
import os
from typing import Optional, Sequence, Tuple, Union

import msgpack

from . import _lib
from .errors import BadRequestError

Button = Optional[str]
"""A mouse button: "left" (None too), "right" or "middle"."""


def _call(fn: str, ptr: int, *args: object) -> None:
    err = ctypes.c_void_p()
    _lib.check(getattr(_lib.lib(), fn)(ptr, *args, ctypes.byref(err)), err)


def screenshot(ptr: int, path: Union[str, "os.PathLike[str]", None]) -> bytes:
    buf, err = _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_screenshot(ptr, ctypes.byref(buf), ctypes.byref(err)), err)
    png = _lib.take_buffer(buf)
    if path is not None:
        with open(path, "wb") as f:
            f.write(png)
    return png


def _pair(fn: str, ptr: int) -> Tuple[int, int]:
    a, b = ctypes.c_int(), ctypes.c_int()
    _call(fn, ptr, ctypes.byref(a), ctypes.byref(b))
    return a.value, b.value


def display_size(ptr: int) -> Tuple[int, int]:
    return _pair("qs_sandbox_display_size", ptr)


def mouse_position(ptr: int) -> Tuple[int, int]:
    return _pair("qs_sandbox_mouse_position", ptr)


def type_text(ptr: int, text: str) -> None:
    if "\0" in text:
        raise BadRequestError("typing: text holds a NUL character, which has no key")
    _call("qs_sandbox_type_text", ptr, text.encode())


def press_key(ptr: int, keys: Sequence[str]) -> None:
    names = bytes(msgpack.packb([str(k) for k in keys]))  # str(Key.ENTER) is "Return"
    _call("qs_sandbox_press_key", ptr, names, len(names))


def mouse_move(ptr: int, x: int, y: int) -> None:
    _call("qs_sandbox_mouse_move", ptr, x, y)


def _button(button: Button) -> Optional[bytes]:
    return None if button is None else button.encode()


def mouse_click(ptr: int, button: Button, double: bool) -> None:
    _call("qs_sandbox_mouse_click", ptr, _button(button), 1 if double else 0)


def mouse_down(ptr: int, button: Button) -> None:
    _call("qs_sandbox_mouse_down", ptr, _button(button))


def mouse_up(ptr: int, button: Button) -> None:
    _call("qs_sandbox_mouse_up", ptr, _button(button))


def scroll(ptr: int, dx: int, dy: int) -> None:
    _call("qs_sandbox_scroll", ptr, dx, dy)


def drag(ptr: int, start: Tuple[int, int], end: Tuple[int, int]) -> None:
    (x1, y1), (x2, y2) = start, end
    _call("qs_sandbox_drag", ptr, x1, y1, x2, y2)


def vnc(ptr: int) -> Optional[Tuple[int, str]]:
    """(port, password), or None when the sandbox's display has no VNC
    (or it has no display)."""
    buf, err = _lib.Buffer(), ctypes.c_void_p()
    try:
        _lib.check(_lib.lib().qs_sandbox_vnc(ptr, ctypes.byref(buf), ctypes.byref(err)), err)
    except BadRequestError:
        return None
    m = msgpack.unpackb(_lib.take_buffer(buf), raw=False)
    return int(m["port"]), str(m["password"])
