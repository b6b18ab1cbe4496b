"""Plain data the API takes and returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, Optional


class NetworkMode(str, enum.Enum):
    """What the guest may reach."""

    RESTRICTED = "restricted"
    """Nothing outside the VM; port forwards into it still work (the default)."""
    FULL = "full"
    """The guest also reaches out through the host (NAT)."""


@dataclass(frozen=True)
class PortForward:
    """Forwards 127.0.0.1:``host`` on the host to ``guest`` in the guest."""

    host: int
    guest: int


@dataclass(frozen=True)
class BootTiming:
    """Seconds from the start call to each phase of the boot. A warm start
    (resumed from a template or a save) boots no kernel: ``kernel_booted``
    is 0 and ``agent_listening`` is when the resumed VM began to run."""

    qemu_started: float
    kernel_booted: float
    agent_listening: float
    ready: float
    warm: bool = False

    @classmethod
    def _from_info(cls, m: Dict[str, Any]) -> "BootTiming":
        return cls(m["qemu_started"], m["kernel_booted"], m["agent_listening"], m["ready"], bool(m.get("warm")))


@dataclass(frozen=True)
class ExecuteResult:
    """How a command ended. A failing command is a result, not an exception."""

    stdout: str
    stderr: str
    exit_code: int
    """The command's exit code; -1 when it timed out, 128+N when killed by signal N."""
    timed_out: bool = False
    stdout_bytes: bytes = field(default=b"", repr=False)
    """The exact bytes of stdout (``stdout`` is them decoded as UTF-8, errors replaced)."""
    stderr_bytes: bytes = field(default=b"", repr=False)
    duration: float = 0.0
    """Seconds the command took, as the library measured it."""
    stdout_truncated: bool = False
    """``max_output`` cut the result's copy of stdout (callbacks got all of it)."""
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited with code 0."""
        return self.exit_code == 0

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "ExecuteResult":
        out, err = bytes(m["stdout"]), bytes(m["stderr"])
        return cls(
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
            exit_code=int(m["exit_code"]),
            timed_out=bool(m["timed_out"]),
            stdout_bytes=out,
            stderr_bytes=err,
            duration=float(m["duration_ms"]) / 1000,
            stdout_truncated=bool(m.get("stdout_truncated")),
            stderr_truncated=bool(m.get("stderr_truncated")),
        )


@dataclass(frozen=True)
class FileInfo:
    """A file in the guest, as ``stat`` and ``list_dir`` describe it."""

    name: str
    type: str
    """"file", "dir", "symlink" or "other"."""
    size: int
    mode: int
    """Permission bits (0o7777)."""
    mtime: float
    """Modification time, seconds since the epoch."""
    target: Optional[str] = None
    """A symlink's target."""

    @staticmethod
    def _from_wire(m: Dict[str, Any]) -> "FileInfo":
        return FileInfo(
            name=m["name"], type=m["type"], size=int(m["size"]), mode=int(m["mode"]),
            mtime=float(m["mtime"]), target=m.get("target"),
        )
