"""Sandboxes across a Ray cluster (``pip install quicksand-go[ray]``).

Each sandbox lives in a Ray actor of its own, placed by Ray on a node that
has a free unit of the ``quicksand`` custom resource (``ray start
--resources='{"quicksand": N}'``; ``units_for_memory`` computes N). The
actor holds a local ``Sandbox``: the library on that node boots the VM
there, and the VM dies with the actor's process (the library starts QEMU
with a parent-death signal). ``RaySandbox`` is a handle to that actor:
picklable, so a Ray task or actor on any node drives a sandbox it did not
start, with the async API of ``Sandbox``::

    sb = await RaySandbox.start(image="debian", memory="512M")
    r = await sb.execute("uname -a", on_stdout=print)
    await sb.stop()

Output reaches ``on_stdout``/``on_stderr`` through a Ray streaming
generator: the actor yields each chunk as the library hands it over, so the
callbacks run in the caller's process in the order the output was produced,
without polling. Host paths (``upload``, ``download``, ``mount``, ``save``)
are the sandbox's node's. A node that dies takes only its own sandboxes:
calls on them raise SandboxNotRunningError naming the node.

This module schedules nothing itself: Ray places each actor by resource,
and Ray's named actors (in ``namespace``) give ``connect`` and ``list``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import re
import uuid
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Coroutine, Dict, Iterator, List, Mapping, Optional, Tuple, TypeVar, Union

import ray
from ray.exceptions import RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ._processes import Process
from ._wire import SandboxOptions, takes_options
from .errors import GuestFileNotFoundError, ResourceError, SandboxNotRunningError
from .sandbox import Sandbox
from .types import ExecuteResult, PtySize

if TYPE_CHECKING:
    from typing_extensions import Concatenate, ParamSpec, Unpack

    P = ParamSpec("P")

R = TypeVar("R")
Callback = Optional[Callable[[str], Any]]

RESOURCE = "quicksand"
"""The Ray custom resource a sandbox takes one unit of."""
NAMESPACE = "quicksand"
"""The Ray namespace sandboxes are named in unless told otherwise."""

# --- the actor, on the sandbox's node --------------------------------------------


class _SandboxActor:
    """Holds one local Sandbox (an async actor: many calls run at once)."""

    def __init__(self) -> None:
        self._sb: Optional[Sandbox] = None
        self._processes: Dict[str, Process] = {}

    def where(self) -> Tuple[str, int]:
        """The node and process the actor runs in (answers once placed)."""
        return ray.get_runtime_context().get_node_id(), os.getpid()

    async def start(self, image: str, options: SandboxOptions) -> None:
        self._sb = await Sandbox(image, **options).start()

    def _require(self) -> Sandbox:
        if self._sb is None:
            raise SandboxNotRunningError("the sandbox is not started")
        return self._sb

    async def info(self) -> Dict[str, Any]:
        sb = self._require()
        node_id, worker_pid = self.where()
        return {"node_id": node_id, "worker_pid": worker_pid, "pid": sb.pid, "sandbox_id": sb.id, "accelerator": sb.accelerator}

    async def call(self, name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        return await getattr(self._require(), name)(*args, **kwargs)

    async def stream(self, name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> AsyncIterator[Tuple[str, Any]]:
        """Runs the sandbox's ``name`` (execute) or a process's ``wait``
        (name "process:ID") with output callbacks, and yields ("stdout",
        text) and ("stderr", text) as the output comes, then ("result", its
        result). Cancelling the stream cancels the call."""
        queue: "asyncio.Queue[Optional[Tuple[str, str]]]" = asyncio.Queue()
        callbacks: Dict[str, Callback] = {
            "on_stdout": lambda text: queue.put_nowait(("stdout", text)),
            "on_stderr": lambda text: queue.put_nowait(("stderr", text)),
        }
        if name.startswith("process:"):
            call = self._follow_process(name[len("process:"):], callbacks)
        else:
            call = getattr(self._require(), name)(*args, **kwargs, **callbacks)
        task = asyncio.ensure_future(call)
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                yield item
            yield ("result", task.result())
        finally:
            task.cancel()

    async def _follow_process(self, process_id: str, callbacks: Dict[str, Callback]) -> ExecuteResult:
        process = await self._require().attach(process_id, **callbacks)
        return await process.wait()

    async def start_process(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[str, int]:
        process = await self._require().start_process(*args, **kwargs)
        self._processes[process.id] = process
        return process.id, process.pid

    async def attach(self, process_id: str) -> None:
        """Follows a process another call started (GuestFileNotFoundError if none)."""
        self._processes[process_id] = await self._require().attach(process_id)

    async def process_call(self, process_id: str, name: str, args: Tuple[Any, ...]) -> Any:
        process = self._processes.get(process_id) or await self._require().attach(process_id)
        self._processes[process_id] = process
        result = await getattr(process, name)(*args)
        if name == "wait":
            self._processes.pop(process_id, None)
        return result


_Actor = ray.remote(_SandboxActor)

# --- the handle, anywhere in the cluster ---------------------------------------------


def _forward(method: "Callable[Concatenate[Sandbox, P], Coroutine[Any, Any, R]]") -> "Callable[Concatenate[RaySandbox, P], Coroutine[Any, Any, R]]":
    """Sandbox's method, run by the actor: the same signature, checks and
    errors (the actor's Sandbox makes them)."""
    name = method.__name__

    async def call(self: RaySandbox, /, *args: "P.args", **kwargs: "P.kwargs") -> R:
        result: R = await self._call("call", name, args, kwargs)
        return result

    functools.update_wrapper(call, method)
    return call


def _streamed(method: "Callable[Concatenate[Sandbox, P], Coroutine[Any, Any, R]]") -> "Callable[Concatenate[RaySandbox, P], Coroutine[Any, Any, R]]":
    """A method with on_stdout/on_stderr (execute): with callbacks, its
    output is streamed from the actor to them; without, one call."""
    name, sig = method.__name__, inspect.signature(method)

    async def call(self: RaySandbox, /, *args: "P.args", **kwargs: "P.kwargs") -> R:
        bound = sig.bind(None, *args, **kwargs).arguments
        bound.pop("self")
        on_stdout, on_stderr = bound.pop("on_stdout", None), bound.pop("on_stderr", None)
        if on_stdout is None and on_stderr is None:
            result: R = await self._call("call", name, (), bound)
        else:
            result = await self._stream(name, bound, on_stdout, on_stderr)
        return result

    functools.update_wrapper(call, method)
    return call


class _ActorGone(SandboxNotRunningError):
    """The sandbox's actor is dead (stopped, or its node died)."""


class RaySandbox:
    """A sandbox in a Ray actor on some node of the cluster: the async API
    of ``Sandbox`` (``execute`` with callbacks, files, processes,
    checkpoint/revert/save, stop), plus ``id`` (its actor's name, what
    ``connect`` takes) and ``node_id`` (the Ray node it runs on). Handles
    pickle: pass them to Ray tasks and actors."""

    def __init__(self, actor: Any, id: str, namespace: str, node_id: str) -> None:
        self._actor = actor
        self.id = id
        """The actor's name in ``namespace``: ``RaySandbox.connect`` takes it."""
        self.namespace = namespace
        self.node_id = node_id
        """The Ray node (hex id) the sandbox runs on."""
        self._stopped = False

    def __repr__(self) -> str:
        return f"RaySandbox(id={self.id!r}, node_id={self.node_id!r})"

    @classmethod
    @takes_options
    async def start(
        cls,
        image: str = "debian",
        *,
        detached: bool = False,
        name: Optional[str] = None,
        namespace: str = NAMESPACE,
        timeout: Optional[float] = 60.0,
        node_id: Optional[str] = None,
        **options: "Unpack[SandboxOptions]",
    ) -> "RaySandbox":
        """Places an actor taking one ``quicksand`` unit (and no CPU) on a
        node that has one free, and starts a ``Sandbox(image, **options)``
        there. With no free unit it waits up to ``timeout`` seconds (None:
        for ever) for one, then raises ResourceError; the boot itself is
        bounded by the ``boot_timeout`` option. ``name`` (default: a random
        one) names the actor in ``namespace``. The actor belongs to the
        process that starts it and dies with it unless ``detached``; a
        detached sandbox runs until ``stop()``, whoever calls it.
        ``node_id`` puts it on that node only (it waits for a unit there)."""
        Sandbox(image, **options)  # checks the options here, before Ray places anything
        actor_name = name or uuid.uuid4().hex
        actor = _Actor.options(
            name=actor_name,
            namespace=namespace,
            lifetime="detached" if detached else None,
            num_cpus=0,
            resources={RESOURCE: 1},
            max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False) if node_id else None,
        ).remote()
        try:
            placed, _ = await asyncio.wait_for(asyncio.wrap_future(actor.where.remote().future()), timeout)
            sb = cls(actor, actor_name, namespace, placed)
            await sb._call("start", image, dict(options))
        except asyncio.TimeoutError:
            ray.kill(actor)
            raise ResourceError(_no_room(timeout)) from None
        except BaseException:
            ray.kill(actor)
            raise
        return sb

    @classmethod
    async def connect(cls, id: str, namespace: str = NAMESPACE) -> "RaySandbox":
        """The sandbox ``id`` (``sb.id``, or ``list``'s) of this cluster,
        from any driver, task or actor; an unknown id raises
        GuestFileNotFoundError."""
        try:
            actor = ray.get_actor(id, namespace=namespace)
        except ValueError:
            raise GuestFileNotFoundError(f"no sandbox {id!r} in Ray namespace {namespace!r}") from None
        sb = cls(actor, id, namespace, "")
        sb.node_id = (await sb.info())["node_id"]
        return sb

    @staticmethod
    async def list(namespace: str = NAMESPACE) -> List[str]:
        """The ids of the sandboxes (named actors) in ``namespace``."""
        named = await asyncio.get_running_loop().run_in_executor(None, functools.partial(ray.util.list_named_actors, all_namespaces=True))
        return sorted(a["name"] for a in named if a["namespace"] == namespace)

    async def info(self) -> Dict[str, Any]:
        """Where it runs: ``node_id``, the actor's process (``worker_pid``),
        QEMU's (``pid``), the library's ``sandbox_id`` and ``accelerator``."""
        found: Dict[str, Any] = await self._call("info")
        return found

    async def stop(self) -> None:
        """Stops the VM and ends its actor, and returns once Ray has seen it
        end: its ``quicksand`` unit is free and ``list`` no longer shows it.
        A sandbox already gone (its node died) is fine."""
        if self._stopped:
            return
        try:
            await self._call("call", "stop", (), {})
        except _ActorGone:
            # Dead already (stopped elsewhere, or its node died): nothing to
            # stop or free. No ray.kill: on a handle whose actor Ray is just
            # now declaring dead it can abort this process (Ray 2.40's
            # CoreWorker::KillActor: "Cannot find an actor handle").
            self._stopped = True
            return
        except SandboxNotRunningError:
            pass  # the VM had died: ending the actor ends the rest
        self._stopped = True
        ray.kill(self._actor, no_restart=True)
        # ray.kill only asks: a call raises RayActorError once Ray marked the actor dead.
        with contextlib.suppress(Exception):  # RayActorError, a refused submit, or 30 s gone by
            await asyncio.wait_for(self._until_dead(), 30)

    async def _until_dead(self) -> None:
        while True:
            await asyncio.wrap_future(self._actor.where.remote().future())
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> "RaySandbox":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    checkpoint = _forward(Sandbox.checkpoint)
    revert = _forward(Sandbox.revert)
    save = _forward(Sandbox.save)
    execute = _streamed(Sandbox.execute)
    write_file = _forward(Sandbox.write_file)
    read_file = _forward(Sandbox.read_file)
    upload = _forward(Sandbox.upload)
    download = _forward(Sandbox.download)
    list_dir = _forward(Sandbox.list_dir)
    stat = _forward(Sandbox.stat)
    exists = _forward(Sandbox.exists)
    make_dir = _forward(Sandbox.make_dir)
    remove = _forward(Sandbox.remove)
    rename = _forward(Sandbox.rename)
    list_processes = _forward(Sandbox.list_processes)
    mount = _forward(Sandbox.mount)
    unmount = _forward(Sandbox.unmount)

    async def start_process(
        self,
        command: str,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        shell: Optional[str] = None,
        on_stdout: Callback = None,
        on_stderr: Callback = None,
        pty: Optional[PtySize] = None,
        user: Optional[str] = None,
    ) -> "RayProcess":
        """``Sandbox.start_process``, in the actor; the callbacks get the
        output streamed from there, from the start."""
        process_id, pid = await self._call(
            "start_process", (command,), {"cwd": cwd, "env": env, "shell": shell, "pty": pty, "user": user}
        )
        return RayProcess(self, process_id, pid, on_stdout, on_stderr)

    async def attach(self, process_id: str, on_stdout: Callback = None, on_stderr: Callback = None) -> "RayProcess":
        """``Sandbox.attach``: a handle to a process another call started."""
        await self._call("attach", process_id)
        return RayProcess(self, process_id, 0, on_stdout, on_stderr)

    # --- how calls reach the actor ---

    async def _call(self, method: str, *args: Any) -> Any:
        """The actor's ``method``, its errors translated (``_translated``)."""
        with self._translated():
            return await asyncio.wrap_future(getattr(self._actor, method).remote(*args).future())

    async def _stream(self, name: str, kwargs: Dict[str, Any], on_stdout: Callback, on_stderr: Callback) -> Any:
        """Runs the actor's ``stream`` and hands each chunk to its callback
        here; a callback that raises cancels the call, which raises that."""
        gen = None
        try:
            with self._translated():
                gen = self._actor.stream.options(num_returns="streaming").remote(name, (), kwargs)
                async for ref in gen:
                    kind, value = await ref
                    if kind == "result":
                        return value
                    callback = on_stdout if kind == "stdout" else on_stderr
                    if callback is not None:
                        callback(value)
        except BaseException:
            if gen is not None:
                with contextlib.suppress(Exception):
                    ray.cancel(gen)
            raise
        raise SandboxNotRunningError(f"sandbox {self.id} on Ray node {self.node_id}: the call's stream ended without its result")

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """The library's own errors as they were raised in the actor; a dead
        actor (its node gone, or stopped) as SandboxNotRunningError naming
        the node."""
        if self._stopped:
            raise SandboxNotRunningError(f"sandbox {self.id} on Ray node {self.node_id}: stopped")
        try:
            yield
        except RayTaskError as e:
            if isinstance(e.cause, Exception) and not isinstance(e.cause, RayActorError):
                raise e.cause from None
            raise
        except RayActorError as e:
            raise _ActorGone(self._gone(e)) from None
        except Exception as e:
            # A call submitted after Ray dropped a dead actor's handle.
            if "Failed to submit task to actor" not in str(e):
                raise
            raise _ActorGone(self._gone(e)) from None

    def _gone(self, e: Exception) -> str:
        alive = any(n["NodeID"] == self.node_id and n["Alive"] for n in ray.nodes())
        why = "its actor died" if alive else "its node died"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"sandbox {self.id} on Ray node {self.node_id or '(unknown)'} is gone: {why} ({first})"


class RayProcess:
    """A background process of a RaySandbox (``start_process``, ``attach``):
    the methods of ``Process``, run by the sandbox's actor."""

    def __init__(self, sb: RaySandbox, id: str, pid: int, on_stdout: Callback = None, on_stderr: Callback = None) -> None:
        self.id, self.pid, self._sb = id, pid, sb
        self._followed: "Optional[asyncio.Task[ExecuteResult]]" = None
        if on_stdout is not None or on_stderr is not None:
            self._followed = asyncio.ensure_future(sb._stream("process:" + id, {}, on_stdout, on_stderr))

    def __repr__(self) -> str:
        return f"RayProcess(id={self.id!r}, pid={self.pid})"

    async def _op(self, name: str, *args: Any) -> Any:
        return await self._sb._call("process_call", self.id, name, args)

    async def write_stdin(self, data: Union[str, bytes]) -> None:
        """Sends data (str as UTF-8) to stdin."""
        await self._op("write_stdin", data)

    async def close_stdin(self) -> None:
        """Closes stdin (on a terminal: sends ^D)."""
        await self._op("close_stdin")

    async def signal(self, sig: int = 15) -> None:
        """Sends ``sig`` to the process's whole process group."""
        await self._op("signal", sig)

    async def kill(self) -> None:
        """Sends SIGKILL to the process group."""
        await self._op("kill")

    async def resize(self, rows: int, cols: int) -> None:
        """Resizes its terminal (``pty`` processes)."""
        await self._op("resize", rows, cols)

    async def wait(self, timeout: Optional[float] = None) -> ExecuteResult:
        """How it ended (output included when it had callbacks)."""
        if self._followed is not None:
            return await asyncio.wait_for(asyncio.shield(self._followed), timeout)
        result: ExecuteResult = await self._op("wait", timeout)
        return result


class RayPool:
    """Sandboxes started ahead on every node of the cluster that advertises
    ``quicksand`` units, ``size_per_node`` on each, for starts in
    milliseconds::

        async with RayPool(size_per_node=2, image="debian", memory="512M") as pool:
            sb = await pool.start()          # a ready RaySandbox, on this node if it has one
            await sb.execute("uname -a")

    The pool lives in the process that opened it (a driver, or an actor of
    yours); the sandboxes it hands out are RaySandboxes like any other. A
    waiting sandbox holds its unit. ``start`` takes one from the node asked
    for (default: the caller's), else from any node, else starts one
    normally; the node it came from is refilled in the background. Closing
    stops those still waiting, not those taken."""

    @takes_options
    def __init__(self, size_per_node: int = 2, image: str = "debian", *, namespace: str = NAMESPACE, **options: "Unpack[SandboxOptions]") -> None:
        Sandbox(image, **options)  # checks the options
        self.size_per_node, self._image, self._namespace, self._options = size_per_node, image, namespace, options
        self._ready: Dict[str, List[RaySandbox]] = {}
        self._filling: "set[asyncio.Task[None]]" = set()
        self._closed = False

    async def open(self) -> "RayPool":
        """Fills every node that has ``quicksand`` units, and returns once full."""
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get(RESOURCE, 0) > 0]
        await asyncio.gather(*(self._fill(node) for node in nodes for _ in range(self.size_per_node)))
        return self

    async def _fill(self, node_id: str) -> None:
        sb = await RaySandbox.start(self._image, namespace=self._namespace, node_id=node_id, timeout=None, **self._options)
        if self._closed:
            await sb.stop()
        else:
            self._ready.setdefault(node_id, []).append(sb)

    def _refill(self, node_id: str) -> None:
        task = asyncio.ensure_future(self._fill(node_id))
        self._filling.add(task)
        task.add_done_callback(self._filling.discard)

    async def start(self, node_id: Optional[str] = None) -> RaySandbox:
        """A started sandbox: a waiting one of ``node_id`` (default: this
        process's node), else of any node, else one started now."""
        here = node_id or ray.get_runtime_context().get_node_id()
        for node in [here, *self._ready]:
            if self._ready.get(node):
                sb = self._ready[node].pop(0)
                self._refill(node)
                return sb
        return await RaySandbox.start(self._image, namespace=self._namespace, **self._options)

    async def close(self) -> None:
        """Stops the sandboxes still waiting (and those being started)."""
        self._closed = True
        for task in list(self._filling):
            with contextlib.suppress(Exception):
                await task
        waiting = [sb for node in self._ready.values() for sb in node]
        self._ready.clear()
        await asyncio.gather(*(sb.stop() for sb in waiting))

    async def __aenter__(self) -> "RayPool":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _no_room(timeout: Optional[float]) -> str:
    total = ray.cluster_resources().get(RESOURCE, 0)
    free = ray.available_resources().get(RESOURCE, 0)
    return (
        f"no Ray node had a free {RESOURCE!r} unit within {timeout} s ({total:g} in the cluster, {free:g} free): "
        f"stop sandboxes, add nodes or units (ray start --resources='{{\"{RESOURCE}\": N}}'), or wait longer (timeout=)"
    )


# --- capacity ----------------------------------------------------------------


def _mib(size: Union[str, int]) -> int:
    """MiB of "512M", "2G", "1T" or a number of MiB (the memory option's convention)."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", size, re.IGNORECASE)
    if m is None:
        raise ValueError(f"size {size!r}: want a number of MiB or a string like 512M or 2G")
    n, unit = int(m.group(1)), m.group(2).upper()
    return {"K": n // 1024, "": n, "M": n, "G": n * 1024, "T": n * 1024 * 1024}[unit]


def _host_mib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise ValueError("no MemTotal in /proc/meminfo")


def units_for_memory(
    sandbox_memory: Union[str, int] = "512M",
    total: Union[str, int, None] = None,
    reserve: Union[str, int] = "2G",
    overhead: Union[str, int] = "200M",
) -> int:
    """How many ``quicksand`` units a node advertises: sandboxes of
    ``sandbox_memory`` its RAM holds, ``(total - reserve) // (sandbox_memory
    + overhead)``. ``total`` defaults to this host's RAM (/proc/meminfo);
    ``reserve`` is kept for the host and Ray's own processes; ``overhead``
    is what a sandbox costs beyond its guest RAM: QEMU itself and its Ray
    actor's process (about 100 MiB each here: bench_ray.py measures it).
    Sizes are "512M"/"2G" strings or MiB. Guest RAM is counted whole,
    though a guest touches it lazily: a node so sized never swaps.
    ::

        ray start --resources="{\"quicksand\": $(python -c 'from quicksand.ray import units_for_memory; print(units_for_memory("512M"))')}"
    """
    host = _host_mib() if total is None else _mib(total)
    return max(0, (host - _mib(reserve)) // (_mib(sandbox_memory) + _mib(overhead)))
