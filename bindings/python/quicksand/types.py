"""Plain data the API takes and returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple


class NetworkMode(str, enum.Enum):
    """What the guest may reach."""

    RESTRICTED = "restricted"
    """Nothing outside the VM; port forwards into it still work (the default)."""
    FULL = "full"
    """The guest also reaches out through the host (NAT)."""


@dataclass(frozen=True)
class NetworkPolicy:
    """Narrows network mode "full" (the default mode with a policy) to what
    it allows (docs/security.md). Each entry is a domain ("pypi.org"), a
    wildcard domain ("*.example.com"), an IP or CIDR, each optionally with
    a port or range ("api.example.com:443", "10.1.0.0/16:5432"). Allow
    beats deny; with any ``allow_out`` entry everything else is denied.
    Private, link-local (cloud metadata) and multicast ranges are denied
    unless ``allow_out`` names them. ``hosts`` are names the engine's DNS
    answers itself with these addresses (still subject to ``allow_out``).
    A bad entry raises InvalidConfigError naming it."""

    allow_out: Sequence[str] = ()
    deny_out: Sequence[str] = ()
    hosts: Optional[Mapping[str, Sequence[str]]] = None

    def _to_wire(self) -> Dict[str, Any]:
        m: Dict[str, Any] = {"allow_out": list(self.allow_out), "deny_out": list(self.deny_out)}
        if self.hosts is not None:
            m["hosts"] = {name: list(addrs) for name, addrs in self.hosts.items()}
        return m


@dataclass(frozen=True)
class NetworkStats:
    """A sandbox's network counts since it started (``network_stats()``):
    flows the guest opened, packets the guard dropped (each logged at
    debug with its destination), DNS questions answered and refused under
    a policy."""

    allowed: int
    dropped: int
    names_allowed: int
    names_refused: int

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "NetworkStats":
        return cls(int(m["allowed"]), int(m["dropped"]), int(m["names_allowed"]), int(m["names_refused"]))


@dataclass(frozen=True)
class PortForward:
    """Forwards 127.0.0.1:``host`` on the host to ``guest`` in the guest."""

    host: int
    guest: int


@dataclass(frozen=True)
class Mount:
    """Shares the host folder ``host`` at ``guest`` in the guest. With
    ``readonly`` the guest can change nothing in it (the host refuses,
    whatever the guest's mount flags say)."""

    host: str
    guest: str
    readonly: bool = False


@dataclass(frozen=True)
class MountHandle:
    """A mount made at start or by ``Sandbox.mount``; ``unmount`` takes it.
    ``host`` is absolute, with symlinks resolved."""

    id: str
    host: str
    guest: str
    readonly: bool

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "MountHandle":
        return cls(m["id"], m["host"], m["guest"], bool(m["readonly"]))


@dataclass(frozen=True)
class PtySize:
    """A terminal's size, for ``start_process(..., pty=PtySize(24, 80))``."""

    rows: int = 24
    cols: int = 80


@dataclass(frozen=True)
class ProcessInfo:
    """A background process that still runs (``list_processes``)."""

    id: str
    pid: int
    command: str
    pty: bool = False

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "ProcessInfo":
        return cls(m["id"], m["pid"], m["command"], bool(m.get("pty")))


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


class ExecuteResult:
    """How a command ended. A failing command is a result, not an exception.

    ``stdout`` and ``stderr`` are the output decoded as UTF-8 (errors
    replaced), decoded when first read: a caller that streamed hundreds of
    MiB through callbacks does not pay for text it never looks at.
    ``stdout_bytes`` and ``stderr_bytes`` are the exact bytes. Immutable.
    """

    __slots__ = ("stdout_bytes", "stderr_bytes", "exit_code", "timed_out", "duration",
                 "stdout_truncated", "stderr_truncated", "_text")

    stdout_bytes: bytes
    stderr_bytes: bytes
    exit_code: int
    """The command's exit code; -1 when it timed out, 128+N when killed by signal N."""
    timed_out: bool
    duration: float
    """Seconds the command took, as the library measured it."""
    stdout_truncated: bool
    """``max_output`` cut the result's copy of stdout (callbacks got all of it)."""
    stderr_truncated: bool
    _text: List[Optional[str]]  # stdout and stderr, once decoded

    def __init__(
        self,
        stdout: Optional[str] = None,
        stderr: Optional[str] = None,
        exit_code: int = 0,
        timed_out: bool = False,
        stdout_bytes: Optional[bytes] = None,
        stderr_bytes: Optional[bytes] = None,
        duration: float = 0.0,
        stdout_truncated: bool = False,
        stderr_truncated: bool = False,
    ) -> None:
        # Text given without bytes is the bytes' source; both given are kept.
        if stdout_bytes is None:
            stdout_bytes = (stdout or "").encode()
        if stderr_bytes is None:
            stderr_bytes = (stderr or "").encode()
        values = dict(stdout_bytes=stdout_bytes, stderr_bytes=stderr_bytes, exit_code=exit_code,
                      timed_out=timed_out, duration=duration, stdout_truncated=stdout_truncated,
                      stderr_truncated=stderr_truncated, _text=[stdout, stderr])
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"ExecuteResult is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ExecuteResult is immutable: cannot delete {name!r}")

    def _decoded(self, i: int, raw: bytes) -> str:
        text = self._text[i]
        if text is None:
            text = self._text[i] = raw.decode("utf-8", "replace")
        return text

    @property
    def stdout(self) -> str:
        return self._decoded(0, self.stdout_bytes)

    @property
    def stderr(self) -> str:
        return self._decoded(1, self.stderr_bytes)

    @property
    def ok(self) -> bool:
        """True when the command exited with code 0."""
        return self.exit_code == 0

    def _fields(self) -> Tuple[Any, ...]:
        return (self.stdout_bytes, self.stderr_bytes, self.exit_code, self.timed_out, self.duration,
                self.stdout_truncated, self.stderr_truncated)

    def __reduce__(self) -> Tuple[Any, ...]:
        # Pickles through __init__ (quicksand.ray sends results between
        # processes): the default would set the slots, which are immutable.
        return (ExecuteResult, (None, None, self.exit_code, self.timed_out, self.stdout_bytes, self.stderr_bytes,
                                self.duration, self.stdout_truncated, self.stderr_truncated))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExecuteResult):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (f"ExecuteResult(stdout={self.stdout!r}, stderr={self.stderr!r}, exit_code={self.exit_code!r}, "
                f"timed_out={self.timed_out!r}, duration={self.duration!r}, "
                f"stdout_truncated={self.stdout_truncated!r}, stderr_truncated={self.stderr_truncated!r})")

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "ExecuteResult":
        return cls(
            exit_code=int(m["exit_code"]),
            timed_out=bool(m["timed_out"]),
            stdout_bytes=bytes(m["stdout"]),
            stderr_bytes=bytes(m["stderr"]),
            duration=float(m["duration"]),
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


@dataclass(frozen=True)
class SandboxSummary:
    """A sandbox a server keeps (``Sandbox.list``)."""

    id: str
    """What ``Sandbox.connect`` takes."""
    metadata: Dict[str, str]
    image: str
    running: bool
    created: float
    """When it was made, seconds since the epoch."""
    idle_timeout: float
    """Seconds the server lets it sit idle before it stops it; 0: never."""

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "SandboxSummary":
        return cls(str(m["id"]), dict(m["metadata"] or {}), str(m["image"]), bool(m["running"]),
                   float(m["created"]), float(m["idle_timeout"]))


# --- the code interpreter (E2B's names) ---


@dataclass(frozen=True)
class Result:
    """One rich result of a code run: the same value in each format the
    code produced (``formats()`` lists them). ``png``, ``jpeg`` and ``pdf``
    are base64, as Jupyter gives them; ``json`` is the decoded value;
    ``extra`` holds other MIME types by type. ``is_main_result``: the value
    of the cell's last expression, not something it displayed on the way."""

    text: Optional[str] = None
    html: Optional[str] = None
    markdown: Optional[str] = None
    svg: Optional[str] = None
    png: Optional[str] = None
    jpeg: Optional[str] = None
    pdf: Optional[str] = None
    latex: Optional[str] = None
    json: Optional[Any] = None
    javascript: Optional[str] = None
    is_main_result: bool = False
    extra: Optional[Dict[str, Any]] = None

    _FORMATS = ("text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex", "json", "javascript")

    def formats(self) -> List[str]:
        """The formats the result has ("text", "html", "png", ...; other
        MIME types as they are)."""
        have = [f for f in self._FORMATS if getattr(self, f) is not None]
        return have + list(self.extra or {})

    def __str__(self) -> str:
        return self.text or ""

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "Result":
        return cls(**{f: m.get(f) for f in cls._FORMATS}, is_main_result=bool(m.get("is_main_result")), extra=m.get("extra"))


@dataclass(frozen=True)
class Logs:
    """A run's output, in the chunks it came in."""

    stdout: List[str]
    stderr: List[str]


@dataclass(frozen=True)
class ExecutionError:
    """The exception a run's code raised (``name`` its class, e.g.
    "ZeroDivisionError"), or why the run ended early: "TimeoutError" (its
    timeout came or it was cancelled; the context keeps its earlier state)
    or "KernelDied" (the code ended its kernel; the next run starts a fresh
    one)."""

    name: str
    value: str
    traceback: str

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "ExecutionError":
        return cls(str(m["name"]), str(m["value"]), str(m["traceback"]))


@dataclass(frozen=True)
class Execution:
    """What a code run produced (``run_code``)."""

    results: List[Result]
    """The rich results in order: what the cell displayed, and the value of
    its last expression (``is_main_result``)."""
    logs: Logs
    error: Optional[ExecutionError]
    """The exception the code raised, or the timeout; None if none."""
    execution_count: int
    """The context's count of runs."""

    @property
    def text(self) -> Optional[str]:
        """The main result's text; None if there is none."""
        for r in self.results:
            if r.is_main_result:
                return r.text
        return None

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "Execution":
        logs = m.get("logs") or {}
        error = m.get("error")
        return cls(
            [Result._from_wire(r) for r in m.get("results") or []],
            Logs(list(logs.get("stdout") or []), list(logs.get("stderr") or [])),
            ExecutionError._from_wire(error) if error else None,
            int(m.get("execution_count") or 0),
        )


@dataclass(frozen=True)
class CodeContext:
    """A code context (``create_code_context``): its own kernel (Python) or
    shell state (bash), whose variables, imports and folder carry from one
    run to the next. ``run_code(context=...)`` and the context methods take
    it or its ``id``."""

    id: str
    language: str
    cwd: str

    @classmethod
    def _from_wire(cls, m: Dict[str, Any]) -> "CodeContext":
        return cls(str(m["id"]), str(m["language"]), str(m.get("cwd") or ""))


# --- the desktop ------------------------------------------------------------------


@dataclass(frozen=True)
class DisplayOptions:
    """A sandbox's screen (``Sandbox(display=DisplayOptions(...))``), in an
    image with a desktop such as "debian-desktop". ``width`` and
    ``height`` in pixels (0, 0: 1280x800; 320x200 to 3840x2160). ``vnc``
    serves the screen for a person to watch, on 127.0.0.1 only, with a
    password of the sandbox's own (``vnc_port``, ``vnc_password``)."""

    width: int = 0
    height: int = 0
    vnc: bool = False


class Key(str, enum.Enum):
    """Key names for ``press_key`` (each an X keysym name, which is its
    value: ``Key.ENTER == "Return"``). ``press_key`` takes any other X
    keysym name, or one printable character, as a plain string too::

        await sb.press_key(Key.CTRL, Key.ALT, "t")
    """

    ENTER = "Return"
    TAB = "Tab"
    ESCAPE = "Escape"
    BACKSPACE = "BackSpace"
    DELETE = "Delete"
    INSERT = "Insert"
    SPACE = "space"
    HOME = "Home"
    END = "End"
    PAGE_UP = "Page_Up"
    PAGE_DOWN = "Page_Down"
    LEFT = "Left"
    RIGHT = "Right"
    UP = "Up"
    DOWN = "Down"
    CTRL = "ctrl"
    ALT = "alt"
    SHIFT = "shift"
    SUPER = "super"
    F1 = "F1"
    F2 = "F2"
    F3 = "F3"
    F4 = "F4"
    F5 = "F5"
    F6 = "F6"
    F7 = "F7"
    F8 = "F8"
    F9 = "F9"
    F10 = "F10"
    F11 = "F11"
    F12 = "F12"

    def __str__(self) -> str:
        return str(self.value)
