"""Exceptions: one base class, one subclass per error code of the C ABI."""

from __future__ import annotations

from typing import Dict, Optional, Type


class QuicksandError(Exception):
    """Base of every error the library raises. ``code`` is a stable string
    (``"QS_ERR_IMAGE_NOT_FOUND"``, as in Node and the C header), ``status``
    the C ABI's number."""

    code: str = "QS_ERR_UNKNOWN"
    status: int = 1

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidConfigError(QuicksandError, ValueError):
    """A sandbox option is wrong; the message names it."""

    code = "QS_ERR_INVALID_CONFIG"
    status = 2


class ImageNotFoundError(QuicksandError):
    """The image name or folder does not resolve; the message says where it looked."""

    code = "QS_ERR_IMAGE_NOT_FOUND"
    status = 3


class BootError(QuicksandError):
    """QEMU or the guest failed before the agent was ready."""

    code = "QS_ERR_BOOT_FAILED"
    status = 4


class BootTimeoutError(BootError, TimeoutError):
    """The agent was not ready within ``boot_timeout``."""

    code = "QS_ERR_BOOT_TIMEOUT"
    status = 5


class SandboxNotRunningError(QuicksandError):
    """The sandbox was stopped, or its VM died; the message says which."""

    code = "QS_ERR_NOT_RUNNING"
    status = 6


class AuthError(QuicksandError):
    """The guest agent refused the sandbox's token, or a server the API key
    (the message names the server)."""

    code = "QS_ERR_AUTH"
    status = 7


class TransportError(QuicksandError):
    """Talking to the guest agent failed, or to a server (the message names
    it; a server's sandbox runs on)."""

    code = "QS_ERR_TRANSPORT"
    status = 8


class BadRequestError(QuicksandError, ValueError):
    """The execute request was refused (bad argument, missing cwd, ...)."""

    code = "QS_ERR_BAD_REQUEST"
    status = 9


class CallCancelledError(QuicksandError):
    """The library cancelled the call."""

    code = "QS_ERR_CANCELLED"
    status = 10


class InvalidHandleError(QuicksandError):
    """The sandbox handle is unknown or was freed."""

    code = "QS_ERR_INVALID_HANDLE"
    status = 11


class InternalError(QuicksandError):
    """A bug in libquicksand."""

    code = "QS_ERR_INTERNAL"
    status = 12


class SnapshotError(QuicksandError):
    """A checkpoint, revert or save failed."""

    code = "QS_ERR_SNAPSHOT"
    status = 13


class ResourceError(QuicksandError):
    """Out of resources: the guest ran out of processes or memory to start
    the command (a fork bomb left running, say; the sandbox itself still
    answers), or the host ran out of what a start or a call needs (every
    free port of 127.0.0.1 taken, a full disk under the work or template
    folder). The message says which."""

    code = "QS_ERR_RESOURCE"
    status = 14


class GuestFileNotFoundError(QuicksandError, FileNotFoundError):
    """A path in the guest (or the host path of an upload) does not exist,
    or a server has no sandbox of the id given (``Sandbox.connect``)."""

    code = "QS_ERR_NOT_FOUND"
    status = 15


class GuestPermissionError(QuicksandError, PermissionError):
    """The guest user of the call may not do that to the path."""

    code = "QS_ERR_PERMISSION"
    status = 16


class LibraryNotFoundError(QuicksandError, ImportError):
    """libquicksand.so could not be found or loaded."""

    code = "QS_ERR_LIBRARY_NOT_FOUND"
    status = 0


_BY_STATUS: Dict[int, Type[QuicksandError]] = {
    cls.status: cls
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
        ResourceError,
        GuestFileNotFoundError,
        GuestPermissionError,
    )
}


def error_for(status: int, message: str) -> QuicksandError:
    """The exception for a C ABI status."""
    return _BY_STATUS.get(status, QuicksandError)(message, status)
