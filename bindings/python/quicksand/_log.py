"""The engine's log, into the standard logging module as the logger
"quicksand" (the decisions it takes on its own: accelerator and fallback,
templates built and why, the output channel not used, retries, stale folders
swept). Warnings (KVM present but not usable by this user, a template that
did not resume, ...) reach stderr even when the application configured no
logging, through logging's last-resort handler, as the standard library
intends; everything below WARNING is silent unless the application asks:

    logging.basicConfig(level=logging.INFO)  # or logging.getLogger("quicksand")
"""

from __future__ import annotations

import atexit
import ctypes
import logging

from . import _lib

logger = logging.getLogger("quicksand")

QS_LOG_DEBUG = -4


def _python_level(level: int) -> int:
    """slog's -4/0/4/8 are logging's DEBUG/INFO/WARNING/ERROR."""
    return 20 + (level * 10) // 4


@_lib.LogFn
def _on_log(user_data: object, level: int, message: bytes) -> None:
    # Runs on a library thread; must never raise into C.
    try:
        py = _python_level(level)
        if logger.isEnabledFor(py):
            logger.log(py, "%s", (message or b"").decode("utf-8", "replace"))
    except BaseException:  # noqa: BLE001 - nothing may cross into C
        pass


def install(lb: ctypes.CDLL) -> None:
    lb.qs_log_set_handler(_on_log, None, QS_LOG_DEBUG)
    # A callback into an interpreter being torn down crashes the process.
    atexit.register(lambda: lb.qs_log_set_handler(_lib.LogFn(), None, 0))
