"""Images installed as Python packages (``pip install quicksand-go-debian``):
each declares the folder holding its images under the entry point group
``quicksand_go.images``, and a start searches those folders after the
``image_dirs`` it was given and before ``QUICKSAND_IMAGE_PATH`` and the
default image folder."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any, Iterable, List

GROUP = "quicksand_go.images"

_log = logging.getLogger("quicksand")


def _entry_points() -> Iterable[Any]:
    eps = entry_points()
    found: Iterable[Any]
    if hasattr(eps, "select"):  # Python 3.10+
        found = eps.select(group=GROUP)
    else:
        found = eps.get(GROUP, [])
    return found  # Python 3.9: a dict of groups


def package_image_dirs() -> List[str]:
    """The image folders of the installed image packages. One that fails to
    load is skipped, with a warning that names it."""
    dirs: List[str] = []
    for ep in _entry_points():
        try:
            dirs.append(str(ep.load()()))
        except Exception as e:  # noqa: BLE001 - a broken package must not stop every start
            _log.warning("the image package %s (%s) did not load: %s", ep.name, ep.value, e)
    return dirs
