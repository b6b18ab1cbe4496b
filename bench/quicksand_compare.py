"""Quicksand-Go beside Quicksand, measured the same way, the two sides
alternated run by run.

    python quicksand_compare.py run ROUNDS QUICKSAND_PYTHON > table.md

runs, ROUNDS times, one new process per sample in turn: ours cold, Quicksand
cold, ours warm (this project's binding, in this interpreter; Quicksand's
`quicksand_core` in QUICKSAND_PYTHON). Each sample starts a sandbox (512 MiB,
1 CPU, accelerator TCG, both sides on the system's QEMU), times start to
ready (entering `async with Sandbox(...)`), then times `execute` round
trips. The table's notes come from what the samples read: the QEMU binary,
accelerator, memory and CPUs of the QEMU process each side started, the
guests' kernels, each side's transport. Any failed sample makes the run fail
(exit status 1).

    python quicksand_compare.py sample ours|quicksand cold|warm

is one sample (one JSON line).
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

EXECS = 30  # round trips a sample times (its median is the sample's figure)


def qemu_children():
    """The QEMU processes this process started (children or further down):
    binary and arguments."""
    parent, me = {}, os.getpid()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue

    def mine(pid):
        for _ in range(64):
            pid = parent.get(pid, 0)
            if pid == me:
                return True
            if pid <= 1:
                return False
        return False

    found = []
    for pid in parent:
        if not mine(pid):
            continue
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0")]
        except OSError:
            continue
        if "qemu-system" in exe:
            found.append((exe, argv))
    return found


def arg_after(argv, flag):
    return argv[argv.index(flag) + 1] if flag in argv else ""


async def rtts(sb, command, n=EXECS, warmup=5):
    times = []
    for i in range(n + warmup):
        t = time.monotonic()
        r = await sb.execute(command)
        if r.exit_code != 0:
            raise SystemExit(f"{command!r} exited {r.exit_code}: {r.stderr}")
        if i >= warmup:
            times.append((time.monotonic() - t) * 1000)
    return statistics.median(times)


async def sample(side, kind):
    if side == "ours":
        from quicksand import Sandbox

        make = lambda: Sandbox(image="debian", memory="512M", cpus=1, accel="tcg", cold_boot=(kind == "cold"))
    else:
        from quicksand_core import Sandbox

        make = lambda: Sandbox(image="alpine", memory="512M", cpus=1, accel="tcg")
    t = time.monotonic()
    async with make() as sb:
        out = {"side": side, "kind": kind, "start_s": time.monotonic() - t}
        qemu = qemu_children()
        if qemu:
            exe, argv = qemu[0]
            out["qemu"] = {"binary": exe, "accel": arg_after(argv, "-accel") or arg_after(argv, "-machine"),
                           "memory": arg_after(argv, "-m"), "cpus": arg_after(argv, "-smp")}
        out["kernel"] = (await sb.execute("uname -r")).stdout.strip()
        out["os"] = (await sb.execute(". /etc/os-release; echo $PRETTY_NAME")).stdout.strip()
        if side == "quicksand":
            client = getattr(sb, "_agent_client", None)
            out["transport"] = type(client).__name__ if client is not None else "unknown"
            out["rtt_shell_ms"] = await rtts(sb, "true")  # their agent runs every command with a shell
        else:
            info = sb._require().info()
            channel = "a virtio-serial output channel" if info.get("output_channel") else "the HTTP answers"
            host = str(info.get('agent_addr', '')).rsplit(':', 1)[0]
            out["transport"] = (f"requests over HTTP to {host}:<a port of its own> (QEMU's user-network port forward), "
                                f"output over {channel}")
            out["rtt_shell_ms"] = await rtts(sb, "sh -c true")  # as theirs: a shell that runs true
            out["rtt_direct_ms"] = await rtts(sb, "true")  # our agent execs a plain command itself
            # Our guests boot with norandmaps under TCG (QEMU caches translated
            # code by address): the same, with address randomisation back on.
            await sb.execute("echo 2 > /proc/sys/kernel/randomize_va_space")
            out["rtt_shell_aslr_ms"] = await rtts(sb, "sh -c true")
            out["randomize_va_space"] = (await sb.execute("cat /proc/sys/kernel/randomize_va_space")).stdout.strip()
    print(json.dumps(out), flush=True)


def run(rounds, quicksand_python):
    plan = [("ours", "cold", sys.executable), ("quicksand", "cold", quicksand_python), ("ours", "warm", sys.executable)]
    samples, failures = [], []
    for i in range(rounds + 1):  # the first round warms caches (templates, page cache): not counted
        for side, kind, python in plan:
            p = subprocess.run([python, __file__, "sample", side, kind], capture_output=True, text=True, timeout=600)
            if p.returncode != 0 or not p.stdout.strip():
                failures.append(f"{side} {kind} (round {i}): {p.stderr.strip()[-500:]}")
                continue
            if i:
                samples.append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(f"round {i} {side} {kind}: {p.stdout.strip()}", file=sys.stderr, flush=True)
    table(samples, rounds)
    if failures:
        print("\nFailed samples:\n" + "\n".join(failures))
        sys.exit(1)


def table(samples, rounds):
    def of(side, kind, key):
        return [s[key] for s in samples if s["side"] == side and s["kind"] == kind and key in s]

    def cell(values, unit, digits=3):
        if not values:
            return "n/a"
        v = sorted(values)
        p99 = v[max(0, -(-len(v) * 99 // 100) - 1)]
        return f"{statistics.median(v):.{digits}g} {unit} (p99 {p99:.{digits}g}, n={len(v)})"

    rows = [
        ("start to ready, cold boot", cell(of("ours", "cold", "start_s"), "s"), cell(of("quicksand", "cold", "start_s"), "s")),
        ("execute `true` through a shell (`sh -c true`)", cell(of("ours", "cold", "rtt_shell_ms"), "ms"), cell(of("quicksand", "cold", "rtt_shell_ms"), "ms")),
        ("start to ready, warm (resumed from a template)", cell(of("ours", "warm", "start_s"), "s"), "— (Quicksand has no warm start)"),
        ("execute `true`, our direct path (no shell)", cell(of("ours", "cold", "rtt_direct_ms"), "ms"), "—"),
        ("execute `sh -c true`, our guest with address randomisation on", cell(of("ours", "cold", "rtt_shell_aslr_ms"), "ms"), "—"),
    ]
    print(f"## Quicksand-Go and Quicksand, alternated sample by sample ({rounds} rounds, after one not counted)\n")
    print("| figure | Quicksand-Go | Quicksand |")
    print("| --- | ---: | ---: |")
    for name, ours, theirs in rows:
        print(f"| {name} | {ours} | {theirs} |")
    print("\nEach sample is a new process: a start, then the median of "
          f"{EXECS} round trips after 5 not counted; the table gives the median and p99 of the samples.\n")
    print("Read from the samples (not assumed):\n")
    for side in ("ours", "quicksand"):
        seen = [s for s in samples if s["side"] == side]
        if not seen:
            continue
        first = seen[0]
        q = first.get("qemu", {})
        print(f"- {'Quicksand-Go' if side == 'ours' else 'Quicksand'}: guest {first.get('os')} (kernel {first.get('kernel')}); "
              f"QEMU {q.get('binary', '?')} with accel {q.get('accel', '?')}, -m {q.get('memory', '?')}, -smp {q.get('cpus', '?')}; "
              f"transport: {first.get('transport')}.")
        kernels = {s.get("kernel") for s in seen}
        binaries = {s.get("qemu", {}).get("binary") for s in seen}
        if len(kernels) > 1 or len(binaries) > 1:
            print(f"  (varied across samples: kernels {sorted(map(str, kernels))}, QEMU {sorted(map(str, binaries))})")
    aslr = {s.get("randomize_va_space") for s in samples if s["side"] == "ours"}
    print(f"- Our guests boot with `norandmaps` under TCG; the randomisation row set "
          f"kernel.randomize_va_space to {', '.join(sorted(map(str, aslr)))} in the guest before timing.")


def main():
    if sys.argv[1:2] == ["sample"]:
        asyncio.run(sample(sys.argv[2], sys.argv[3]))
    elif sys.argv[1:2] == ["run"]:
        run(int(sys.argv[2]), sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
