"""Quicksand's own Sandbox (quicksand-core from PyPI) boots our debian
image, packaged as Quicksand packages its images (build/quicksand-package.sh),
and runs commands through our agent. Exits 1 if a check failed."""

import asyncio
import os
import sys

from quicksand_core import Sandbox

failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + repr(detail)), flush=True)
    if not ok:
        failures.append(name)


async def main():
    # Their engine takes a /dev/kvm that exists for one that works; the
    # test machines' does not, so TCG unless told otherwise.
    accel = os.environ.get("QUICKSAND_INTEROP_ACCEL", "tcg")
    async with Sandbox(image="go-debian", boot_timeout=600, accel=accel) as sb:
        r = await sb.execute("cat /etc/debian_version; id -un")
        check("execute in our image", r.exit_code == 0 and r.stdout.endswith("root\n") and r.stdout[0].isdigit(), r)
        chunks = []
        r = await sb.execute("echo one; echo two >&2; exit 7", on_stdout=chunks.append)
        check("streamed execute", r.exit_code == 7 and "".join(chunks) == "one\n" and r.stderr == "two\n", (r, chunks))
        r = await sb.execute("tr a-z A-Z", stdin="shout\n")
        check("stdin", r.stdout == "SHOUT\n", r)
        user = await sb.create_user("bob")
        r = await user.execute("id -un; pwd")
        check("a user of theirs", r.stdout == "bob\n/home/bob\n", r)
    print(f"{len(failures)} of Quicksand's Sandbox checks failed", flush=True)
    sys.exit(1 if failures else 0)


asyncio.run(main())
