"""The msgpack a sandbox's config and an execute request cross the C ABI as
(include/quicksand.h). Options left at None are left out, so that the
library's defaults apply."""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Mapping, Optional, Union

import msgpack

from .types import Mount, NetworkMode, PortForward

# --- config and requests ------------------------------------------------------


def encode_config(
    image: str,
    memory: Union[str, int, None],
    cpus: Optional[int],
    accel: Optional[str],
    network_mode: Union[NetworkMode, str, None],
    port_forwards: Iterable[Union[PortForward, tuple]],
    boot_timeout: Optional[float],
    extra_qemu_args: Iterable[str],
    extra_kernel_args: Iterable[str],
    workdir: Optional[str],
    cold_boot: Optional[bool] = None,
    allow_host_loopback: Optional[bool] = None,
    template_dir: Optional[str] = None,
    image_dirs: Iterable[str] = (),
    qemu_path: Optional[str] = None,
    mounts: Iterable[Union[Mount, tuple]] = (),
) -> bytes:
    """The msgpack config of qs_sandbox_start. Values are checked by the
    library, whose errors name the option."""
    forwards = []
    for pf in port_forwards:
        host, guest = (pf.host, pf.guest) if isinstance(pf, PortForward) else pf
        forwards.append({"host": host, "guest": guest})
    cfg: Dict[str, Any] = {
        "image": image,
        "memory": memory,
        "cpus": cpus,
        "accel": accel,
        "network_mode": network_mode.value if isinstance(network_mode, NetworkMode) else network_mode,
        "port_forwards": forwards or None,
        "boot_timeout": boot_timeout,
        "extra_qemu_args": list(extra_qemu_args) or None,
        "extra_kernel_args": list(extra_kernel_args) or None,
        "workdir": workdir,
        "cold_boot": cold_boot,
        "allow_host_loopback": allow_host_loopback,
        "template_dir": template_dir,
        "image_dirs": list(image_dirs) or None,
        "qemu_path": qemu_path,
        "mounts": [mount_map(m) for m in mounts] or None,
    }
    return msgpack.packb({k: v for k, v in cfg.items() if v is not None})


def mount_map(m: Union[Mount, tuple]) -> Dict[str, Any]:
    """A mount as the library takes it; a tuple is (host, guest[, readonly])."""
    if not isinstance(m, Mount):
        m = Mount(*m)
    return {"host": os.fspath(m.host), "guest": m.guest, "readonly": bool(m.readonly)}


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
    req: Dict[str, Any] = {"command": command}
    for key, value in (
        ("timeout", timeout), ("cwd", cwd), ("shell", shell), ("stdin", stdin), ("user", user), ("max_output", max_output),
    ):
        if value is not None:
            req[key] = value
    if env is not None:
        req["env"] = dict(env)
    return msgpack.packb(req, use_bin_type=True)
