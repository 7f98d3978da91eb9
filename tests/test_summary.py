"""The service-level answer of a round (exporter.judge.summary): per service and network, blocked
or not and by which methods, from the tuples' verdicts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.config.matrix import RESOLVER_CHECK_SERVICE
from exporter.judge.summary import METHODS, service_states
from exporter.model.judgement import (
    BLOCKED,
    EMPTY_JUDGEMENT,
    VERDICTS,
    Finding,
    Judgement,
    ServiceState,
    Verdict,
)
from exporter.model.observation import TupleKey


def k(service: str, network: str, endpoint: str = "web", resolver: str = "isp") -> TupleKey:
    return TupleKey(
        service=service, endpoint=endpoint, network=network, resolver=resolver, family=4
    )


def judged(verdicts: dict[TupleKey, Verdict]) -> Judgement:
    findings = {key: Finding(verdict=v, reason="") for key, v in verdicts.items()}
    return replace(EMPTY_JUDGEMENT, findings=findings)


def test_the_methods_are_the_blocking_verdicts_of_its_tuples_in_a_stable_order() -> None:
    states = service_states(
        judged(
            {
                k("telegram", "uplink-a", "dc"): Verdict.TCP_BLOCKED,
                k("telegram", "uplink-a", "web"): Verdict.TLS_BLOCKED,
                k("telegram", "uplink-a", "web", "doh"): Verdict.OK,
                k("telegram", "uplink-a", "web", "google"): Verdict.DNS_TAMPERED,
                k("telegram", "uplink-a", "cdn"): Verdict.TLS_BLOCKED,
                k("telegram", "uplink-b"): Verdict.OK,
            }
        )
    )
    assert states == {
        ("telegram", "uplink-a"): ServiceState(
            service="telegram",
            network="uplink-a",
            methods=(Verdict.DNS_TAMPERED, Verdict.TCP_BLOCKED, Verdict.TLS_BLOCKED),
        ),
        ("telegram", "uplink-b"): ServiceState(service="telegram", network="uplink-b", methods=()),
    }
    assert states["telegram", "uplink-a"].blocked
    assert not states["telegram", "uplink-b"].blocked
    assert list(states) == sorted(states)


@pytest.mark.parametrize("verdict", VERDICTS, ids=[v.value for v in VERDICTS])
def test_blocked_exactly_for_the_blocking_verdicts(verdict: Verdict) -> None:
    [state] = service_states(judged({k("signal", "mobile"): verdict})).values()
    assert state.blocked is (verdict in BLOCKED)
    assert state.methods == ((verdict,) if verdict in BLOCKED else ())
    # only a dead, UDP-less or unusable network says nothing of the service
    assert state.known is (
        verdict not in (Verdict.NETWORK_DOWN, Verdict.SETUP_ERROR, Verdict.UDP_DOWN)
    )


def test_an_outage_is_not_blocking_and_a_dead_network_says_nothing() -> None:
    states = service_states(
        judged(
            {
                k("signal", "clean", "storage"): Verdict.DOWN,
                k("signal", "clean", "chat"): Verdict.DNS_FAILED,
                k("signal", "dead", "storage"): Verdict.NETWORK_DOWN,
                k("signal", "dead", "chat"): Verdict.NETWORK_DOWN,
                k("signal", "wg0"): Verdict.SETUP_ERROR,
            }
        )
    )
    assert {cell: (s.blocked, s.known) for cell, s in states.items()} == {
        ("signal", "clean"): (False, True),
        ("signal", "dead"): (False, False),
        ("signal", "wg0"): (False, False),
    }


def test_canaries_and_resolver_checks_are_no_services() -> None:
    states = service_states(
        judged(
            {
                k("canary", "censor", "example"): Verdict.HTTP_BLOCKPAGE,
                k(RESOLVER_CHECK_SERVICE, "censor", "silent", "nobody"): Verdict.DNS_TAMPERED,
                k("whatsapp", "censor"): Verdict.OK,
            }
        )
    )
    assert list(states) == [("whatsapp", "censor")]
    assert service_states(EMPTY_JUDGEMENT) == {}


def test_methods_cover_every_blocking_verdict_in_verdict_order() -> None:
    assert set(METHODS) == BLOCKED
    assert list(METHODS) == [v for v in VERDICTS if v in BLOCKED]
