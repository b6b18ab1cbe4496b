"""The Python figures of `make bench`: warm start to ready, execute `true`,
and streaming throughput with a callback. Prints one JSON figure a line."""

import asyncio
import json
import sys
import time

from quicksand import Pool, Sandbox


def figure(name, unit, values, warmup, command):
    v = sorted(values)
    q = lambda p: v[max(0, min(len(v) - 1, -(-int(p * len(v) * 1000) // 1000) - 1))]  # nearest rank
    print(json.dumps({"name": name, "unit": unit, "median": q(0.5), "p99": q(0.99), "min": v[0], "max": v[-1],
                      "runs": len(v), "warmup": warmup, "command": command}), flush=True)


async def round_trips(n: int) -> None:
    async with Sandbox() as sb:
        rtt = []
        for i in range(n + 20):
            t = time.monotonic()
            await sb.execute("true")
            if i >= 20:
                rtt.append((time.monotonic() - t) * 1000)
        figure("execute `true`, round trip", "ms", rtt, 20, 'await sb.execute("true")')


async def warm_starts() -> None:
    starts = []
    for i in range(4):
        t = time.monotonic()
        async with Sandbox() as sb:
            if i:
                starts.append(time.monotonic() - t)
            await sb.execute("true")
    figure("warm start to ready", "s", starts, 1, "async with Sandbox() (entering the context)")


async def stream(size: int) -> None:
    async with Sandbox() as sb:
        await sb.execute("true")
        got = 0

        def count(s: str) -> None:
            nonlocal got
            got += len(s)

        t = time.monotonic()
        r = await sb.execute(f"yes abcdefgh | head -c {size}", timeout=600, on_stdout=count)
        if got != size or r.exit_code != 0:
            raise SystemExit(f"bench.py: streamed {got} of {size} bytes")
        figure(f"text stdout throughput, {size >> 20} MiB, with on_stdout callback", "MB/s",
               [size / 1e6 / (time.monotonic() - t)], 0, "yes abcdefgh | head -c N, on_stdout counting")


async def pool_starts(n: int) -> None:
    """Starts from a pool with a sandbox waiting: each take, then a pause
    for the pool to refill before the next."""
    took = []
    async with Pool(size=2) as pool:
        await asyncio.sleep(3)  # fills
        for _ in range(n):
            t = time.monotonic()
            sb = await pool.start()
            took.append((time.monotonic() - t) * 1000)
            await sb.stop()
            await asyncio.sleep(1.5)  # refills
    figure("start from a pool with a sandbox waiting", "ms", took, 0, "await pool.start() (Pool(size=2))")


if __name__ == "__main__":
    # bench.py rtt N: round trips; bench.py stream SIZE: streaming
    # throughput on a fresh sandbox after one command; bench.py: warm starts.
    if sys.argv[1:2] == ["rtt"]:
        asyncio.run(round_trips(int(sys.argv[2])))
    elif sys.argv[1:2] == ["stream"]:
        asyncio.run(stream(int(sys.argv[2])))
    elif sys.argv[1:2] == ["pool"]:
        asyncio.run(pool_starts(int(sys.argv[2])))
    else:
        asyncio.run(warm_starts())
