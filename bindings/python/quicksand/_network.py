"""A sandbox's network policy and counts (blocking calls into the library;
the async and sync wrappers decide on which thread they run)."""

from __future__ import annotations

import ctypes
from typing import Optional

import msgpack

from . import _lib
from ._wire import policy_map
from .types import NetworkPolicy, NetworkStats


def set_network(ptr: int, policy: Optional[NetworkPolicy]) -> None:
    m = policy_map(policy)
    req = msgpack.packb(m) if m is not None else None
    err = ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_set_network(ptr, req, len(req) if req else 0, ctypes.byref(err)), err)


def stats(ptr: int) -> NetworkStats:
    buf, err = _lib.Buffer(), ctypes.c_void_p()
    _lib.check(_lib.lib().qs_sandbox_network_stats(ptr, ctypes.byref(buf), ctypes.byref(err)), err)
    return NetworkStats._from_wire(msgpack.unpackb(_lib.take_buffer(buf), raw=False))
