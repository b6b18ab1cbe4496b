"""``quicksand image ...``: the Go CLI's image commands, through the library
(include/quicksand.h, "Images"). ``list`` also shows the images of installed
image packages (``pip install quicksand-go-debian``)."""

from __future__ import annotations

import argparse
import ctypes
import sys
from typing import Any, Dict, List, Optional, Tuple

import msgpack

from . import _lib
from ._images import package_image_dirs

ProgressFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)


def signatures() -> Dict[str, Tuple[Any, List[Any]]]:
    """The image functions' (restype, argtypes), as include/quicksand.h
    declares them (checked by internal/contract)."""
    c = ctypes
    return {name: (_lib.Status, args) for name, args in {
        "qs_image_list": [c.c_char_p, c.c_size_t, c.POINTER(_lib.Buffer), c.POINTER(c.c_void_p)],
        "qs_image_install": [c.c_char_p, c.c_char_p, ProgressFn, c.c_void_p, c.POINTER(_lib.Buffer), c.POINTER(c.c_void_p)],
        "qs_image_remove": [c.c_char_p, c.c_char_p, c.POINTER(_lib.Buffer), c.POINTER(c.c_void_p)],
        "qs_image_pack": [c.c_char_p, c.c_char_p, c.POINTER(_lib.Buffer), c.POINTER(c.c_void_p)],
        "qs_image_import": [c.c_char_p, c.c_char_p, c.c_char_p, c.POINTER(_lib.Buffer), c.POINTER(c.c_void_p)],
        "qs_image_build": [c.c_char_p, c.c_char_p, c.c_char_p, c.POINTER(_lib.Buffer), c.POINTER(c.c_void_p)],
    }.items()}


def _declare() -> Any:
    lib = _lib.lib()
    for name, (restype, argtypes) in signatures().items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def _text(s: Optional[str]) -> Optional[bytes]:
    return s.encode() if s else None


def _human(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n >> 10} KiB"


def add_parser(sub: Any) -> None:
    image = sub.add_parser("image", help="list, install, remove, pack, import or build images")
    verbs = image.add_subparsers(dest="image_verb", required=True)
    verbs.add_parser("list", help="name, architecture, size and source of every image found")
    install = verbs.add_parser("install", help="install an image archive (.qsimage), its checksums checked")
    install.add_argument("archive")
    remove = verbs.add_parser("remove", help="remove an installed image (never a save)")
    remove.add_argument("name")
    pack = verbs.add_parser("pack", help="pack an image into an archive")
    pack.add_argument("name")
    pack.add_argument("archive")
    imp = verbs.add_parser("import", help="make images of an installed Quicksand image package")
    imp.add_argument("package_folder")
    imp.add_argument("--name", default=None)
    build = verbs.add_parser("build", help="build the default image from the sources (without root: mmdebstrap, fakeroot)")
    build.add_argument("--arch", default=None, help="x86_64 or arm64 (default: this machine's)")
    build.add_argument("--source", default=None, help="a Quicksand-Go checkout (default: $QUICKSAND_SOURCE, else the one around the working directory)")
    for p in (install, remove, imp, build):
        p.add_argument("--dir", default=None, help="image folder (default: the default image folder)")


def run(args: argparse.Namespace) -> int:
    lib, buf, err = _declare(), _lib.Buffer(), ctypes.c_void_p()
    verb = args.image_verb
    if verb == "list":
        opts = msgpack.packb({"dirs": package_image_dirs()})
        _lib.check(lib.qs_image_list(opts, len(opts), ctypes.byref(buf), ctypes.byref(err)), err)
        rows = [("NAME", "ARCH", "SIZE", "SOURCE", "FOLDER")]
        for e in msgpack.unpackb(_lib.take_buffer(buf), raw=False):
            rows.append((e["name"], e["arch"], _human(e["bytes"]), e["source"], e["dir"]))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])
        return 0
    if verb == "install":
        shown = sys.stderr.isatty()

        @ProgressFn
        def progress(_: Any, done: int, total: int) -> None:
            sys.stderr.write(f"\rinstalling {args.archive}: {done * 100 // max(total, 1):3d}% of {_human(total)}")

        status = lib.qs_image_install(args.archive.encode(), _text(args.dir), progress if shown else ProgressFn(), None,
                                      ctypes.byref(buf), ctypes.byref(err))
        if shown:
            sys.stderr.write("\n")
        _lib.check(status, err)
        print(_lib.take_buffer(buf).decode())
        return 0
    if verb == "remove":
        _lib.check(lib.qs_image_remove(args.name.encode(), _text(args.dir), ctypes.byref(buf), ctypes.byref(err)), err)
        print("removed", _lib.take_buffer(buf).decode())
        return 0
    if verb == "pack":
        _lib.check(lib.qs_image_pack(args.name.encode(), args.archive.encode(), ctypes.byref(buf), ctypes.byref(err)), err)
        print(f"{_lib.take_buffer(buf).decode()}  {args.archive}")
        return 0
    if verb == "build":
        status = lib.qs_image_build(_text(args.source), _text(args.arch), _text(args.dir), ctypes.byref(buf), ctypes.byref(err))
        _lib.check(status, err)
        print(_lib.take_buffer(buf).decode())
        return 0
    status = lib.qs_image_import(args.package_folder.encode(), _text(args.dir), _text(args.name), ctypes.byref(buf), ctypes.byref(err))
    raw = _lib.take_buffer(buf)
    for d in msgpack.unpackb(raw, raw=False) if raw else []:
        print(d)
    _lib.check(status, err)
    return 0
