"""Not a test module (pytest collects test_*.py only): mypy reads it
(`make test-python`) and fails when a class of either API stops showing
its users a method's real types, e.g. a sync method typed as returning a
coroutine, or a signature erased to (*args, **kwargs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from quicksand import (
    CodeContext,
    DisplayOptions,
    Key,
    Execution,
    ExecutionError,
    Result,
    ExecuteResult,
    FileInfo,
    MountHandle,
    NetworkPolicy,
    NetworkStats,
    Pool,
    Process,
    Sandbox,
    SandboxSummary,
    SyncPool,
    SyncProcess,
    SyncSandbox,
)

if TYPE_CHECKING:
    from typing_extensions import assert_type


async def asyncio_api() -> None:
    sb = Sandbox("debian", memory="1G", cpus=2, mounts=[("/h", "/g")])
    assert_type(await sb.start(), Sandbox)
    assert_type(await sb.execute("true", timeout=1.0, on_stdout=print), ExecuteResult)
    assert_type(await sb.read_file("/etc/hostname", max_size=10), bytes)
    assert_type(await sb.list_dir("/"), List[FileInfo])
    assert_type(await sb.mount("/h", "/g", readonly=True), MountHandle)
    await Sandbox(network_policy=NetworkPolicy(allow_out=["pypi.org:443"], hosts={"a.test": ["198.19.0.9"]})).start()
    await sb.set_network(NetworkPolicy(deny_out=["10.0.0.0/8"]))
    await sb.set_network(None)
    assert_type(await sb.network_stats(), NetworkStats)
    p = await sb.start_process("sleep 1", on_stderr=print)
    assert_type(p, Process)
    assert_type(await sb.attach(p.id), Process)
    assert_type(await p.wait(timeout=1), ExecuteResult)
    async with Pool(size=2, image="debian", cold_boot=True) as pool:
        assert_type(await pool.start(), Sandbox)
    remote = await Sandbox(server="unix:/s", api_key="k", metadata={"a": "b"}, idle_timeout=-1).start()
    assert_type(await Sandbox.connect(remote.id, server="unix:/s", api_key="k"), Sandbox)
    assert_type(await Sandbox.list(metadata={"a": "b"}), List[SandboxSummary])
    assert_type(remote.metadata, Dict[str, str])
    await remote.set_idle_timeout(60)
    await remote.upload("/h", "/g", user="nobody")

    async def on_result(r: Result) -> None:
        assert_type(r.formats(), List[str])

    def on_error(e: ExecutionError) -> None:
        assert_type(e.traceback, str)

    ctx = await sb.create_code_context("bash", cwd="/tmp")
    assert_type(ctx, CodeContext)
    ex = await sb.run_code("1", context=ctx, on_stdout=print, on_result=on_result, on_error=on_error, envs={"A": "b"}, timeout=2)
    assert_type(ex, Execution)
    assert_type(ex.text, Optional[str])
    assert_type(ex.logs.stdout, List[str])
    assert_type(await sb.list_code_contexts(), List[CodeContext])
    await sb.restart_code_context(ctx.id)
    await sb.remove_code_context(ctx)

    desk = await Sandbox("debian-desktop", display=DisplayOptions(1024, 768, vnc=True)).start()
    assert_type(await desk.screenshot(), bytes)
    assert_type(await desk.screenshot("/tmp/s.png"), bytes)
    assert_type(await desk.query_display_size(), Tuple[int, int])
    await desk.press_key(Key.CTRL, Key.ALT, "t")
    await desk.type_text("ls\n")
    await desk.mouse_click("right", double=True)
    await desk.drag((1, 2), (3, 4))
    assert_type(await desk.query_mouse_position(), Tuple[int, int])
    assert_type(desk.vnc_port, Optional[int])
    assert_type(desk.vnc_password, Optional[str])
    await Sandbox("debian-desktop", display=(800, 600)).start()
    await Sandbox("debian-desktop", enable_display=True).start()


def sync_api() -> None:
    sb = SyncSandbox("debian", memory="1G", cpus=2, mounts=[("/h", "/g")])
    assert_type(sb.start(), SyncSandbox)
    assert_type(sb.execute("true", timeout=1.0, on_stdout=print), ExecuteResult)
    assert_type(sb.read_file("/etc/hostname", max_size=10), bytes)
    assert_type(sb.list_dir("/"), List[FileInfo])
    assert_type(sb.mount("/h", "/g", readonly=True), MountHandle)
    ex = sb.run_code("x", language="python", on_stderr=print, timeout=None)
    assert_type(ex, Execution)
    assert_type(ex.error, Optional[ExecutionError])
    assert_type(sb.create_code_context(), CodeContext)
    assert_type(sb.list_code_contexts(), List[CodeContext])
    sb.set_network(NetworkPolicy(allow_out=["pypi.org:443"]))
    assert_type(sb.network_stats(), NetworkStats)
    p = sb.start_process("sleep 1", on_stderr=print)
    assert_type(p, SyncProcess)
    assert_type(sb.attach(p.id), SyncProcess)
    assert_type(p.wait(timeout=1), ExecuteResult)
    with SyncPool(size=2, image="debian", cold_boot=True) as pool:
        assert_type(pool.start(), SyncSandbox)
    assert_type(SyncSandbox.connect("sb-1", server="unix:/s"), SyncSandbox)
    assert_type(SyncSandbox.list(metadata={"a": "b"}), List[SandboxSummary])
    sb.set_idle_timeout(60)
    sb.download("/g", "/h", user="nobody", timeout=5)
    desk = SyncSandbox("debian-desktop", display=True)
    assert_type(desk.screenshot(), bytes)
    assert_type(desk.query_display_size(), Tuple[int, int])
    desk.press_key(Key.ENTER)
    desk.mouse_move(10, 10)
    desk.scroll(dy=-3)


def mistakes() -> None:
    # Each must be an error: strict mypy fails on an ignore that is not needed.
    sb = SyncSandbox()
    sb.execute("true", timout=1)  # type: ignore[call-arg]
    sb.write_file(b"/x", b"")  # type: ignore[arg-type]
    SyncSandbox(memroy="1G")  # type: ignore[call-arg]
    SyncSandbox(display="yes")  # type: ignore[arg-type]
    sb.press_key(1)  # type: ignore[arg-type]
    sb.drag(1, 2)  # type: ignore[arg-type]
    SyncPool(4, "debian", cpus="2")  # type: ignore[arg-type]
