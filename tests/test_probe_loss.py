"""Lost SYNs against the Prober: a real listener in a network namespace the test makes, and
an nftables rule in it that drops SYNs to the listener's port (nothing leaves the namespace).

`numgen inc` counts the SYNs the rule sees, so "drop the first one" is deterministic: no
random loss, no sleeps. The kernel resends a lost SYN after 1 s; the probe budget here is
1 s, so without a fresh second attempt a single lost SYN would use it all.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType

import pytest

from exporter.config.matrix import Target
from exporter.config.model import NO_RESOLVER, Check, Config, Endpoint, Localisation, Network
from exporter.model.observation import ErrorKind, Observation, Phase, TupleKey
from exporter.probes.network import namespace
from exporter.probes.probe import FIRST_CONNECT_SHARE, Prober

BUDGET = 1.0
PORT = 5222


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None:
        pytest.fail("this test needs root, iproute2's `ip` and `nft` (CI runs as root)")
    name = f"mx-loss-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def drop_syns(netns: str, first: int | None) -> None:
    """Drop the first `first` SYNs to PORT in `netns` (None: every one)."""
    match = f"tcp dport {PORT} tcp flags & (syn | ack) == syn"
    rule = f"{match} drop" if first is None else f"{match} numgen inc mod 1000000 < {first} drop"
    ruleset = (
        "table inet loss {\n"
        "  chain input { type filter hook input priority 0; policy accept;\n"
        f"    {match} counter\n"
        f"    {rule}\n"
        "  }\n"
        "}\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"], input=ruleset.encode(), check=True
    )


def syns_seen(netns: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "list", "chain", "inet", "loss", "input"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counter = next(line for line in out.splitlines() if "counter" in line and "drop" not in line)
    return int(counter.split("packets")[1].split()[0])


@contextmanager
def listener(netns: str) -> Iterator[list[str]]:
    """Listen on 127.0.0.1:PORT in `netns` (the kernel completes the handshakes); once the
    block ends, the list holds the peers of the connections that were completed."""
    with namespace(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    accepted: list[str] = []
    with sock:
        sock.bind(("127.0.0.1", PORT))
        sock.listen(16)
        sock.setblocking(False)
        yield accepted
        while True:
            try:
                conn, peer = sock.accept()
            except BlockingIOError:
                break
            conn.close()
            accepted.append(peer[0])


async def probe(netns: str) -> Observation:
    network = Network(name="lossy", netns=netns)
    endpoint = Endpoint(
        service="test",
        name="ep",
        host=None,
        address="127.0.0.1",
        port=PORT,
        checks=(Check.TCP,),
        networks=("lossy",),
        families=(4,),
    )
    key = TupleKey(service="test", endpoint="ep", network="lossy", resolver=NO_RESOLVER, family=4)
    prober = Prober(
        Config(
            timeout=BUDGET,
            networks=MappingProxyType({"lossy": network}),
            localisation=Localisation(enabled=False),  # measured: the probe's own retries
        )
    )
    try:
        return await prober.probe(
            Target(key=key, endpoint=endpoint, network=network, resolver=None)
        )
    finally:
        await prober.aclose()


async def test_a_lost_syn_is_retried_in_a_fresh_attempt(netns: str) -> None:
    """The first SYN is lost: the first attempt's connect is cut at half the budget and a
    fresh connect (a new SYN, before the kernel's resend at 1 s) gets through."""
    drop_syns(netns, first=1)
    with listener(netns) as accepted:
        obs = await probe(netns)
    assert obs.success, obs.log
    assert obs.attempts == 2
    assert accepted == ["127.0.0.1"]
    assert syns_seen(netns) == 2
    assert any("attempt 1 failed: timeout in connect" in line for line in obs.log)
    share = BUDGET * FIRST_CONNECT_SHARE
    assert share <= obs.phases[Phase.TOTAL] < share + 0.3


async def test_every_syn_dropped_still_times_out_in_connect(netns: str) -> None:
    """A censor dropping every SYN: both attempts time out in connect within the budget, so
    the probe still reports the facts rule 13 turns into `tcp_blocked`."""
    drop_syns(netns, first=None)
    with listener(netns) as accepted:
        obs = await probe(netns)
    assert (obs.error, obs.failed_phase) == (ErrorKind.TIMEOUT, Phase.CONNECT), obs.log
    assert obs.attempts == 2
    assert accepted == []
    assert [c.error for c in obs.connects] == [ErrorKind.TIMEOUT]  # the second attempt's
    assert syns_seen(netns) >= 2  # one per attempt (the kernel resends none within 0.5 s)
    assert BUDGET <= obs.phases[Phase.TOTAL] < BUDGET + 0.3


async def test_a_refused_connect_is_still_quick(netns: str) -> None:
    """A reset (nothing listening) is not loss: retried once at once, and over long before
    the budget."""
    obs = await probe(netns)
    assert (obs.error, obs.failed_phase) == (ErrorKind.REFUSED, Phase.CONNECT), obs.log
    assert obs.attempts == 2
    assert obs.phases[Phase.TOTAL] < 0.2
