"""The two APIs hold together (no VM): each method of Sandbox, Process and
Pool has a twin of the same name and parameters in SyncSandbox,
SyncProcess and SyncPool, a coroutine on one side and a plain method on
the other, documented; and the options are one declaration."""

import inspect

import msgpack
import pytest

from quicksand import DisplayOptions, Key, NetworkPolicy, Pool, Process, Sandbox, SyncPool, SyncProcess, SyncSandbox, _wire

PAIRS = [(Sandbox, SyncSandbox), (Process, SyncProcess), (Pool, SyncPool)]
CONTEXT = {"__aenter__", "__aexit__", "__enter__", "__exit__"}


def public(cls):
    return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n)) and not isinstance(
        inspect.getattr_static(cls, n), (property, classmethod, staticmethod))} - {"attached"}


@pytest.mark.parametrize("async_cls,sync_cls", PAIRS, ids=lambda c: c.__name__)
def test_both_apis_have_the_same_methods_and_parameters(async_cls, sync_cls):
    assert public(async_cls) == public(sync_cls)
    assert len(public(async_cls)) >= 3
    for name in public(async_cls):
        a, s = getattr(async_cls, name), getattr(sync_cls, name)
        assert inspect.signature(a) == inspect.signature(s), name
        if a is s:
            continue  # one method of their shared base (console_log: no waiting)
        assert inspect.iscoroutinefunction(a), f"{async_cls.__name__}.{name} is not a coroutine function"
        assert not inspect.iscoroutinefunction(s), f"{sync_cls.__name__}.{name} is a coroutine function"
        assert a.__doc__ and a.__doc__ == s.__doc__, f"{name}: no docstring, or two"
    assert list(inspect.signature(async_cls).parameters) == list(inspect.signature(sync_cls).parameters)


def test_the_options_are_one_declaration():
    # Sandbox and Pool take every option of SandboxOptions, by name (help()
    # and IPython show them), and nothing else.
    options = list(_wire.SandboxOptions.__annotations__)
    assert [p for p in inspect.signature(Sandbox).parameters] == ["image", *options]
    assert [p for p in inspect.signature(Pool).parameters] == ["size", "image", *options]
    with pytest.raises(TypeError, match="memroy"):
        Sandbox(memroy="1G")
    with pytest.raises(TypeError, match="cpu"):
        SyncPool(2, cpu=2)


def test_the_config_carries_every_option():
    cfg = msgpack.unpackb(_wire.encode_config(
        "img", memory="1G", cpus=2, accel="tcg", network_mode="full", port_forwards=[(8080, 80)], boot_timeout=9.5,
        extra_qemu_args=["-a"], extra_kernel_args=["k"], workdir="/w", cold_boot=True, allow_host_loopback=True,
        template_dir="/t", image_dirs=["/i"], qemu_path="/q", mounts=[("/h", "/g", True)],
        server="http://127.0.0.1:1", api_key="k", metadata={"a": "b"}, idle_timeout=-1,
        network_policy=NetworkPolicy(allow_out=["a.test"], hosts={"a.test": ["198.19.0.9"]}),
        display=DisplayOptions(1024, 768, vnc=True), enable_display=True,
    ))
    assert list(cfg) == ["image", *(o for o in _wire.OPTIONS if o not in _wire.ALIASES)]
    assert cfg["display"] == {"width": 1024, "height": 768, "vnc": True}
    assert cfg["port_forwards"] == [{"host": 8080, "guest": 80}]
    assert cfg["mounts"] == [{"host": "/h", "guest": "/g", "readonly": True}]
    assert cfg["network_policy"] == {"allow_out": ["a.test"], "deny_out": [], "hosts": {"a.test": ["198.19.0.9"]}}
    # Left out, False or empty: the library's defaults.
    assert msgpack.unpackb(_wire.encode_config("img", cold_boot=False, mounts=(), memory=None)) == {"image": "img"}


def test_the_class_methods_are_twins():
    # connect and list are class methods (no sandbox yet), with the same
    # parameters and docstring on both sides.
    for name in ("connect", "list"):
        a, s = getattr(Sandbox, name), getattr(SyncSandbox, name)
        assert isinstance(inspect.getattr_static(Sandbox, name), classmethod), name
        assert inspect.signature(a) == inspect.signature(s) or name == "connect", name
        assert list(inspect.signature(a).parameters) == list(inspect.signature(s).parameters), name
        assert inspect.iscoroutinefunction(a) and not inspect.iscoroutinefunction(s), name
        assert a.__doc__ and a.__doc__ == s.__doc__, name


def test_the_remote_options_cross_as_the_header_says():
    assert msgpack.unpackb(_wire.encode_remote("unix:/s", "k", {"a": "b"})) == {
        "server": "unix:/s", "api_key": "k", "metadata": {"a": "b"}}
    assert msgpack.unpackb(_wire.encode_remote()) == {}


def test_a_sandbox_that_is_not_started_says_so():
    from quicksand import SandboxNotRunningError

    with pytest.raises(SandboxNotRunningError):
        SyncSandbox().execute("true")
    with pytest.raises(SandboxNotRunningError):
        SyncSandbox().write_file("/x", "y")


def test_the_display_options_cross_as_the_header_says():
    def display(**options):
        return msgpack.unpackb(_wire.encode_config("img", **options)).get("display")

    assert display(display=True) is True
    assert display(enable_display=True) is True  # Quicksand's name
    assert display(display=(800, 600)) == {"width": 800, "height": 600}
    assert display(display=DisplayOptions(vnc=True)) == {"width": 0, "height": 0, "vnc": True}
    assert display() is None and display(display=False) is None and display(enable_display=False) is None
    assert display(display=False, enable_display=True) is None  # display, when given, wins
    with pytest.raises(TypeError, match="display"):
        display(display="yes")
    with pytest.raises(TypeError, match="display"):
        display(display=(1, 2, 3))


def test_key_values_are_the_keysym_names():
    assert Key.ENTER == "Return" and Key.CTRL == "ctrl" and Key.ALT == "alt" and Key.F4 == "F4"
    assert Key.PAGE_UP == "Page_Up" and Key.ESCAPE == "Escape" and Key.SUPER == "super"
    assert [k.value for k in Key if k.name.startswith("F") and k.name[1:].isdigit()] == [f"F{i}" for i in range(1, 13)]
    assert str(Key.ENTER) == "Return" and f"{Key.TAB}" == "Tab"
