"""Exceptions: one base class, one subclass per error code of the C ABI."""

from __future__ import annotations

from typing import Dict, Type


class QuicksandError(Exception):
    """Base of every error the library raises. ``code`` is the C ABI's code."""

    code: int = 1

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidConfigError(QuicksandError, ValueError):
    """A sandbox option is wrong; the message names it."""

    code = 2


class ImageNotFoundError(QuicksandError):
    """The image name or folder does not resolve; the message says where it looked."""

    code = 3


class BootError(QuicksandError):
    """QEMU or the guest failed before the agent was ready."""

    code = 4


class BootTimeoutError(BootError, TimeoutError):
    """The agent was not ready within ``boot_timeout``."""

    code = 5


class SandboxNotRunningError(QuicksandError):
    """The sandbox was stopped, or its VM died; the message says which."""

    code = 6


class AuthError(QuicksandError):
    """The guest agent refused the sandbox's token."""

    code = 7


class TransportError(QuicksandError):
    """Talking to the guest agent failed."""

    code = 8


class BadRequestError(QuicksandError, ValueError):
    """The execute request was refused (bad argument, missing cwd, ...)."""

    code = 9


class CallCancelledError(QuicksandError):
    """The library cancelled the call."""

    code = 10


class InvalidHandleError(QuicksandError):
    """The sandbox handle is unknown or was freed."""

    code = 11


class InternalError(QuicksandError):
    """A bug in libquicksand."""

    code = 12


class SnapshotError(QuicksandError):
    """A checkpoint, revert or save failed."""

    code = 13


class LibraryNotFoundError(QuicksandError, ImportError):
    """libquicksand.so could not be found or loaded."""

    code = 0


_BY_CODE: Dict[int, Type[QuicksandError]] = {
    cls.code: cls
    for cls in (
        InvalidConfigError,
        ImageNotFoundError,
        BootError,
        BootTimeoutError,
        SandboxNotRunningError,
        AuthError,
        TransportError,
        BadRequestError,
        CallCancelledError,
        InvalidHandleError,
        InternalError,
        SnapshotError,
    )
}


def error_for(code: int, message: str) -> QuicksandError:
    """The exception for a C ABI error code."""
    return _BY_CODE.get(code, QuicksandError)(message, code)
