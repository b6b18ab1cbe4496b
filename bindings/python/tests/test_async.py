import asyncio
import os
import random
import logging
import time

import pytest

from quicksand import (
    BadRequestError,
    BootError,
    BootTiming,
    GuestFileNotFoundError,
    GuestPermissionError,
    ExecuteResult,
    ImageNotFoundError,
    InvalidConfigError,
    Mount,
    PtySize,
    NetworkMode,
    Sandbox,
    SandboxNotRunningError,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_execute_basics(sb):
    r = await sb.execute("echo hello")
    assert isinstance(r, ExecuteResult)
    assert (r.stdout, r.stderr, r.exit_code, r.timed_out, r.ok) == ("hello\n", "", 0, False, True)
    r = await sb.execute("echo oops >&2; exit 3")
    assert (r.stdout, r.stderr, r.exit_code, r.ok) == ("", "oops\n", 3, False)
    assert (await sb.execute("pwd", cwd="/usr/lib")).stdout == "/usr/lib\n"
    assert (await sb.execute('echo "$A $B"', env={"A": "1", "B": "two"})).stdout == "1 two\n"
    assert (await sb.execute("tr a-z A-Z", stdin="shout")).stdout == "SHOUT"
    assert (await sb.execute("od -An -tx1", stdin=b"\x00\xff")).stdout.split() == ["00", "ff"]
    assert (await sb.execute("echo $0", shell="/bin/bash")).stdout == "/bin/bash\n"
    assert r.duration > 0


async def test_properties(sb):
    assert sb.is_running
    assert sb.accelerator in ("tcg", "kvm")
    assert sb.arch in ("x86_64", "arm64")
    t = sb.boot_timing
    assert isinstance(t, BootTiming) and t.warm and 0 < t.qemu_started < t.agent_listening <= t.ready
    assert "QUICKSAND_AGENT_READY" in sb.console_log()


async def test_streaming_order_and_arrival(sb):
    events = []
    start = time.monotonic()
    r = await sb.execute(
        "printf one; sleep 1; printf two >&2; sleep 1; echo three",
        on_stdout=lambda s: events.append(("out", s, time.monotonic())),
        on_stderr=lambda s: events.append(("err", s, time.monotonic())),
    )
    end = time.monotonic()
    assert [(k, s) for k, s, _ in events] == [("out", "one"), ("err", "two"), ("out", "three\n")]
    assert events[0][2] - start < (end - start) - 1.5, "the first chunk waited for the command to end"
    assert r.stdout == "onethree\n" and r.stderr == "two"


async def test_callbacks_run_on_the_loop_thread(sb):
    import threading

    threads = set()
    await sb.execute("echo a; echo b >&2", on_stdout=lambda s: threads.add(threading.get_ident()),
                     on_stderr=lambda s: threads.add(threading.get_ident()))
    assert threads == {threading.get_ident()}


async def test_unicode_and_binary(sb):
    r = await sb.execute("printf 'h\\303\\251llo \\342\\202'; sleep 0.3; printf '\\254'")
    assert r.stdout == "héllo €"
    chunks = []
    await sb.execute("printf '\\342\\202'; sleep 0.3; printf '\\254!'", on_stdout=chunks.append)
    assert "".join(chunks) == "€!"
    r = await sb.execute("printf 'a\\377\\000b'")
    assert r.stdout_bytes == b"a\xff\x00b"
    assert r.stdout == "a\ufffd\x00b"


async def test_timeout(sb):
    start = time.monotonic()
    r = await sb.execute("echo started; sleep 60", timeout=1)
    assert r.timed_out and r.exit_code == -1 and r.stdout == "started\n"
    assert time.monotonic() - start < 20


async def test_concurrent_executes_are_faster_than_sequential(sb):
    cmd = "sleep 1"
    start = time.monotonic()
    for _ in range(8):
        await sb.execute(cmd)
    sequential = time.monotonic() - start
    start = time.monotonic()
    results = await asyncio.gather(*(sb.execute(f"{cmd}; echo {i}") for i in range(8)))
    concurrent = time.monotonic() - start
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]
    assert concurrent < sequential / 2, f"8 at once took {concurrent:.1f} s, 8 in a row {sequential:.1f} s"


async def test_cancelling_the_task_cancels_the_command(sb):
    task = asyncio.create_task(sb.execute("sleep 37", timeout=120))
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):
        if (await sb.execute("pgrep -f 'slee[p] 37' || true")).stdout == "":
            break
        await asyncio.sleep(0.1)
    assert (await sb.execute("pgrep -f 'slee[p] 37' || true")).stdout == "", "the command still runs"


async def test_callback_that_raises(sb):
    def boom(_):
        raise ValueError("from the callback")

    with pytest.raises(ValueError, match="from the callback"):
        await sb.execute("echo x; sleep 5", on_stdout=boom)
    assert (await sb.execute("echo still fine")).stdout == "still fine\n"


async def test_a_result_that_cannot_be_read_is_an_error_not_a_hang(sb, monkeypatch):
    # The result is read on a library thread; whatever fails there must
    # reach the caller (it was swallowed, and the caller waited for ever).
    def broken(_):
        raise ValueError("unreadable result")

    monkeypatch.setattr(ExecuteResult, "_from_wire", broken)
    with pytest.raises(ValueError, match="unreadable result"):
        await asyncio.wait_for(sb.execute("echo x"), 60)
    monkeypatch.undo()
    assert (await sb.execute("echo still fine")).stdout == "still fine\n"


async def test_result_text_and_bytes():
    r = ExecuteResult(stdout="é", stderr="", exit_code=0)
    assert (r.stdout, r.stdout_bytes, r.ok) == ("é", "é".encode(), True)
    lazy = ExecuteResult(exit_code=1, stdout_bytes=b"a\xffb", stderr_bytes=b"")
    assert (lazy.stdout, lazy.stderr, lazy.ok) == ("a\ufffdb", "", False)
    assert ExecuteResult(stdout="x", exit_code=0) == ExecuteResult(stdout_bytes=b"x", exit_code=0)
    with pytest.raises(AttributeError):
        lazy.exit_code = 0
    assert "a\ufffdb" in repr(lazy)


async def test_bad_requests(sb):
    with pytest.raises(BadRequestError, match="/no/such/dir"):
        await sb.execute("true", cwd="/no/such/dir")
    with pytest.raises(BadRequestError, match="command"):
        await sb.execute("")
    with pytest.raises(BadRequestError, match="no such user"):
        await sb.execute("id", user="no-such-user")


async def test_user_runs_unprivileged(sb):
    r = await sb.execute("id -un; head -c1 /etc/shadow", user="nobody")
    assert r.stdout == "nobody\n" and r.exit_code != 0
    assert (await sb.execute("id -un")).stdout == "root\n"


async def test_errors_before_and_after():
    with pytest.raises(ImageNotFoundError, match="no-such-image"):
        await Sandbox(image="no-such-image").start()
    with pytest.raises(InvalidConfigError, match="memory"):
        await Sandbox(memory="lots").start()
    with pytest.raises(InvalidConfigError, match="cpus"):
        await Sandbox(cpus=1000).start()
    s = Sandbox()
    with pytest.raises(SandboxNotRunningError, match="not started"):
        await s.execute("true")
    assert not s.is_running


async def test_two_sandboxes_and_stop():
    a, b = Sandbox(network_mode=NetworkMode.RESTRICTED), Sandbox()
    await asyncio.gather(a.start(), b.start())
    try:
        await a.execute("echo a > /root/who")
        assert (await b.execute("cat /root/who 2>/dev/null || echo none")).stdout == "none\n"
    finally:
        await asyncio.gather(a.stop(), b.stop())
    assert not a.is_running
    with pytest.raises(SandboxNotRunningError, match="stopped"):
        await a.execute("true")
    await a.stop()  # twice is fine


async def test_checkpoint_revert_save(tmp_path):
    from quicksand import validate_save

    async with Sandbox() as s:
        await s.execute("echo kept > /root/f; (sleep 555 >/dev/null 2>&1 &)")
        await s.checkpoint("t1")
        await s.execute("rm /root/f; pkill -f 'slee[p] 555'")
        await s.revert("t1")
        r = await s.execute("cat /root/f; pgrep -f 'slee[p] 555' >/dev/null && echo running")
        assert r.stdout == "kept\nrunning\n"
        with pytest.raises(BadRequestError, match="nope"):
            await s.revert("nope")
        path = await s.save(str(tmp_path / "saved"))
        assert path == str(tmp_path / "saved")
    validate_save(path)
    async with Sandbox(image=path) as resumed:
        r = await resumed.execute("cat /root/f; pgrep -f 'slee[p] 555' >/dev/null && echo running")
        assert r.stdout == "kept\nrunning\n"
        assert resumed.boot_timing.warm


async def test_full_network_keeps_host_loopback_unless_allowed():
    import http.server
    import threading

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello from the host")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fetch = f"curl -sS -m 3 http://10.0.2.2:{server.server_address[1]}/"
    try:
        async with Sandbox(network_mode="full") as guarded:
            assert (await guarded.execute(fetch)).exit_code != 0
        async with Sandbox(network_mode="full", allow_host_loopback=True) as open_:
            assert (await open_.execute(fetch)).stdout == "hello from the host"
    finally:
        server.shutdown()


async def test_max_output(sb):
    cmd = "head -c 300000 /dev/zero | tr '\\0' a"
    r = await sb.execute(cmd, max_output=1000)
    assert len(r.stdout) == 1000 and r.stdout_truncated and not r.stderr_truncated
    got = []
    r = await sb.execute(cmd, max_output=1000, on_stdout=got.append)
    assert len(r.stdout) == 1000 and r.stdout_truncated and sum(map(len, got)) == 300000
    r = await sb.execute(cmd)
    assert len(r.stdout) == 300000 and not r.stdout_truncated


async def test_engine_log_reaches_the_logging_module(caplog):
    caplog.set_level(logging.INFO, logger="quicksand")
    async with Sandbox() as sb:
        await sb.execute("true")
    told = [r for r in caplog.records if r.name == "quicksand" and "accelerator chosen" in r.getMessage()]
    assert told and told[0].levelno == logging.INFO, [r.getMessage() for r in caplog.records]


async def test_image_dirs_and_qemu_path_reach_the_engine(tmp_path):
    with pytest.raises(ImageNotFoundError, match=str(tmp_path)):
        await Sandbox(image="no-such-image", image_dirs=[str(tmp_path)]).start()
    with pytest.raises(BootError, match="no-such-qemu"):
        await Sandbox(qemu_path=str(tmp_path / "no-such-qemu")).start()


async def test_files(sb, tmp_path):
    for size in (0, 1, 65535, 65536, 65537, 100 << 20):
        data = random.randbytes(size)
        await sb.write_file("/tmp/py-file", data, mode=0o600)
        assert await sb.read_file("/tmp/py-file") == data
    info = await sb.stat("/tmp/py-file")
    assert (info.type, info.size, info.mode) == ("file", 100 << 20, 0o600)
    await sb.write_file("/tmp/py-text", "héllo\n")
    assert (await sb.execute("cat /tmp/py-text")).stdout == "héllo\n"
    await sb.make_dir("/tmp/py-dir/a/b")
    assert [e.name for e in await sb.list_dir("/tmp/py-dir")] == ["a"]
    await sb.rename("/tmp/py-text", "/tmp/py-dir/t")
    assert await sb.exists("/tmp/py-dir/t") and not await sb.exists("/tmp/py-text")
    with pytest.raises(BadRequestError, match="py-dir"):
        await sb.remove("/tmp/py-dir")
    await sb.remove("/tmp/py-dir", recursive=True)
    with pytest.raises(GuestFileNotFoundError, match="/tmp/py-dir"):
        await sb.stat("/tmp/py-dir")
    with pytest.raises(GuestPermissionError):
        await sb.write_file("/root/x", b"x", user="nobody")
    with pytest.raises(BadRequestError, match="not absolute"):
        await sb.read_file("relative")

    tree = tmp_path / "tree"
    (tree / "sub" / "empty").mkdir(parents=True)
    (tree / "sub" / "f").write_bytes(b"\x00\x01data")
    (tree / "link").symlink_to("sub/f")
    await sb.upload(str(tree), "/tmp/py-tree")
    assert (await sb.execute("readlink /tmp/py-tree/link; ls /tmp/py-tree/sub")).stdout == "sub/f\nempty\nf\n"
    await sb.download("/tmp/py-tree", str(tmp_path / "back"))
    assert (tmp_path / "back" / "sub" / "f").read_bytes() == b"\x00\x01data"
    assert (tmp_path / "back" / "sub" / "empty").is_dir()
    await sb.remove("/tmp/py-tree", recursive=True)
    await sb.remove("/tmp/py-file")


async def test_mounts(tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "keep").write_text("read me")
    async with Sandbox(mounts=[Mount(str(rw), "/mnt/rw")]) as s:
        assert [m.guest for m in s.active_mounts] == ["/mnt/rw"]
        r = await s.execute("echo from guest > /mnt/rw/out && cat /mnt/rw/out")
        assert r.stdout == "from guest\n"
        assert (rw / "out").read_text() == "from guest\n"

        h = await s.mount(ro, "/mnt/ro", readonly=True)
        assert (h.guest, h.readonly, h.host) == ("/mnt/ro", True, os.path.realpath(ro))
        r = await s.execute("cat /mnt/ro/keep; touch /mnt/ro/new")
        assert r.stdout == "read me" and r.exit_code != 0
        assert sorted(p.name for p in ro.iterdir()) == ["keep"]
        assert [m.guest for m in s.active_mounts] == ["/mnt/ro", "/mnt/rw"]

        await s.unmount(h)
        assert (await s.execute("cat /mnt/ro/keep")).exit_code != 0
        with pytest.raises(BadRequestError, match="not mounted"):
            await s.unmount(h)
        with pytest.raises(GuestFileNotFoundError, match="/no/such/folder"):
            await s.mount("/no/such/folder", "/mnt/x")
        with pytest.raises(InvalidConfigError, match="absolute"):
            await s.mount(str(rw), "relative")
    assert s.active_mounts == []  # stopped: nothing is mounted any more


async def test_background_processes(sb):
    got = []
    p = await sb.start_process("python3 -i -q", on_stdout=got.append)
    assert p.pid > 1 and p.id
    assert p.id in [i.id for i in await sb.list_processes()]
    await p.write_stdin("print(6*7)\n")
    await p.close_stdin()
    r = await p.wait(timeout=60)
    assert (r.exit_code, r.stdout, "".join(got)) == (0, "42\n", "42\n")
    assert p.id not in [i.id for i in await sb.list_processes()]

    # Another call attaches later and sees the output from the start.
    q = await sb.start_process("echo early; sleep 0.5; echo late")
    seen = []
    again = await sb.attach(q.id, on_stdout=seen.append)
    assert (await again.wait()).stdout == "early\nlate\n"
    assert "".join(seen) == "early\nlate\n"

    t = await sb.start_process("trap 'echo bye; exit 7' TERM; echo up; while :; do sleep 0.1; done")
    w = await sb.attach(t.id, on_stdout=seen.append)
    with pytest.raises(asyncio.TimeoutError):
        await t.wait(timeout=0.5)  # still running: the wait gives up, the process goes on
    await t.signal()
    assert (await w.wait(timeout=30)).exit_code == 7

    shown = []
    term = await sb.start_process("stty size; read x; stty size", pty=PtySize(24, 80), on_stdout=shown.append)
    for _ in range(600):
        if "24 80" in "".join(shown):
            break
        await asyncio.sleep(0.05)
    await term.resize(30, 100)
    await term.write_stdin("\n")
    out = (await term.wait(timeout=30)).stdout
    assert "24 80" in out and "30 100" in out
    with pytest.raises(BadRequestError, match="no terminal"):
        await q.resize(10, 10)
    with pytest.raises(BadRequestError, match="exited"):
        await p.write_stdin("late")
    # An unknown id fails the attach itself, with or without callbacks (it
    # was once only a background task's error, "never retrieved" at exit).
    with pytest.raises(GuestFileNotFoundError, match="p-none"):
        await sb.attach("p-none", on_stdout=print)
    with pytest.raises(GuestFileNotFoundError, match="p-none"):
        await sb.attach("p-none")
    k = await sb.start_process("sleep 100")
    with pytest.raises(BadRequestError, match="out of range"):
        await k.signal(0)
    await k.kill()
    assert (await k.wait()).exit_code == 137


async def test_pool():
    from quicksand import Pool

    async with Pool(size=2) as pool:
        first = await pool.start()  # from the pool, or a normal start while it fills
        await first.stop()
        async with await pool.start() as sb:
            assert (await sb.execute("uname -m")).exit_code == 0
            assert sb.is_running
    with pytest.raises(SandboxNotRunningError):
        await Pool(size=1).start()  # not opened
    missing = Pool(size=1, image="no-such-image")
    async with missing:
        with pytest.raises(ImageNotFoundError):
            await missing.start()  # cannot fill: a normal start, whose error says why
