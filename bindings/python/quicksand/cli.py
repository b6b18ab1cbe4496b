"""``quicksand run COMMAND``: boot the default image, stream the command's
output live, exit with its exit code."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ._wire import encode_request
from .errors import QuicksandError
from .sync import SyncSandbox


def _write(stream):  # type: ignore[no-untyped-def]
    def write(chunk: bytes) -> None:
        stream.write(chunk)
        stream.flush()

    return write


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="quicksand", description="Run commands in a Linux VM of your own.")
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="boot a sandbox and run one command in it")
    run.add_argument("command", nargs="+", help="the shell command (several words are joined with spaces)")
    run.add_argument("--image", default="debian", help="image name or folder (default: debian)")
    run.add_argument("--memory", default="512M", help='guest memory, e.g. "512M", "2G"')
    run.add_argument("--cpus", type=int, default=1)
    run.add_argument("--accel", default="auto", help="auto, kvm, hvf or tcg")
    run.add_argument("--timeout", type=float, default=600, help="command timeout in seconds (default 600)")
    run.add_argument("-v", "--verbose", action="store_true", help="print boot timing to stderr")
    args = parser.parse_args(argv)

    try:
        with SyncSandbox(image=args.image, memory=args.memory, cpus=args.cpus, accel=args.accel) as sb:
            if args.verbose:
                t = sb.boot_timing
                print(f"quicksand: {sb.arch} guest on {sb.accelerator}, ready in {t.ready:.2f} s", file=sys.stderr)
            request = encode_request(" ".join(args.command), args.timeout, None, None, None, None)
            res = sb._execute(request, _write(sys.stdout.buffer), _write(sys.stderr.buffer), raw=True)
    except QuicksandError as e:
        print(f"quicksand: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if res.timed_out:
        print(f"quicksand: the command timed out after {args.timeout:g} s", file=sys.stderr)
        return 124
    return res.exit_code


if __name__ == "__main__":
    sys.exit(main())
