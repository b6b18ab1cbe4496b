"""Quicksand: run commands in a Linux VM of your own.

``Sandbox`` is the asyncio API, ``SyncSandbox`` its synchronous twin; both
drive libquicksand through ctypes.
"""

from .errors import (
    AuthError,
    BadRequestError,
    BootError,
    BootTimeoutError,
    CallCancelledError,
    ImageNotFoundError,
    InternalError,
    InvalidConfigError,
    InvalidHandleError,
    LibraryNotFoundError,
    QuicksandError,
    SandboxNotRunningError,
    GuestFileNotFoundError,
    GuestPermissionError,
    ResourceError,
    SnapshotError,
    TransportError,
)
from ._core import validate_save
from .sandbox import Sandbox
from .sync import SyncSandbox
from ._pool import Pool, SyncPool
from ._processes import Process, SyncProcess
from .types import BootTiming, CodeContext, DisplayOptions, Key, Execution, ExecutionError, Logs, Result, ExecuteResult, FileInfo, Mount, MountHandle, NetworkMode, NetworkPolicy, NetworkStats, PortForward, ProcessInfo, PtySize, SandboxSummary

__version__ = "0.1.0"

__all__ = [
    "Sandbox",
    "SyncSandbox",
    "ExecuteResult",
    "Execution",
    "ExecutionError",
    "Result",
    "Logs",
    "CodeContext",
    "FileInfo",
    "DisplayOptions",
    "Key",
    "BootTiming",
    "NetworkMode",
    "NetworkPolicy",
    "NetworkStats",
    "PortForward",
    "Mount",
    "MountHandle",
    "Pool",
    "SyncPool",
    "Process",
    "SyncProcess",
    "ProcessInfo",
    "PtySize",
    "SandboxSummary",
    "QuicksandError",
    "InvalidConfigError",
    "ImageNotFoundError",
    "BootError",
    "BootTimeoutError",
    "SandboxNotRunningError",
    "AuthError",
    "TransportError",
    "BadRequestError",
    "CallCancelledError",
    "InvalidHandleError",
    "InternalError",
    "LibraryNotFoundError",
    "GuestFileNotFoundError",
    "GuestPermissionError",
    "ResourceError",
    "SnapshotError",
    "validate_save",
]
