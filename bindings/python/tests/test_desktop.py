"""The desktop (a sandbox started with a display) on real VMs: a
debian-desktop sandbox driven from the host through both APIs, and the
errors of a sandbox without one."""

import asyncio
import struct
import time

import pytest
import pytest_asyncio

from quicksand import BadRequestError, DisplayOptions, InvalidConfigError, Key, Sandbox, SyncSandbox

DESKTOP = dict(image="debian-desktop", memory=1536)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

aio = pytest.mark.asyncio(loop_scope="session")


def png_size(png):
    """(width, height) from a PNG's IHDR chunk."""
    assert png[:8] == PNG_SIGNATURE, png[:16]
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dsb():
    async with Sandbox(**DESKTOP, display=True) as s:
        yield s


# --- asyncio ---------------------------------------------------------------------


@aio
async def test_a_screenshot_is_a_png_of_the_screen(dsb, tmp_path):
    png = await dsb.screenshot()
    assert png_size(png) == (1280, 800)
    path = tmp_path / "screen.png"
    saved = await dsb.screenshot(path)
    assert png_size(saved) == (1280, 800) and path.read_bytes() == saved
    assert await dsb.query_display_size() == (1280, 800)


@aio
async def test_typing_into_a_terminal_opened_by_keyboard(dsb):
    await dsb.press_key(Key.CTRL, Key.ALT, "t")
    deadline = time.monotonic() + 120
    while True:  # a focused xterm
        r = await dsb.execute("DISPLAY=:0 xprop -root _NET_ACTIVE_WINDOW | grep -q 'window id # 0x[1-9a-f]' && pgrep -x xterm")
        if r.exit_code == 0:
            break
        assert time.monotonic() < deadline, "no xterm window within 2 minutes"
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # its shell's prompt
    await dsb.type_text("echo hello > /tmp/typed\n")
    deadline = time.monotonic() + 60
    while (await dsb.execute("cat /tmp/typed")).stdout != "hello\n":
        assert time.monotonic() < deadline, "/tmp/typed never said hello"
        await asyncio.sleep(0.5)


@aio
async def test_the_pointer_goes_where_it_is_sent(dsb):
    await dsb.mouse_move(640, 400)
    assert await dsb.query_mouse_position() == (640, 400)
    await dsb.drag((100, 100), (200, 150))
    assert await dsb.query_mouse_position() == (200, 150)
    await dsb.scroll(dy=2)
    await dsb.scroll(dx=-1, dy=-2)
    await dsb.mouse_click("right")
    await dsb.press_key(Key.ESCAPE)
    await dsb.mouse_down()
    await dsb.mouse_up()
    await dsb.mouse_click(double=True)


@aio
async def test_what_the_desktop_cannot_do_is_a_bad_request(dsb):
    with pytest.raises(BadRequestError, match=r"off the 1280x800 screen"):
        await dsb.mouse_move(1280, 0)
    with pytest.raises(BadRequestError, match=r"U\+00E9"):
        await dsb.type_text("café")
    with pytest.raises(BadRequestError, match="Hyper_Q"):
        await dsb.press_key(Key.CTRL, "Hyper_Q")
    with pytest.raises(BadRequestError, match="fourth"):
        await dsb.mouse_click("fourth")
    with pytest.raises(BadRequestError, match="NUL"):
        await dsb.type_text("a\0b")
    assert dsb.vnc_port is None and dsb.vnc_password is None  # no vnc asked for


@aio
async def test_without_a_display_each_call_says_so(sb):
    for call in (
        sb.screenshot(), sb.query_display_size(), sb.type_text("x"), sb.press_key(Key.ENTER), sb.mouse_move(1, 1),
        sb.mouse_click(), sb.mouse_down(), sb.mouse_up(), sb.scroll(dy=1), sb.drag((1, 1), (2, 2)),
    ):
        with pytest.raises(BadRequestError, match="no display"):
            await call
    assert await sb.query_mouse_position() == (0, 0)
    assert sb.vnc_port is None and sb.vnc_password is None


@aio
async def test_a_display_needs_an_image_with_a_desktop():
    with pytest.raises(InvalidConfigError, match="no desktop"):
        await Sandbox("debian", display=DisplayOptions(800, 600)).start()
    with pytest.raises(InvalidConfigError, match="out of range"):
        await Sandbox(**DESKTOP, display=(100, 100)).start()


# --- the synchronous API, with Quicksand's option name -----------------------------


def test_sync_screenshot_with_quicksands_option(tmp_path):
    with SyncSandbox(**DESKTOP, enable_display=True) as s:
        path = tmp_path / "s.png"
        png = s.screenshot(str(path))
        assert png_size(png) == (1280, 800) and path.read_bytes() == png
        assert s.query_display_size() == (1280, 800)
        s.mouse_move(10, 20)
        assert s.query_mouse_position() == (10, 20)
        with pytest.raises(BadRequestError, match="Hyper_Q"):
            s.press_key("Hyper_Q")
