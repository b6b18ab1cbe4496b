"""Retags a pure-Python wheel for one platform: the wheel carries a native
library that setuptools does not know about (it is package data), so it
tagged the wheel py3-none-any. Usage: retag_wheel.py WHEEL PLATFORM OUTDIR.

Rewrites the WHEEL metadata (the tag, and Root-Is-Purelib: false, as for
any wheel with native code) and its line in RECORD, and names the file for
the new tag (PEP 427)."""

import base64
import hashlib
import sys
import zipfile
from pathlib import Path


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main(src: str, platform: str, outdir: str) -> None:
    src_path = Path(src)
    dist, version, python, abi, _ = src_path.stem.split("-")
    tag = f"{python}-{abi}-{platform}"
    dest = Path(outdir) / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(src_path) as zin:
        names = zin.namelist()
        wheel_name = next(n for n in names if n.endswith(".dist-info/WHEEL"))
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        wheel = []
        for line in zin.read(wheel_name).decode().splitlines():
            if line.startswith("Tag:"):
                line = f"Tag: {tag}"
            elif line.startswith("Root-Is-Purelib:"):
                line = "Root-Is-Purelib: false"
            wheel.append(line)
        wheel_data = ("\n".join(wheel) + "\n").encode()
        record = [
            record_line(wheel_name, wheel_data) if line.startswith(wheel_name + ",") else line
            for line in zin.read(record_name).decode().splitlines()
        ]
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                if info.filename == wheel_name:
                    data = wheel_data
                elif info.filename == record_name:
                    data = ("\n".join(record) + "\n").encode()
                else:
                    data = zin.read(info)
                zout.writestr(info, data)
    print(f"{dest.name} ({tag})")


if __name__ == "__main__":
    main(*sys.argv[1:])
