"""``quicksand``: run a command or an interactive shell in a sandbox of its
own. The commands and flags are the Go CLI's (cmd/quicksand): one set,
whichever program a user runs.

    quicksand run [--image debian] [--memory 512M] [--timeout 10m] 'uname -a'
    quicksand shell [--image debian] [--save NAME]
    quicksand image list | install FILE | remove NAME | pack NAME FILE | import FOLDER | build [--arch]
    quicksand serve [--listen 127.0.0.1:7070 | unix:/path] [--keys FILE] ...
"""

from __future__ import annotations

import argparse
import ctypes
import re
import sys
from typing import Any, List, Optional

import msgpack

from . import _imagecli, _lib
from ._wire import encode_request
from .errors import InvalidConfigError, QuicksandError
from .sync import SyncSandbox


def seconds(text: str) -> float:
    """A duration as seconds ("600", "1.5") or with a unit ("90s", "10m", "1h")."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 600, 90s, 10m or 1h")
    return float(m.group(1)) * {None: 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _sandbox_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", default="debian", help="image name, image folder or save (default debian)")
    p.add_argument("--memory", default="512M", help="guest memory: 512M, 2G, or MiB as a number (default 512M)")
    p.add_argument("--cpus", type=int, default=1, help="guest CPUs (default 1)")
    p.add_argument("--accel", default="auto", help="auto, kvm, hvf or tcg (default auto)")
    p.add_argument("--timeout", type=seconds, default=600.0, help="run: the command's timeout, seconds or 90s, 10m, 1h (default 10m)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the boot timing to stderr")


def _write(stream: Any) -> Any:
    def write(chunk: bytes) -> None:
        stream.write(chunk)
        stream.flush()

    return write


def _open(args: argparse.Namespace) -> SyncSandbox:
    memory = int(args.memory) if re.fullmatch(r"\d+", args.memory) else args.memory
    sb = SyncSandbox(image=args.image, memory=memory, cpus=args.cpus, accel=args.accel).start()
    if args.verbose:
        t = sb.boot_timing
        print(f"quicksand: {sb.arch} guest on {sb.accelerator}, ready in {t.ready:.2f} s", file=sys.stderr)
    return sb


def _run(args: argparse.Namespace) -> int:
    command = " ".join(args.command)
    if not command:
        print("quicksand run: no command given", file=sys.stderr)
        return 2
    with _open(args) as sb:
        request = encode_request(command, args.timeout, None, None, None, None)
        res = sb._execute(request, _write(sys.stdout.buffer), _write(sys.stderr.buffer), raw=True)
    if res.timed_out:
        print(f"quicksand: the command timed out after {args.timeout:g} s", file=sys.stderr)
        return 124
    return res.exit_code


def _shell(args: argparse.Namespace) -> int:
    from ._terminal import interact  # termios: POSIX only

    with _open(args) as sb:
        code = interact(sb, args.shell)
        if args.save:
            path = sb.save(args.save)
            print(f"quicksand: saved to {path} (quicksand shell --image {args.save} resumes it)", file=sys.stderr)
    return code


def _serve(args: List[str]) -> int:
    """The server runs in the library (qs_serve): the same flags, the same
    server, as the Go command's; it says why it failed on stderr itself."""
    opts = msgpack.packb({"args": args})
    err = ctypes.c_void_p()
    status = _lib.lib().qs_serve(opts, len(opts), ctypes.byref(err))
    if status == 0:
        return 0
    _lib.lib().qs_error_free(err)
    return 2 if status == InvalidConfigError.status else 1


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        # Its flags are the library's to parse (see `quicksand serve -h`).
        return _serve(argv[1:])
    parser = argparse.ArgumentParser(prog="quicksand", description="Run commands in a Linux VM of your own.")
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="boot a sandbox and run one command in it")
    _sandbox_flags(run)
    run.add_argument("command", nargs=argparse.REMAINDER, help="the shell command (words after the flags, joined with spaces)")
    shell = sub.add_parser("shell", help="an interactive shell on a terminal in a fresh sandbox (or a save)")
    _sandbox_flags(shell)
    shell.add_argument("--save", help="save the sandbox under this name (or folder) when the shell ends")
    shell.add_argument("--shell", default="/bin/bash", help="the guest's shell (default /bin/bash)")
    _imagecli.add_parser(sub)
    sub.add_parser("serve", help="keep sandboxes for other processes and hosts (its flags: quicksand serve -h)")
    args = parser.parse_args(argv)
    try:
        if args.verb == "image":
            return _imagecli.run(args)
        return _run(args) if args.verb == "run" else _shell(args)
    except QuicksandError as e:
        print(f"quicksand: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
