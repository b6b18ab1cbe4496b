"""Network policy through the Python API: a real VM in full mode whose
policy refuses a name (NXDOMAIN, counted), then, changed on the running
sandbox, answers it from its hosts map. No address is ever reached: the
only address named (198.19.0.9, a benchmarking range) is never dialled."""

import pytest

from quicksand import BadRequestError, InvalidConfigError, NetworkPolicy, NetworkStats, Sandbox, SyncSandbox

ONLY = "198.19.0.9:1"


@pytest.mark.asyncio(loop_scope="session")
async def test_policy_refuses_then_allows_a_name():
    async with Sandbox(network_policy=NetworkPolicy(allow_out=[ONLY])) as s:
        r = await s.execute("getent hosts example.invalid; echo $?")
        assert r.stdout.strip() == "2", r
        stats = await s.network_stats()
        assert isinstance(stats, NetworkStats) and stats.names_refused >= 1, stats

        await s.set_network(
            NetworkPolicy(allow_out=[ONLY, "example.invalid"], hosts={"example.invalid": ["198.19.0.9"]})
        )
        r = await s.execute("getent hosts example.invalid")
        assert r.exit_code == 0 and r.stdout.split()[0] == "198.19.0.9", r
        assert (await s.network_stats()).names_allowed >= 1

        with pytest.raises(InvalidConfigError, match=r"allow_out\[1\].*not a domain"):
            await s.set_network(NetworkPolicy(allow_out=[ONLY, "bad name!"]))
        with pytest.raises(InvalidConfigError, match="hosts.*not an IP address"):
            await s.set_network(NetworkPolicy(hosts={"a.test": ["nope"]}))
        await s.set_network(None)  # no policy: plain full mode


def test_bad_entries_and_modes():
    with pytest.raises(InvalidConfigError, match=r"deny_out\[0\].*10\.0\.0\.0/33"):
        SyncSandbox(network_policy=NetworkPolicy(deny_out=["10.0.0.0/33"])).start()
    with pytest.raises(InvalidConfigError, match="network_policy"):
        SyncSandbox(network_policy=NetworkPolicy(allow_out=["a.test"]), network_mode="restricted").start()
    with pytest.raises(TypeError, match="NetworkPolicy"):
        SyncSandbox(network_policy={"allow_out": []}).start()  # type: ignore[typeddict-item]


@pytest.mark.asyncio(loop_scope="session")
async def test_restricted_has_no_guard(sb):
    with pytest.raises(BadRequestError, match="no network guard"):
        await sb.network_stats()
    with pytest.raises(BadRequestError, match="no network guard"):
        await sb.set_network(NetworkPolicy(allow_out=[ONLY]))
