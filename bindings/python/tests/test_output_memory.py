"""The host's memory for a command with far more output than the result
keeps: 1 GiB on stderr, with the default cap of 256 MiB. It cost the
caller 1,066 MB, four times the cap: the kept output was assembled again on
Go's heap, copied once more into C memory, and while it was live heap the
collector put off collecting the chunks a streaming call copies."""

import subprocess
import sys
import textwrap

CAP = 256 << 20

# Each phase in a process of its own, measured by its peak memory (VmHWM,
# reset between phases through /proc/self/clear_refs): the C ABI as a C
# program has it (qs_sandbox_execute, through ctypes, its result freed
# unread), collecting and streaming, then the Python API, whose result
# holds the output as bytes (a copy, made while the library lends its
# buffer: twice the cap at that moment, and no more).
CHILD = textwrap.dedent(
    """
    import ctypes, sys, msgpack
    from quicksand import SyncSandbox, _lib

    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    def reset():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    command = "yes abcdefgh | head -c 1073741824 >&2"
    lib = _lib.lib()
    lib.qs_sandbox_execute.restype = ctypes.c_int
    lib.qs_sandbox_execute.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, _lib.ChunkFn,
                                       ctypes.c_void_p, ctypes.POINTER(_lib.Buffer), ctypes.POINTER(ctypes.c_void_p)]
    got = [0]
    @_lib.ChunkFn
    def count(_ud, _stream, _data, n):
        got[0] += n

    with SyncSandbox() as sb:
        sb.execute("true")
        req = msgpack.packb({"command": command, "timeout": 600})
        for name, cb in (("C, collected", _lib.ChunkFn()), ("C, streamed", count)):
            reset()
            before = peak()
            buf, err = _lib.Buffer(), ctypes.c_void_p()
            status = lib.qs_sandbox_execute(sb._require()._ptr, req, len(req), cb, None, ctypes.byref(buf), ctypes.byref(err))
            _lib.check(status, err)
            n = buf.len
            lib.qs_buffer_free(ctypes.byref(buf))
            print(name, peak() - before, n)
        reset()
        before = peak()
        seen = [0]
        r = sb.execute(command, timeout=600, on_stderr=lambda s: seen.__setitem__(0, seen[0] + len(s)))
        print("Python, streamed", peak() - before, len(r.stderr_bytes))
        assert got[0] == 1 << 30 and seen[0] == 1 << 30 and r.stderr_truncated, (got, seen)
    """
)


def test_output_memory_stays_near_the_cap():
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=1200)
    assert child.returncode == 0, child.stderr
    grew = {}
    for line in child.stdout.splitlines():
        name, n, size = line.rsplit(" ", 2)
        grew[name] = int(n)
        assert int(size) >= CAP, line  # the result holds the cap's worth
    print(child.stdout)
    assert grew["C, collected"] < 1.25 * CAP, child.stdout
    assert grew["C, streamed"] < 1.25 * CAP, child.stdout
    assert grew["Python, streamed"] < 2.25 * CAP, child.stdout
