"""The stun and mtproto checks as phases of a real probe (exporter/probes/protocols.py): the
Prober against a STUN server and a look-alike Telegram data centre on loopback, through the
real Dialer. What each check says alone is in test_stun.py and test_mtproto.py; here, what
the probe records (phases, failure, log, the partial result at its deadline)."""

from __future__ import annotations

import dataclasses

import pytest

from exporter.config.model import Check, MtprotoOptions
from exporter.model.observation import ErrorKind, MtprotoTransport, Phase
from tests.fakes import stun_server
from tests.fakes.mtproto_server import FakeDataCentre, Mode
from tests.fakes.stun_server import FakeStunServer
from tests.test_probe import SHORT, assert_sane, endpoint, open_fds, run

STUN = (Check.STUN,)
MTPROTO = (Check.TCP, Check.MTPROTO)


async def test_stun_success_is_its_own_phase() -> None:
    async with FakeStunServer() as server:
        obs = await run(endpoint(server.port, STUN, host=None))
    assert_sane(obs)
    assert obs.success, obs.log
    assert set(obs.phases) == {Phase.STUN, Phase.TOTAL}
    assert obs.stun is not None
    assert obs.stun.requests == 1
    assert obs.stun.mapped is not None
    assert obs.address == "127.0.0.1"
    assert any("a Binding success response" in line for line in obs.log)
    # Our own public address is never in the log.
    assert not any(obs.stun.mapped in line for line in obs.log)


async def test_stun_silence_ends_at_the_probe_deadline_as_a_timeout() -> None:
    before = open_fds()
    async with FakeStunServer(stun_server.silence) as server:
        obs = await run(endpoint(server.port, STUN, host=None), budget=SHORT)
    assert obs.error is ErrorKind.TIMEOUT
    assert obs.failed_phase is Phase.STUN
    assert obs.stun is not None
    assert obs.stun.error is ErrorKind.TIMEOUT
    assert obs.stun.requests >= 1
    assert len(server.requests) == obs.stun.requests * obs.attempts
    assert open_fds() == before


async def test_stun_garbage_until_the_deadline_is_a_bad_reply_not_a_timeout() -> None:
    """Only bad datagrams before the deadline: something answered in the relay's place."""
    async with FakeStunServer(stun_server.garbage) as server:
        obs = await run(endpoint(server.port, STUN, host=None), budget=SHORT)
    assert obs.error is ErrorKind.BAD_REPLY, obs.log
    assert obs.failed_phase is Phase.STUN
    assert obs.stun is not None
    assert obs.stun.error is ErrorKind.BAD_REPLY
    assert obs.stun.detail is not None
    assert "bad datagram" in obs.stun.detail


@pytest.mark.parametrize("transport", list(MtprotoTransport))
async def test_mtproto_success_after_the_connect(transport: MtprotoTransport) -> None:
    async with FakeDataCentre(Mode.NORMAL) as dc:
        ep = dataclasses.replace(
            endpoint(dc.port, MTPROTO, host=None),
            mtproto=MtprotoOptions(transport=transport, dc=2),
        )
        obs = await run(ep)
    assert_sane(obs)
    assert obs.success, obs.log
    assert set(obs.phases) == {Phase.CONNECT, Phase.MTPROTO, Phase.TOTAL}
    assert obs.mtproto is not None
    assert obs.mtproto.answered
    assert obs.mtproto.transport is transport
    [seen] = dc.seen
    assert seen.transport == transport.value
    if transport is MtprotoTransport.OBFUSCATED:
        assert seen.dc == 2


async def test_mtproto_wrong_nonce_fails_the_probe_as_a_bad_reply() -> None:
    async with FakeDataCentre(Mode.WRONG_NONCE) as dc:
        obs = await run(endpoint(dc.port, MTPROTO, host=None))
    assert obs.error is ErrorKind.BAD_REPLY
    assert obs.failed_phase is Phase.MTPROTO
    assert obs.mtproto is not None
    assert not obs.mtproto.answered
    assert any("mtproto" in line and "bad_reply" in line for line in obs.log)


async def test_mtproto_silence_ends_at_the_deadline_with_the_exchange_recorded() -> None:
    async with FakeDataCentre(Mode.SILENT) as dc:
        obs = await run(endpoint(dc.port, MTPROTO, host=None), budget=SHORT)
    assert obs.error is ErrorKind.TIMEOUT
    assert obs.failed_phase is Phase.MTPROTO
    assert obs.mtproto is not None
    assert obs.mtproto.error is ErrorKind.TIMEOUT
    assert obs.mtproto.transport is MtprotoTransport.OBFUSCATED
    assert Phase.CONNECT in obs.phases
