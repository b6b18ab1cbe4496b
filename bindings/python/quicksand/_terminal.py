"""The terminal side of ``quicksand shell``: the local terminal raw, wired to
a shell on a terminal in the guest."""

from __future__ import annotations

import os
import signal
import sys
import termios
import threading
import tty

from .errors import QuicksandError
from .sync import SyncSandbox
from .types import PtySize


def _size() -> PtySize:
    try:
        cols, rows = os.get_terminal_size(sys.stdin.fileno())
        return PtySize(rows or 24, cols or 80)
    except OSError:
        return PtySize(24, 80)


def _show(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def interact(sb: SyncSandbox, shell: str) -> int:
    """Runs ``shell -i`` on a terminal in sb, wired to this terminal, until it
    exits; returns its exit code. Every key goes to the guest (^C, ^D); the
    guest's terminal follows the window's size; the terminal is restored."""
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    env = {"TERM": os.environ.get("TERM") or "xterm-256color"}
    p = sb.start_process(f"exec {shell} -i", env=env, pty=_size(), on_stdout=_show)

    def resize(*_: object) -> None:
        size = _size()
        p.resize(size.rows, size.cols)

    def feed() -> None:
        # A write fails once the shell has exited (or the sandbox stopped):
        # the main thread's wait says how it ended, so the keys still typed
        # are dropped here instead of printing a thread's traceback.
        try:
            while True:
                data = os.read(stdin, 32 << 10)
                if not data:
                    p.close_stdin()
                    return
                p.write_stdin(data)
        except QuicksandError:
            return

    old_winch = signal.signal(signal.SIGWINCH, resize)
    try:
        if saved is not None:
            tty.setraw(stdin)
        threading.Thread(target=feed, daemon=True).start()
        while True:
            try:
                return p.wait(timeout=0.2).exit_code  # short waits: signals stay handled
            except TimeoutError:
                continue
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_winch)
