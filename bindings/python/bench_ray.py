"""Figures of quicksand.ray (issue 27) on a Ray cluster simulated on this
machine (ray.cluster_utils.Cluster, a raylet per node, all on loopback):

- ``true`` through Ray against the library directly, alternated in one run;
- the time to start N sandboxes (default 30) across 3 nodes at once, and
  the same N started by the library in this process;
- the memory Ray adds per sandbox: the proportional set size (PSS) of each
  sandbox's actor process, beside its QEMU's.

Run with the test environment (QUICKSAND_LIB, QUICKSAND_IMAGE_PATH, ...)::

    python bench_ray.py [--sandboxes 30] [--rounds 40] [--memory 256M]
"""

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every Ray process on the loopback

import argparse
import asyncio
import statistics
import time

import ray
from ray.cluster_utils import Cluster

from quicksand import Sandbox
from quicksand.ray import RaySandbox

NODES = 3


def pss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def ms(xs):
    xs = sorted(xs)
    return f"median {statistics.median(xs) * 1000:.1f} ms, p90 {xs[int(len(xs) * 0.9)] * 1000:.1f} ms"


async def main(args: argparse.Namespace) -> None:
    per_node = -(-args.sandboxes // NODES)
    began = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"quicksand": per_node}, "include_dashboard": False})
    for _ in range(NODES - 1):
        cluster.add_node(num_cpus=1, resources={"quicksand": per_node})
    ray.init(address=cluster.address, logging_level="warning", log_to_driver=False)
    cluster.wait_for_nodes()
    print(f"cluster of {NODES} nodes x {per_node} units up in {time.monotonic() - began:.1f} s")
    try:
        # `true`, alternated: the library in this process, then through Ray
        local = await Sandbox(memory=args.memory).start()
        remote = await RaySandbox.start(memory=args.memory)
        for sb in (local, remote):
            await sb.execute("true")  # warm up
        direct, via_ray = [], []
        for _ in range(args.rounds):
            for sb, into in ((local, direct), (remote, via_ray)):
                t = time.perf_counter()
                await sb.execute("true")
                into.append(time.perf_counter() - t)
        print(f"`true`, {args.rounds} rounds alternated: library {ms(direct)}; through Ray {ms(via_ray)}")
        await local.stop()
        await remote.stop()

        # N starts at once, spread by resource
        t = time.perf_counter()
        sandboxes = await asyncio.gather(*(RaySandbox.start(memory=args.memory, timeout=300) for _ in range(args.sandboxes)))
        took = time.perf_counter() - t
        nodes = {sb.node_id for sb in sandboxes}
        print(f"{args.sandboxes} sandboxes ({args.memory}) started at once across {len(nodes)} nodes in {took:.1f} s")
        infos = await asyncio.gather(*(sb.info() for sb in sandboxes))
        results = await asyncio.gather(*(sb.execute("true") for sb in sandboxes))
        assert all(r.ok for r in results)
        actor = [pss_mib(i["worker_pid"]) for i in infos]
        qemu = [pss_mib(i["pid"]) for i in infos]
        print(f"memory per sandbox (PSS): Ray actor process median {statistics.median(actor):.0f} MiB "
              f"(max {max(actor):.0f}); its QEMU median {statistics.median(qemu):.0f} MiB")
        t = time.perf_counter()
        await asyncio.gather(*(sb.stop() for sb in sandboxes))
        print(f"{args.sandboxes} stopped in {time.perf_counter() - t:.1f} s")

        # the same starts without Ray, for scale: what Ray adds is mostly a
        # new Python worker process per actor (ray, quicksand and the library imported)
        t = time.perf_counter()
        local_ones = await asyncio.gather(*(Sandbox(memory=args.memory).start() for _ in range(args.sandboxes)))
        print(f"{args.sandboxes} sandboxes started at once by the library in this process: {time.perf_counter() - t:.1f} s")
        await asyncio.gather(*(sb.stop() for sb in local_ones))
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sandboxes", type=int, default=30)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--memory", default="256M")
    asyncio.run(main(p.parse_args()))
