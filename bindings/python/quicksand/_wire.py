"""The msgpack a sandbox's config and an execute request cross the C ABI as
(include/quicksand.h), and the one declaration of a sandbox's options
(SandboxOptions), which Sandbox, SyncSandbox, Pool and SyncPool take.
Options left out (or at None) are left out of the config, so that the
library's defaults apply."""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Mapping, Optional, Tuple, TypeVar, Union

import msgpack

from .types import DisplayOptions, Mount, NetworkMode, NetworkPolicy, PortForward, PtySize

if TYPE_CHECKING:
    from typing_extensions import TypedDict, Unpack
else:
    from typing import TypedDict

# --- the options of a sandbox ---------------------------------------------------------


class SandboxOptions(TypedDict, total=False):
    """The options of ``Sandbox(image, **options)`` (and of a pool's
    sandboxes). Options left out take the library's defaults (memory
    512 MiB, 1 CPU, accel "auto", network "restricted", boot timeout 60 s:
    include/quicksand.h)."""

    memory: Union[str, int, None]
    """Guest memory: "512M", "2G", or MiB as a number."""
    cpus: Optional[int]
    """Guest CPUs."""
    accel: Optional[str]
    """"auto", "kvm", "hvf" or "tcg"."""
    network_mode: Union[NetworkMode, str, None]
    """What the guest reaches: "restricted" (nothing outside the VM) or
    "full" (out through the host, but not the host's loopback services,
    unless ``allow_host_loopback``)."""
    port_forwards: Iterable[Union[PortForward, Tuple[int, int]]]
    """127.0.0.1 ports of the host forwarded into the guest:
    ``PortForward(host, guest)`` or ``(host, guest)``."""
    boot_timeout: Optional[float]
    """Seconds the start may take."""
    extra_qemu_args: Iterable[str]
    extra_kernel_args: Iterable[str]
    workdir: Optional[str]
    """The folder the VM's files go to (default: a temporary one)."""
    cold_boot: bool
    """Boot the kernel even when a template of the image could be resumed
    (the default resumes one in a fraction of a second; the first start of
    an image makes it)."""
    allow_host_loopback: bool
    """With network "full": also reach the host's loopback services."""
    network_policy: Optional[NetworkPolicy]
    """Narrows network mode "full" (then the default) to what the policy
    allows; ``set_network`` changes it on a running sandbox."""
    template_dir: Optional[str]
    image_dirs: Iterable[str]
    """Folders to look for images in first; then installed image packages
    (``pip install quicksand-go-debian``), then ``QUICKSAND_IMAGE_PATH``,
    then the default image folder."""
    qemu_path: Optional[str]
    mounts: Iterable[Union[Mount, Tuple[str, str], Tuple[str, str, bool]]]
    """Host folders shared into the guest once it is up:
    ``Mount(host, guest, readonly=False)`` or a tuple of those."""
    server: Optional[str]
    """A ``quicksand serve`` server that keeps the sandbox instead of a VM
    of this process: ``http://127.0.0.1:PORT`` (plain http on the loopback
    only), ``https://host:port`` or ``unix:/path/to.sock``. Default
    ``QUICKSAND_SERVER``. Such a sandbox outlives this process: ``async
    with``/``with`` stop it at the end, ``stop()`` does, its idle timeout
    does; otherwise it runs on, and ``Sandbox.connect(id)`` reaches it
    again. The options of this host's VMs (image_dirs, qemu_path, workdir,
    port_forwards, ...) are the server's business and refused with it."""
    api_key: Optional[str]
    """The server's key for this client (default ``QUICKSAND_API_KEY``,
    with ``QUICKSAND_SERVER`` only)."""
    metadata: Optional[Mapping[str, str]]
    """Labels of the sandbox, which ``Sandbox.list(metadata=...)`` filters by."""
    idle_timeout: Optional[float]
    """Seconds a server lets the sandbox sit idle before it stops it
    (default: the server's, 300 s unless it says otherwise; negative:
    never). A server's sandbox only."""
    display: Union[bool, Tuple[int, int], DisplayOptions, None]
    """A screen, keyboard and mouse driven from the host (``screenshot``,
    ``type_text``, ``mouse_click``, ...), in an image with a desktop such
    as "debian-desktop" (another image raises InvalidConfigError): True
    for 1280x800, ``(width, height)``, or ``DisplayOptions(width, height,
    vnc)``."""
    enable_display: bool
    """Quicksand's name for ``display=True`` (``display``, when given, wins)."""


OPTIONS = tuple(SandboxOptions.__annotations__)
"""The option names, in the header's order."""

ALIASES = {"enable_display": "display"}
"""Options that are another's other name: they are not config keys."""

_F = TypeVar("_F", bound=Callable[..., Any])


def takes_options(fn: _F) -> _F:
    """Shows ``**options`` as the keyword arguments they are to inspect
    (help(), IPython, Jupyter's completion); type checkers read the
    TypedDict itself."""
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params += [
        inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=getattr(t, "__forward_arg__", t))
        for k, t in SandboxOptions.__annotations__.items()
    ]
    fn.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return fn


# --- config and requests ------------------------------------------------------


@takes_options
def encode_config(image: str = "debian", **options: Unpack[SandboxOptions]) -> bytes:
    """The msgpack config of qs_sandbox_start. An unknown option raises
    TypeError (as a misspelt keyword argument does); values are checked by
    the library, whose errors name the option."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown sandbox option {unknown[0]!r} (the options: {', '.join(OPTIONS)})")
    o: Dict[str, Any] = dict(options)
    network = o.get("network_mode")
    cfg: Dict[str, Any] = {
        **o,
        "image": image,
        "network_mode": network.value if isinstance(network, NetworkMode) else network,
        "port_forwards": [_forward_map(pf) for pf in o.get("port_forwards", ())] or None,
        "extra_qemu_args": list(o.get("extra_qemu_args", ())) or None,
        "extra_kernel_args": list(o.get("extra_kernel_args", ())) or None,
        "cold_boot": o.get("cold_boot") or None,
        "allow_host_loopback": o.get("allow_host_loopback") or None,
        "image_dirs": list(o.get("image_dirs", ())) or None,
        "mounts": [mount_map(m) for m in o.get("mounts", ())] or None,
        "network_policy": policy_map(o.get("network_policy")),
        "metadata": dict(o["metadata"]) if o.get("metadata") is not None else None,
        "display": display_map(o.get("display"), o.get("enable_display")),
        "enable_display": None,
    }
    return bytes(msgpack.packb({k: cfg[k] for k in ("image", *OPTIONS) if cfg.get(k) is not None}))


def is_remote(options: SandboxOptions) -> bool:
    """Whether a sandbox of these options is a server's (the library's
    rule: the server option, else QUICKSAND_SERVER)."""
    return bool(options.get("server") or os.environ.get("QUICKSAND_SERVER"))


def encode_remote(
    server: Optional[str] = None, api_key: Optional[str] = None, metadata: Optional[Mapping[str, str]] = None
) -> bytes:
    """The options of qs_sandbox_connect and qs_sandbox_list."""
    o: Dict[str, Any] = {"server": server, "api_key": api_key, "metadata": dict(metadata) if metadata is not None else None}
    return bytes(msgpack.packb({k: v for k, v in o.items() if v is not None}))


def _forward_map(pf: Union[PortForward, Tuple[int, int]]) -> Dict[str, int]:
    host, guest = (pf.host, pf.guest) if isinstance(pf, PortForward) else pf
    return {"host": host, "guest": guest}


def mount_map(m: Union[Mount, Tuple[str, str], Tuple[str, str, bool]]) -> Dict[str, Any]:
    """A mount as the library takes it; a tuple is (host, guest[, readonly])."""
    if not isinstance(m, Mount):
        m = Mount(*m)
    return {"host": os.fspath(m.host), "guest": m.guest, "readonly": bool(m.readonly)}


def policy_map(p: Optional[NetworkPolicy]) -> Optional[Dict[str, Any]]:
    """A network policy as the library takes it (None: none)."""
    if p is None:
        return None
    if not isinstance(p, NetworkPolicy):
        raise TypeError(f"network_policy must be a NetworkPolicy, not {type(p).__name__}")
    return p._to_wire()


def display_map(
    display: Union[bool, Tuple[int, int], DisplayOptions, None], enable_display: Optional[bool] = None
) -> Union[bool, Dict[str, Any], None]:
    """The config's display: True, a map {width, height, vnc}, or None
    (none). Sizes are checked by the library."""
    if display is None:
        display = bool(enable_display)
    if isinstance(display, bool):
        return True if display else None
    if isinstance(display, DisplayOptions):
        return {"width": display.width, "height": display.height, "vnc": bool(display.vnc)}
    if isinstance(display, tuple) and len(display) == 2:
        width, height = display
        return {"width": width, "height": height}
    raise TypeError(f"display must be True, (width, height) or DisplayOptions, not {display!r}")


def encode_request(
    command: str,
    timeout: Optional[float],
    cwd: Optional[str],
    shell: Optional[str],
    env: Optional[Mapping[str, str]],
    stdin: Union[str, bytes, None],
    user: Optional[str] = None,
    max_output: Optional[int] = None,
) -> bytes:
    """The msgpack request of qs_sandbox_execute_async."""
    req: Dict[str, Any] = {"command": command}
    for key, value in (
        ("timeout", timeout), ("cwd", cwd), ("shell", shell), ("stdin", stdin), ("user", user), ("max_output", max_output),
    ):
        if value is not None:
            req[key] = value
    if env is not None:
        req["env"] = dict(env)
    return bytes(msgpack.packb(req, use_bin_type=True))


def encode_process(
    command: str,
    cwd: Optional[str],
    env: Optional[Mapping[str, str]],
    shell: Optional[str],
    user: Optional[str],
    pty: Optional[PtySize],
) -> bytes:
    """The msgpack request of qs_sandbox_start_process."""
    req: Dict[str, Any] = {"command": command}
    for key, value in (("cwd", cwd), ("shell", shell), ("user", user)):
        if value is not None:
            req[key] = value
    if env is not None:
        req["env"] = dict(env)
    if pty is not None:
        req["pty"] = {"rows": pty.rows, "cols": pty.cols}
    return bytes(msgpack.packb(req))


def encode_code(
    code: str, language: Optional[str], context: Optional[str], env: Optional[Mapping[str, str]], timeout: Optional[float]
) -> bytes:
    """The msgpack request of qs_sandbox_run_code_async."""
    req: Dict[str, Any] = {"code": code}
    for key, value in (("language", language), ("context", context), ("timeout", timeout)):
        if value is not None:
            req[key] = value
    if env is not None:
        req["env"] = dict(env)
    return bytes(msgpack.packb(req, use_bin_type=True))
