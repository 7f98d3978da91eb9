"""Rules 22-23 of docs/verdicts.md as a table (exporter/judge/protocols.py): the call path
(`stun`) and Telegram's own protocol (`mtproto`). Each row is a round of facts and the
verdicts it must give; the negatives (an outage, a network without any UDP, a relay that
answers garbage everywhere, a single uplink without evidence) are rows too."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import pytest

from exporter.config.model import (
    Check,
    Config,
    Endpoint,
    MtprotoOptions,
    Service,
)
from exporter.judge.verdict import judge
from exporter.model.judgement import Verdict
from exporter.model.observation import (
    ConnectAttempt,
    ErrorKind,
    MtprotoObservation,
    MtprotoTransport,
    Observation,
    PathObservation,
    PathOutcome,
    Phase,
    StunObservation,
    TupleKey,
)
from tests.fakes.observations import key, lab_config, ok

C = "clean"
X = "censor"
RELAY = "157.240.0.3"
DC = "149.154.175.50"
OBFUSCATED = MtprotoTransport.OBFUSCATED
PLAIN = MtprotoTransport.INTERMEDIATE


def config(networks: tuple[str, ...] = (C, X)) -> Config:
    """lab_config with a STUN relay (messenger/stun), two DC endpoints (telegram/dc2 in each
    form) and a UDP canary (canary/stun)."""
    base = lab_config(networks=networks)
    stun = Endpoint(
        service="messenger",
        name="stun",
        host="stun.messenger.lab",
        address=None,
        port=3478,
        checks=(Check.DNS, Check.STUN),
        resolvers=("isp", "google", "doh"),
        networks=networks,
    )

    def dc(name: str, transport: MtprotoTransport) -> Endpoint:
        return Endpoint(
            service="telegram",
            name=name,
            host=None,
            address=DC,
            port=443,
            checks=(Check.TCP, Check.MTPROTO),
            mtproto=MtprotoOptions(transport=transport, dc=2),
            networks=networks,
        )

    udp_canary = dataclasses.replace(stun, service="canary", name="stun", host="stun.public.lab")
    services = dict(base.services)
    telegram = services["telegram"]
    services["telegram"] = Service(
        name="telegram",
        endpoints=MappingProxyType(
            {
                **telegram.endpoints,
                "dc2": dc("dc2", OBFUSCATED),
                "dc2-plain": dc("dc2-plain", PLAIN),
            }
        ),
    )
    services["messenger"] = Service(name="messenger", endpoints=MappingProxyType({"stun": stun}))
    canary = services["canary"]
    services["canary"] = Service(
        name="canary", endpoints=MappingProxyType({**canary.endpoints, "stun": udp_canary})
    )
    return dataclasses.replace(base, services=MappingProxyType(services))


def relay(network: str, resolver: str = "google") -> TupleKey:
    return key(network, resolver, service="messenger", endpoint="stun")


def udp_canary(network: str) -> TupleKey:
    return key(network, "google", service="canary", endpoint="stun")


def dc2(network: str, endpoint: str = "dc2") -> TupleKey:
    return key(network, "none", service="telegram", endpoint=endpoint)


def stun(
    k: TupleKey,
    error: ErrorKind | None = None,
    *,
    path: PathObservation | None = None,
    address: str = RELAY,
) -> Observation:
    """A stun probe: DNS answered `address`, then the Binding request passed or failed."""
    base = ok(k, answers=(address,))
    phases = {Phase.DNS: 0.01, Phase.STUN: 0.05, Phase.TOTAL: 0.06}
    return dataclasses.replace(
        base,
        error=error,
        failed_phase=None if error is None else Phase.STUN,
        phases=MappingProxyType(phases),
        tls=None,
        http=None,
        stun=StunObservation(
            address=address,
            port=3478,
            requests=1 if error is None else 4,
            mapped="100.64.0.2:40000" if error is None else None,
            error=error,
            detail=None if error is None else f"made up: {error}",
            duration=0.05,
        ),
        path=path,
    )


def mtproto(
    k: TupleKey,
    error: ErrorKind | None = None,
    *,
    transport: MtprotoTransport = OBFUSCATED,
    path: PathObservation | None = None,
) -> Observation:
    """An mtproto probe: TCP connected to the DC, then the exchange passed or failed."""
    phases = {Phase.CONNECT: 0.02, Phase.MTPROTO: 0.03, Phase.TOTAL: 0.05}
    return Observation(
        key=k,
        started=1.0,
        finished=1.1,
        error=error,
        failed_phase=None if error is None else Phase.MTPROTO,
        phases=MappingProxyType(phases),
        connects=(ConnectAttempt(address=DC, port=443, duration=0.02),),
        address=DC,
        mtproto=MtprotoObservation(
            address=DC,
            port=443,
            transport=transport,
            answered=error is None,
            error=error,
            detail=None if error is None else f"made up: {error}",
            duration=0.03,
        ),
        path=path,
    )


def located(outcome: PathOutcome, phase: Phase, *, answer: str = "silence") -> PathObservation:
    return PathObservation(
        phase=phase,
        outcome=outcome,
        distance=4,
        hop=2,
        answer=answer,
        routers=("100.64.0.1", "198.51.100.1", "198.51.100.9", None),
        detail="made up for the table",
    )


def tcp_canaries(*networks: str) -> list[Observation]:
    return [ok(key(n, "google", service="canary", endpoint="example")) for n in networks]


@dataclass(frozen=True)
class Case:
    name: str
    observations: list[Observation]
    expected: dict[TupleKey, Verdict]
    config: Callable[[], Config] = config


ANYCAST = "157.240.12.3"  # another site of the relay, in another /24


CASES = [
    Case(
        "6 geo-DNS: the ISP's resolver answers another site of the relay than DoH, and that "
        "site answers STUN: consistent, not tampered",
        [
            stun(relay(X, "isp"), address=ANYCAST),
            stun(relay(X, "doh")),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X, "isp"): Verdict.OK, relay(X, "doh"): Verdict.OK},
        lambda: config((X,)),
    ),
    Case(
        "6 the ISP's resolver answers an address in no /24 of DoH's that answers no STUN "
        "either: tampered",
        [
            stun(relay(X, "isp"), ErrorKind.TIMEOUT, address=ANYCAST),
            stun(relay(X, "doh")),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X, "isp"): Verdict.DNS_TAMPERED, relay(X, "doh"): Verdict.OK},
        lambda: config((X,)),
    ),
    Case(
        "6 an outage of the relay: nothing answers STUN anywhere, and the ISP's resolver "
        "answered another site than DoH: nothing proves either answer; down, not tampered",
        [
            stun(relay(X, "isp"), ErrorKind.TIMEOUT, address=ANYCAST),
            stun(relay(X, "doh"), ErrorKind.TIMEOUT),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X, "isp"): Verdict.DOWN, relay(X, "doh"): Verdict.DOWN},
        lambda: config((X,)),
    ),
    Case(
        "22 the relay drops STUN on one network while it answers on another: calls blocked",
        [
            stun(relay(X), ErrorKind.TIMEOUT),
            stun(relay(C)),
            stun(udp_canary(X)),
            stun(udp_canary(C)),
            *tcp_canaries(C, X),
        ],
        {relay(X): Verdict.UDP_BLOCKED, relay(C): Verdict.OK},
    ),
    Case(
        "22 the relay fails everywhere while the public STUN servers answer: an outage",
        [
            stun(relay(X), ErrorKind.TIMEOUT),
            stun(relay(C), ErrorKind.TIMEOUT),
            stun(udp_canary(X)),
            stun(udp_canary(C)),
            *tcp_canaries(C, X),
        ],
        {relay(X): Verdict.DOWN, relay(C): Verdict.DOWN},
    ),
    Case(
        "12a one uplink, the STUN request lost once while another resolver's probe got an answer "
        "from the same relay address: a passing failure, not blocked",
        [
            stun(relay(X, "isp"), ErrorKind.TIMEOUT),
            stun(relay(X, "doh")),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X, "isp"): Verdict.DOWN, relay(X, "doh"): Verdict.OK},
        lambda: config((X,)),
    ),
    Case(
        "22 one uplink, the STUN request to one site dropped while another site of the relay "
        "(another resolver's answer, proven by its STUN answer) answered: calls blocked",
        [
            stun(relay(X, "doh"), ErrorKind.TIMEOUT),
            stun(relay(X, "isp"), address=ANYCAST),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X, "doh"): Verdict.UDP_BLOCKED, relay(X, "isp"): Verdict.OK},
        lambda: config((X,)),
    ),
    Case(
        "22 one uplink, the STUN request dropped at hop 2 while the trace passes: calls blocked",
        [
            stun(relay(X), ErrorKind.TIMEOUT, path=located(PathOutcome.DROPPED, Phase.STUN)),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X): Verdict.UDP_BLOCKED},
        lambda: config((X,)),
    ),
    Case(
        "22 one uplink, one relay of the name silent at its own distance while another "
        "resolver's relay answered: that relay is down (maintenance), not blocked",
        [
            stun(
                relay(X, "doh"),
                ErrorKind.TIMEOUT,
                path=located(PathOutcome.AT_DESTINATION, Phase.STUN),
            ),
            stun(relay(X, "isp"), address=ANYCAST),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X, "doh"): Verdict.DOWN, relay(X, "isp"): Verdict.OK},
        lambda: config((X,)),
    ),
    Case(
        "22 one uplink, silence at the relay's own distance: an outage, never blocked",
        [
            stun(relay(X), ErrorKind.TIMEOUT, path=located(PathOutcome.AT_DESTINATION, Phase.STUN)),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X): Verdict.DOWN},
        lambda: config((X,)),
    ),
    Case(
        "22 one uplink, localisation inconclusive (ICMP filtered): down, never blocked",
        [
            stun(relay(X), ErrorKind.TIMEOUT, path=located(PathOutcome.INCONCLUSIVE, Phase.STUN)),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X): Verdict.DOWN},
        lambda: config((X,)),
    ),
    Case(
        "22 no UDP works on the network (the UDP canary fails too): udp_down, not blocked",
        [
            stun(relay(X), ErrorKind.TIMEOUT),
            stun(relay(C)),
            stun(udp_canary(X), ErrorKind.TIMEOUT),
            stun(udp_canary(C)),
            *tcp_canaries(C, X),
        ],
        {relay(X): Verdict.UDP_DOWN, relay(C): Verdict.OK},
    ),
    Case(
        "22 the UDP canary of the network has no result yet (a first round): nothing is "
        "called blocked, a network without UDP cannot be ruled out",
        [
            stun(relay(X), ErrorKind.TIMEOUT),
            stun(relay(C)),
            stun(udp_canary(C)),
            *tcp_canaries(C, X),
        ],
        {relay(X): Verdict.DOWN, relay(C): Verdict.OK},
    ),
    Case(
        "1 a network whose UDP canary fails while its TCP canary works is up, not down",
        [
            stun(relay(X), ErrorKind.TIMEOUT),
            mtproto(dc2(X)),
            stun(udp_canary(X), ErrorKind.TIMEOUT),
            *tcp_canaries(X),
        ],
        {relay(X): Verdict.UDP_DOWN, dc2(X): Verdict.OK},
        lambda: config((X,)),
    ),
    Case(
        "22 a garbled answer on one network: something answered in the relay's place",
        [
            stun(relay(X), ErrorKind.BAD_REPLY),
            stun(udp_canary(X)),
            *tcp_canaries(X),
        ],
        {relay(X): Verdict.UDP_BLOCKED},
        lambda: config((X,)),
    ),
    Case(
        "22 the same garbled answer on every network: the relay's own doing",
        [
            stun(relay(X), ErrorKind.BAD_REPLY),
            stun(relay(C), ErrorKind.BAD_REPLY),
            stun(udp_canary(X)),
            stun(udp_canary(C)),
            *tcp_canaries(C, X),
        ],
        {relay(X): Verdict.DOWN, relay(C): Verdict.DOWN},
    ),
    Case(
        "22 a dead network says nothing of calls",
        [
            stun(relay(X), ErrorKind.TIMEOUT),
            stun(relay(C)),
            stun(udp_canary(X), ErrorKind.TIMEOUT),
            stun(udp_canary(C)),
            dataclasses.replace(
                ok(key(X, "google", service="canary", endpoint="example")),
                error=ErrorKind.TIMEOUT,
                failed_phase=Phase.CONNECT,
            ),
            *tcp_canaries(C),
        ],
        {relay(X): Verdict.NETWORK_DOWN, relay(C): Verdict.OK},
    ),
    Case(
        "23 the DC resets Telegram's protocol on one network while it answers on another",
        [
            mtproto(dc2(X), ErrorKind.RESET),
            mtproto(dc2(C)),
            *tcp_canaries(C, X),
        ],
        {dc2(X): Verdict.PROTOCOL_BLOCKED, dc2(C): Verdict.OK},
    ),
    Case(
        "23 one uplink: the plain form is reset while the obfuscated form gets its answer "
        "from the same DC: the censor recognises the plain form",
        [
            mtproto(dc2(X, "dc2-plain"), ErrorKind.RESET, transport=PLAIN),
            mtproto(dc2(X)),
            *tcp_canaries(X),
        ],
        {dc2(X, "dc2-plain"): Verdict.PROTOCOL_BLOCKED, dc2(X): Verdict.OK},
        lambda: config((X,)),
    ),
    Case(
        "23 one uplink: both forms silenced, no path evidence: down, never blocked",
        [
            mtproto(dc2(X, "dc2-plain"), ErrorKind.TIMEOUT, transport=PLAIN),
            mtproto(dc2(X), ErrorKind.TIMEOUT),
            *tcp_canaries(X),
        ],
        {dc2(X, "dc2-plain"): Verdict.DOWN, dc2(X): Verdict.DOWN},
        lambda: config((X,)),
    ),
    Case(
        "23 one uplink: a reset from hop 2 while the DC is 4 hops away",
        [
            mtproto(
                dc2(X),
                ErrorKind.RESET,
                path=located(PathOutcome.BEFORE_DESTINATION, Phase.MTPROTO, answer="reset"),
            ),
            *tcp_canaries(X),
        ],
        {dc2(X): Verdict.PROTOCOL_BLOCKED},
        lambda: config((X,)),
    ),
    Case(
        "23 a wrong nonce on one network: tampering, never success",
        [mtproto(dc2(X), ErrorKind.BAD_REPLY), *tcp_canaries(X)],
        {dc2(X): Verdict.PROTOCOL_BLOCKED},
        lambda: config((X,)),
    ),
    Case(
        "23 the exchange fails the same way on every network: an outage",
        [
            mtproto(dc2(X), ErrorKind.EOF),
            mtproto(dc2(C), ErrorKind.EOF),
            *tcp_canaries(C, X),
        ],
        {dc2(X): Verdict.DOWN, dc2(C): Verdict.DOWN},
    ),
    Case(
        "13 a DC whose exchange was reset did connect: TCP refused elsewhere is tcp_blocked",
        [
            dataclasses.replace(
                mtproto(dc2(X)),
                error=ErrorKind.REFUSED,
                failed_phase=Phase.CONNECT,
                phases=MappingProxyType({Phase.CONNECT: 0.02, Phase.TOTAL: 0.02}),
                connects=(
                    ConnectAttempt(address=DC, port=443, error=ErrorKind.REFUSED, duration=0.02),
                ),
                address=None,
                mtproto=None,
            ),
            mtproto(dc2(C), ErrorKind.RESET),
            *tcp_canaries(C, X),
        ],
        {dc2(X): Verdict.TCP_BLOCKED, dc2(C): Verdict.DOWN},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict_table(case: Case) -> None:
    judgement = judge(case.config(), {o.key: o for o in case.observations})
    got = {k: judgement.findings[k].verdict for k in case.expected}
    assert got == case.expected, {k: judgement.findings[k].reason for k in case.expected}


def test_udp_canaries_set_the_network_udp_state_only_where_the_network_is_up() -> None:
    judgement = judge(
        config(),
        {
            o.key: o
            for o in [
                stun(udp_canary(X), ErrorKind.TIMEOUT),
                stun(udp_canary(C)),
                *tcp_canaries(C, X),
            ]
        },
    )
    assert dict(judgement.network_udp) == {X: False, C: True}
    assert dict(judgement.network_up) == {X: True, C: True}


def test_the_evidence_names_the_control_and_the_hop() -> None:
    judgement = judge(
        config((X,)),
        {
            o.key: o
            for o in [
                stun(relay(X), ErrorKind.TIMEOUT, path=located(PathOutcome.DROPPED, Phase.STUN)),
                mtproto(dc2(X, "dc2-plain"), ErrorKind.RESET, transport=PLAIN),
                mtproto(dc2(X)),
                stun(udp_canary(X)),
                *tcp_canaries(X),
            ]
        },
    )
    calls = judgement.findings[relay(X)].reason
    assert "interference at hop 2" in calls
    assert "198.51.100.1" in calls
    protocol = judgement.findings[dc2(X, "dc2-plain")].reason
    assert "obfuscated form got its answer from the same data centre" in protocol


def test_service_level_calls_blocked_alone() -> None:
    """The MessagingCallsBlocked condition: the service's only method is udp_blocked."""
    judgement = judge(
        config(),
        {
            o.key: o
            for o in [
                stun(relay(X), ErrorKind.TIMEOUT),
                stun(relay(C)),
                stun(udp_canary(X)),
                stun(udp_canary(C)),
                *tcp_canaries(C, X),
            ]
        },
    )
    state = judgement.services[("messenger", X)]
    assert state.methods == (Verdict.UDP_BLOCKED,)
    assert not judgement.services[("messenger", C)].blocked
