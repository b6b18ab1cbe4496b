"""Quicksand's own published client (quicksand-core from PyPI) against our
agent: every call its Sandbox makes, over the transport named on the command
line. Prints one line per check and exits 1 if any failed.

    python quicksand_client.py http <port> <token>
    python quicksand_client.py serial <unix socket> <token>
"""

import asyncio
import sys

from quicksand_core._types import ExecuteResponseResult, QuicksandGuestAgentMethod as M
from quicksand_core.host.quicksand_guest_agent_client import QuicksandGuestAgentClient
from quicksand_core.host.virtio_serial_agent_client import VirtioSerialAgentClient

failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    if not ok:
        failures.append(name)


async def execute(client, **params):
    """What Sandbox.execute does without callbacks."""
    reply = await client.send_request(M.EXECUTE, params, timeout=60)
    if "error" in reply:
        return reply
    # Their result type takes exactly the fields their agent sends.
    return {"result": ExecuteResponseResult(**reply["result"]), "raw": reply["result"]}


async def stream(client, params, stdin=None, timeout=60):
    out, err = [], []
    reply = await client.send_stream_request(
        params, timeout=timeout, on_stdout=out.append, on_stderr=err.append, stdin=stdin
    )
    return reply, "".join(out), "".join(err)


async def never_ending_input():
    yield b"first line\n"
    await asyncio.sleep(3600)
    yield b"never sent"


async def run(client):
    await client.connect(timeout=120)
    check("authenticate announces stdin streaming", client.supports_stdin)

    ping = await client.send_request(M.PING, {}, timeout=30)
    check("ping", ping.get("result", {}).get("pong") is True, ping)

    r = await execute(client, command="echo out; echo err >&2; exit 3")
    check("execute: exactly stdout, stderr, exit_code", sorted(r.get("raw", {})) == ["exit_code", "stderr", "stdout"], r)
    res = r.get("result")
    check("execute: output and exit code", res and (res.stdout, res.stderr, res.exit_code) == ("out\n", "err\n", 3), res)

    r = await execute(client, command="pwd", cwd="/tmp")
    check("execute: cwd", r.get("result") and r["result"].stdout == "/tmp\n", r)

    r = await execute(client, command="pwd", cwd="/no/such/folder")
    res = r.get("result")
    check("execute: a missing cwd is a result with exit -1", res and res.exit_code == -1 and res.stderr, r)

    r = await execute(client, command="echo $0", shell="/bin/bash")
    check("execute: shell", r.get("result") and r["result"].stdout == "/bin/bash\n", r)

    r = await execute(client, command="echo started; sleep 30", timeout=1.5)
    res = r.get("result")
    check("execute: timeout is exit -1 and says so", res and res.exit_code == -1 and "timed out" in res.stderr, r)

    reply, out, err = await stream(client, {"command": "for i in 1 2 3; do echo line$i; sleep 0.1; done; echo oops >&2; exit 4"})
    check("stream: chunks reach the callbacks", out == "line1\nline2\nline3\n" and err == "oops\n", (out, err))
    check("stream: exit code", reply.get("result", {}).get("exit_code") == 4, reply)

    reply, out, _ = await stream(client, {"command": "sleep 30", "timeout": 1})
    check("stream: timeout", reply.get("result", {}).get("exit_code") == -1 and "timed out" in reply["result"]["stderr"], reply)

    data = b"".join(b"line %d\n" % i for i in range(20000))  # several 64 KiB chunks
    reply, out, _ = await stream(client, {"command": "wc -c; md5sum"}, stdin=data)
    expected_wc = str(len(data))
    check("stdin: bytes streamed in", reply.get("result", {}).get("exit_code") == 0 and out.startswith(expected_wc), (reply, out))
    reply, out, _ = await stream(client, {"command": "cat"}, stdin="héllo\n")
    check("stdin: text", out == "héllo\n", (reply, out))
    reply, out, _ = await stream(client, {"command": "head -n1"}, stdin=never_ending_input(), timeout=3)
    check("stdin: a command that stops reading ends the call", out == "first line\n" and reply.get("result", {}).get("exit_code") == 0, (reply, out))

    # Cancel: their client cancels a stdin call that timed out.
    reply, out, _ = await stream(client, {"command": "cat; sleep 1234"}, stdin=never_ending_input(), timeout=3)
    check("cancel: a timed-out stdin call is an error", "error" in reply, reply)
    await asyncio.sleep(1)
    r = await execute(client, command="if ps -eo args | grep -qx 'sleep 1234'; then echo alive; else echo gone; fi")
    check("cancel: the command was killed", r.get("result") and r["result"].stdout == "gone\n", r)

    created = await client.send_request(M.CREATE_USER, {"name": "alice"}, timeout=30)
    uid = created.get("result", {}).get("uid")
    check("create_user", isinstance(uid, int) and uid >= 1000 and created["result"]["home"] == "/home/alice", created)
    r = await execute(client, command="id -un; id -u; pwd; echo $HOME", user="alice")
    check("user: runs as the user, in its home", r.get("result") and r["result"].stdout == f"alice\n{uid}\n/home/alice\n/home/alice\n", r)
    r = await execute(client, command="cat /etc/shadow", user="alice")
    check("user: is not root", r.get("result") and r["result"].exit_code != 0, r)
    r = await execute(client, command="id -un", user="nobody-here")
    check("user: an unknown user is refused, never root", "error" in r, r)
    again = await client.send_request(M.CREATE_USER, {"name": "alice"}, timeout=30)
    check("create_user: twice is an error", "error" in again, again)
    deleted = await client.send_request(M.DELETE_USER, {"name": "alice", "remove_home": True}, timeout=30)
    check("delete_user", deleted.get("result", {}).get("removed") is True, deleted)
    r = await execute(client, command="id alice || test -e /home/alice || echo deleted")
    check("delete_user: account and home are gone", r.get("result") and r["result"].stdout.endswith("deleted\n"), r)

    await client.close()


def main():
    transport, where, token = sys.argv[1:4]
    if transport == "http":
        client = QuicksandGuestAgentClient(int(where), token)
    else:
        client = VirtioSerialAgentClient(where, token)
    asyncio.run(run(client))
    print(f"{len(failures)} of Quicksand's client checks failed over {transport}", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
