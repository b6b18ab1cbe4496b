"""The code interpreter (run_code and code contexts) on real VMs: a
debian-python sandbox, whose warm start has its default Python kernel
running, through both APIs."""

import asyncio
import base64

import pytest
import pytest_asyncio

from quicksand import (
    BadRequestError,
    CodeContext,
    Execution,
    ExecutionError,
    GuestFileNotFoundError,
    Result,
    Sandbox,
    SyncSandbox,
)

PYTHON = dict(image="debian-python", memory=1024)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def psb():
    async with Sandbox(**PYTHON) as s:
        yield s


@pytest.fixture(scope="module")
def spsb():
    with SyncSandbox(**PYTHON) as s:
        yield s


# --- asyncio ---------------------------------------------------------------------

aio = pytest.mark.asyncio(loop_scope="session")


@aio
async def test_state_carries_from_run_to_run(psb):
    first = await psb.run_code("x = 41")
    ex = await psb.run_code("x + 1")
    assert isinstance(ex, Execution) and ex.error is None
    assert ex.text == "42" and len(ex.results) == 1 and ex.results[0].is_main_result
    assert ex.results[0].formats() == ["text"] and str(ex.results[0]) == "42"
    assert ex.execution_count == first.execution_count + 1


@aio
async def test_output_callbacks_in_order_sync_and_async(psb):
    seen = []

    async def on_stderr(text):
        await asyncio.sleep(0.05)  # an async callback is awaited before the next event
        seen.append("err:" + text)

    ex = await psb.run_code(
        "import sys\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\nprint('three', flush=True)",
        on_stdout=lambda t: seen.append("out:" + t),
        on_stderr=on_stderr,
    )
    assert "".join(seen) == "out:one\nerr:two\nout:three\n"
    assert "".join(ex.logs.stdout) == "one\nthree\n" and "".join(ex.logs.stderr) == "two\n"


@aio
async def test_an_exception_is_the_executions_error(psb):
    errors, results = [], []
    ex = await psb.run_code("def f():\n    return 1 / 0\nf()", on_error=errors.append, on_result=results.append)
    assert isinstance(ex.error, ExecutionError)
    assert ex.error.name == "ZeroDivisionError" and "division by zero" in ex.error.value
    assert "return 1 / 0" in ex.error.traceback
    assert errors == [ex.error] and results == [] and ex.text is None


@aio
async def test_a_chart_is_a_png(psb):
    results = []
    ex = await psb.run_code(
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()", on_result=results.append
    )
    pngs = [r for r in ex.results if r.png]
    assert pngs, f"no PNG among {ex.results} (error {ex.error})"
    assert base64.b64decode(pngs[0].png).startswith(PNG_SIGNATURE)
    assert "png" in pngs[0].formats() and results == ex.results


@aio
async def test_a_dataframe_is_html(psb):
    ex = await psb.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
    assert ex.error is None and ex.results
    r = ex.results[0]
    assert isinstance(r, Result) and "<table" in (r.html or "") and r.text
    assert {"html", "text"} <= set(r.formats())


@aio
async def test_envs_are_for_one_run(psb):
    ex = await psb.run_code("import os\nos.environ.get('QS_GREETING')", envs={"QS_GREETING": "hi"})
    assert ex.text == "'hi'"
    assert (await psb.run_code("os.environ.get('QS_GREETING')")).text is None


@aio
async def test_a_timeout_interrupts_and_keeps_the_state(psb):
    await psb.run_code("kept = 41")
    ex = await psb.run_code("while True:\n    pass", timeout=2)
    assert ex.error is not None and ex.error.name == "TimeoutError"
    assert (await psb.run_code("kept")).text == "41"


@aio
async def test_a_callback_that_raises_ends_the_call(psb):
    def boom(text):
        raise ValueError("stop here")

    with pytest.raises(ValueError, match="stop here"):
        await psb.run_code("import time\nprint('a', flush=True)\ntime.sleep(60)", on_stdout=boom)
    assert (await psb.run_code("1 + 1")).text == "2"  # the context goes on


@aio
async def test_contexts_do_not_share(psb):
    await psb.run_code("shared = 1")
    ctx = await psb.create_code_context()
    try:
        assert isinstance(ctx, CodeContext) and ctx.language == "python" and ctx.id
        ex = await psb.run_code("shared", context=ctx)
        assert ex.error is not None and ex.error.name == "NameError"
        await psb.run_code("mine = 2", context=ctx.id)
        assert (await psb.run_code("mine", context=ctx)).text == "2"
        assert ctx.id in [c.id for c in await psb.list_code_contexts()]
        await psb.restart_code_context(ctx)
        ex = await psb.run_code("mine", context=ctx)
        assert ex.error is not None and ex.error.name == "NameError"
    finally:
        await psb.remove_code_context(ctx)
    assert ctx.id not in [c.id for c in await psb.list_code_contexts()]
    with pytest.raises(GuestFileNotFoundError):
        await psb.run_code("1", context=ctx)


@aio
async def test_a_bash_context_keeps_its_folder(psb):
    ctx = await psb.create_code_context(language="bash", cwd="/tmp")
    try:
        assert ctx.language == "bash" and ctx.cwd == "/tmp"
        assert "".join((await psb.run_code("pwd", context=ctx)).logs.stdout) == "/tmp\n"
        await psb.run_code("cd /var && N=7", context=ctx)
        assert "".join((await psb.run_code('echo "$PWD $N"', context=ctx)).logs.stdout) == "/var 7\n"
    finally:
        await psb.remove_code_context(ctx.id)


@aio
async def test_bad_requests(psb):
    with pytest.raises(BadRequestError, match="cobol"):
        await psb.run_code("1", language="cobol")
    with pytest.raises(GuestFileNotFoundError):
        await psb.run_code("1", context="nope")
    with pytest.raises(GuestFileNotFoundError):
        await psb.remove_code_context("nope")


# --- the synchronous API ---------------------------------------------------------


def test_sync_state_and_callbacks(spsb):
    spsb.run_code("y = 41")
    seen = []

    async def on_result(r):
        await asyncio.sleep(0)
        seen.append(r.text)

    ex = spsb.run_code("print('out', flush=True)\ny + 1", on_stdout=seen.append, on_result=on_result)
    assert ex.text == "42" and seen == ["out\n", "42"]


def test_sync_exception_and_timeout(spsb):
    ex = spsb.run_code("1 / 0")
    assert ex.error is not None and ex.error.name == "ZeroDivisionError"
    spsb.run_code("z = 5")
    ex = spsb.run_code("while True:\n    pass", timeout=2)
    assert ex.error is not None and ex.error.name == "TimeoutError"
    assert spsb.run_code("z").text == "5"


def test_sync_callback_that_raises(spsb):
    def boom(text):
        raise KeyError("no")

    with pytest.raises(KeyError):
        spsb.run_code("print('x', flush=True)\nimport time\ntime.sleep(60)", on_stdout=boom)


def test_sync_bash_context(spsb):
    ctx = spsb.create_code_context("bash", cwd="/tmp")
    try:
        assert "".join(spsb.run_code("pwd; cd /etc", context=ctx).logs.stdout) == "/tmp\n"
        assert "".join(spsb.run_code("pwd", context=ctx).logs.stdout) == "/etc\n"
        assert ctx.id in [c.id for c in spsb.list_code_contexts()]
    finally:
        spsb.remove_code_context(ctx)
