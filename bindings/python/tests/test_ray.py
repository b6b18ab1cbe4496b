"""quicksand.ray on a real Ray cluster of 3 nodes on this machine
(ray.cluster_utils.Cluster: a raylet per node, the way Ray tests itself),
each advertising 2 ``quicksand`` units, with real VMs."""

import os

# Every Ray process on the loopback: Ray would otherwise take this host's
# outward address for the nodes (and the driver's connection to them).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import asyncio
import collections
import subprocess
import sys
import textwrap
import time

import pytest
import pytest_asyncio
import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from quicksand import GuestFileNotFoundError, ResourceError, SandboxNotRunningError
from quicksand.ray import RayPool, RaySandbox, units_for_memory

pytestmark = pytest.mark.asyncio(loop_scope="session")

UNITS = 2
OPTIONS = {"memory": "256M"}
NAMESPACE = "quicksand-test"


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"quicksand": UNITS}, "include_dashboard": False})
    for _ in range(2):
        c.add_node(num_cpus=1, resources={"quicksand": UNITS})
    ray.init(address=c.address, logging_level="warning", log_to_driver=False)
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


def qemu_alive(pid):
    """Whether pid is a live QEMU (not a zombie, not another program)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return state != "Z" and b"qemu" in f.read()
    except FileNotFoundError:
        return False


async def eventually(check, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within time"
        await asyncio.sleep(0.2)


def driver(cluster, body):
    """Runs body in a second Ray driver (a new process) of the cluster; its stdout."""
    script = textwrap.dedent(
        f"""
        import asyncio, ray
        from quicksand.ray import RaySandbox
        ray.init(address={cluster.address!r}, logging_level="warning", log_to_driver=False)
        async def main():
        """
    ) + textwrap.indent(textwrap.dedent(body), "    ") + "\nasyncio.run(main())\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_units_for_memory():
    assert units_for_memory("512M", total="16G", reserve="2G", overhead="200M") == (14 * 1024) // 712
    assert units_for_memory(256, total=1024, reserve=0, overhead=0) == 4
    assert units_for_memory("4G", total="2G") == 0
    with pytest.raises(ValueError, match="512X"):
        units_for_memory("512X")


async def test_lifetime_follows_the_driver_unless_detached(cluster):
    """A sandbox lives as long as the driver that started it, unless detached."""
    out = driver(
        cluster,
        f"""
        kept = await RaySandbox.start(memory="256M", detached=True, name="kept", namespace={NAMESPACE!r})
        dies = await RaySandbox.start(memory="256M", name="dies", namespace={NAMESPACE!r})
        await kept.write_file("/tmp/mark", "left by the first driver")
        print((await dies.info())["pid"])
        """,
    )
    dead_qemu = int(out.split()[-1])
    await eventually(lambda: not qemu_alive(dead_qemu))
    with pytest.raises((GuestFileNotFoundError, SandboxNotRunningError)):
        sb = await RaySandbox.connect("dies", namespace=NAMESPACE)
        await sb.execute("true")
    kept = await RaySandbox.connect("kept", namespace=NAMESPACE)
    assert await RaySandbox.list(namespace=NAMESPACE) == ["kept"]
    assert await kept.read_file("/tmp/mark") == b"left by the first driver"
    qemu = (await kept.info())["pid"]
    await kept.stop()
    assert not qemu_alive(qemu)
    with pytest.raises(SandboxNotRunningError, match="kept on Ray node"):
        await kept.execute("true")
    assert await RaySandbox.list(namespace=NAMESPACE) == []


async def test_a_pool_over_the_cluster(cluster):
    pool = await RayPool(size_per_node=1, namespace=NAMESPACE, **OPTIONS).open()
    waiting = lambda: [sb for node in pool._ready.values() for sb in node]
    assert sorted(sb.node_id for sb in waiting()) == sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    here = ray.get_runtime_context().get_node_id()
    began = time.monotonic()
    taken = [await pool.start()]
    assert time.monotonic() - began < 0.5 and taken[0].node_id == here
    elsewhere = next(n for n in pool._ready if n != here)
    taken.append(await pool.start(node_id=elsewhere))
    assert taken[1].node_id == elsewhere
    await eventually(lambda: len(waiting()) == 3)  # both nodes refilled
    left = [(await sb.info())["pid"] for sb in waiting()]
    await pool.close()
    assert not any(qemu_alive(pid) for pid in left)  # closing stopped those waiting
    for sb in taken:  # not those taken
        assert (await sb.execute("echo taken")).stdout == "taken\n"
        await sb.stop()
    assert await RaySandbox.list(namespace=NAMESPACE) == []


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def full(cluster):
    """Sandboxes on every unit of the cluster, and what info() says of each."""
    sandboxes = await asyncio.gather(*(RaySandbox.start(namespace=NAMESPACE, **OPTIONS) for _ in range(3 * UNITS)))
    infos = await asyncio.gather(*(sb.info() for sb in sandboxes))
    yield list(zip(sandboxes, infos))
    await asyncio.gather(*(sb.stop() for sb in sandboxes))


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_results_pickle():
    import pickle
    from quicksand import ExecuteResult
    r = ExecuteResult(exit_code=3, stdout_bytes=b"\xffo", stderr_bytes=b"e", duration=1.5, stdout_truncated=True)
    assert pickle.loads(pickle.dumps(r)) == r and pickle.loads(pickle.dumps(r)).stdout == r.stdout


async def test_fill_spreads_by_resource_then_waits_and_fails(cluster, full):
    per_node = collections.Counter(sb.node_id for sb, _ in full)
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert set(per_node) == nodes and set(per_node.values()) == {UNITS}
    for sb, info in full:
        assert info["node_id"] == sb.node_id and qemu_alive(info["pid"])
    began = time.monotonic()
    with pytest.raises(ResourceError, match=r"no Ray node had a free 'quicksand' unit within 3 s \(6 in the cluster, 0 free\)"):
        await RaySandbox.start(namespace=NAMESPACE, timeout=3, **OPTIONS)
    assert time.monotonic() - began >= 3
    assert ray.available_resources().get("quicksand", 0) == 0  # the refused start took nothing
    assert sorted(await RaySandbox.list(namespace=NAMESPACE)) == sorted(sb.id for sb, _ in full)


async def test_execute_streams_output_to_callbacks(full):
    sb = full[0][0]
    got, times = [], []
    began = time.monotonic()
    r = await sb.execute(
        "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.5; done",
        on_stdout=lambda t: (got.append(("o", t)), times.append(time.monotonic())),
        on_stderr=lambda t: got.append(("e", t)),
    )
    ended = time.monotonic()
    assert r.exit_code == 0 and r.stdout == "out1\nout2\nout3\n" and r.stderr == "err1\nerr2\nerr3\n"
    assert "".join(t for k, t in got if k == "o") == r.stdout
    assert "".join(t for k, t in got if k == "e") == r.stderr
    assert times[0] - began < ended - began - 0.7, "the first chunk came only with the end"
    # a callback that raises cancels the command and the call raises it
    def boom(_):
        raise KeyError("from the callback")
    with pytest.raises(KeyError, match="from the callback"):
        await sb.execute("echo x; sleep 20", on_stdout=boom)
    assert (await sb.execute("echo plain")).stdout == "plain\n"


async def test_files_processes_checkpoints_and_errors(full):
    sb = full[1][0]
    await sb.write_file("/tmp/f", "one")
    assert await sb.read_file("/tmp/f") == b"one"
    assert (await sb.stat("/tmp/f")).size == 3
    with pytest.raises(GuestFileNotFoundError, match="/nope"):
        await sb.read_file("/nope")
    await sb.checkpoint("c1")
    await sb.write_file("/tmp/f", "two")
    await sb.revert("c1")
    assert await sb.read_file("/tmp/f") == b"one"
    seen = []
    p = await sb.start_process("cat", on_stdout=seen.append)
    await p.write_stdin("echoed\n")
    await p.close_stdin()
    r = await p.wait(timeout=20)
    assert r.exit_code == 0 and "".join(seen) == "echoed\n"


@ray.remote(num_cpus=1)
def run_in_task(sb, command):
    return ray.get_runtime_context().get_node_id(), asyncio.run(sb.execute(command)).stdout


async def test_a_task_on_another_node_uses_a_pickled_handle(full):
    sb = full[2][0]
    other = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != sb.node_id)
    ref = run_in_task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(other, soft=False)).remote(sb, "echo from-task")
    node, out = await asyncio.wrap_future(ref.future())
    assert node == other and out == "from-task\n"


async def test_connect_by_id_from_a_second_driver(cluster, full):
    sb = full[3][0]
    await sb.write_file("/tmp/second", "for the second driver")
    out = driver(
        cluster,
        f"""
        ids = await RaySandbox.list(namespace={NAMESPACE!r})
        assert {sb.id!r} in ids, ids
        sb = await RaySandbox.connect({sb.id!r}, namespace={NAMESPACE!r})
        print(sb.node_id, (await sb.execute("cat /tmp/second")).stdout)
        try:
            await RaySandbox.connect("no-such-sandbox", namespace={NAMESPACE!r})
        except FileNotFoundError as e:
            print("refused:", e)
        """,
    )
    assert out.splitlines()[0] == f"{sb.node_id} for the second driver"
    assert "refused: no sandbox 'no-such-sandbox'" in out


async def test_a_dead_node_takes_only_its_sandboxes(cluster, full):
    driver_node = ray.get_runtime_context().get_node_id()
    victim = next(n for n in cluster.worker_nodes if n.node_id != driver_node)  # not the driver's
    dead_id = victim.node_id
    on_it = [(sb, info) for sb, info in full if sb.node_id == dead_id]
    others = [(sb, info) for sb, info in full if sb.node_id != dead_id]
    assert len(on_it) == UNITS
    cluster.remove_node(victim)
    for sb, _ in on_it:
        with pytest.raises(SandboxNotRunningError, match=f"on Ray node {dead_id} is gone: its node died"):
            await sb.execute("true")
    for sb, _ in others:
        assert (await sb.execute("echo alive")).stdout == "alive\n"
    await eventually(lambda: not any(qemu_alive(info["pid"]) for _, info in on_it))
    assert ray.cluster_resources().get("quicksand") == 2 * UNITS  # the dead node's units are gone with it
    for sb, _ in on_it:
        await sb.stop()  # nothing left to stop: fine


async def test_stop_all_leaves_no_qemu(full):
    await asyncio.gather(*(sb.stop() for sb, _ in full))
    assert not any(qemu_alive(info["pid"]) for _, info in full)
    await eventually(lambda: ray.available_resources().get("quicksand", 0) == 2 * UNITS)
    assert await RaySandbox.list(namespace=NAMESPACE) == []
