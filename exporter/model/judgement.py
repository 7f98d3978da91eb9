"""What a round's judgement says, as data shared by the judge that makes it, the store and
collector that export it, and the pages that show it: the closed set of verdicts, a tuple's
finding, the round's judgement, and the service-level state of a service on a network.
Pure types; the rules that make them are in exporter.judge.

Invariants: a verdict is one of `Verdict`, a closed set (bounded label values); a method of
a `ServiceState` is a verdict in `BLOCKED`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.model.observation import TupleKey


class Verdict(enum.StrEnum):
    OK = "ok"
    DNS_TAMPERED = "dns_tampered"
    DNS_FAILED = "dns_failed"
    TCP_BLOCKED = "tcp_blocked"
    TLS_BLOCKED = "tls_blocked"
    TLS_MITM = "tls_mitm"
    HTTP_BLOCKPAGE = "http_blockpage"
    HTTP_FAILED = "http_failed"
    DOWN = "down"
    NETWORK_DOWN = "network_down"
    THROTTLED = "throttled"
    QUIC_BLOCKED = "quic_blocked"
    #: The exporter cannot use the network as configured (its namespace, interface or source
    #: address is gone, its proxy fails): a set-up error, not a shutdown.
    SETUP_ERROR = "setup_error"
    #: The call path: the STUN request fails here while it works elsewhere, on the path's
    #: evidence, or against an impostor's answer.
    UDP_BLOCKED = "udp_blocked"
    #: Telegram's own protocol: TCP connects, and the MTProto exchange fails here while it
    #: works elsewhere (or in the other form), on the path's evidence, or is answered falsely.
    PROTOCOL_BLOCKED = "protocol_blocked"
    #: The STUN request fails and so does every UDP canary on the network: no UDP works
    #: there at all (the network's state, not the service's).
    UDP_DOWN = "udp_down"


VERDICTS: tuple[Verdict, ...] = tuple(Verdict)

#: Verdicts that mean someone is interfering (`messaging_probe_blocked` = 1).
BLOCKED: frozenset[Verdict] = frozenset(
    {
        Verdict.DNS_TAMPERED,
        Verdict.TCP_BLOCKED,
        Verdict.TLS_BLOCKED,
        Verdict.TLS_MITM,
        Verdict.HTTP_BLOCKPAGE,
        Verdict.THROTTLED,
        Verdict.QUIC_BLOCKED,
        Verdict.UDP_BLOCKED,
        Verdict.PROTOCOL_BLOCKED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    verdict: Verdict
    #: One sentence of evidence for the detail page and logs (never a label).
    reason: str

    @property
    def blocked(self) -> bool:
        return self.verdict in BLOCKED


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    findings: Mapping[TupleKey, Finding]
    #: Per network: False when every canary failed there. A network with a set-up error
    #: is not in it (nothing is known of its path).
    network_up: Mapping[str, bool]
    #: Per (network, resolver): False when the resolver answered no canary question.
    resolver_up: Mapping[tuple[str, str], bool]
    #: Per (network, resolver): True when someone else answered in the resolver's place.
    resolver_intercepted: Mapping[tuple[str, str], bool]
    #: Per network with a set-up error: why it cannot be used (one line, for logs and
    #: pages; never a label).
    network_setup: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Per network up with UDP canaries (canaries with the stun check) probed past DNS this
    #: round: False when every one of them failed (no UDP works there).
    network_udp: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    #: Per (service, network) judged: blocked or not, by which methods
    #: (exporter.judge.summary.service_states of the findings).
    services: Mapping[Cell, ServiceState] = field(default_factory=lambda: MappingProxyType({}))


EMPTY_JUDGEMENT = Judgement(
    findings=MappingProxyType({}),
    network_up=MappingProxyType({}),
    resolver_up=MappingProxyType({}),
    resolver_intercepted=MappingProxyType({}),
)


#: (service, network)
Cell = tuple[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceState:
    """One service on one network after a round."""

    service: str
    network: str
    #: The blocking verdicts of its tuples now, in METHODS order; empty when not blocked.
    methods: tuple[Verdict, ...]
    #: False when every tuple of it there is `network_down` or `setup_error`.
    known: bool = True

    @property
    def blocked(self) -> bool:
        return bool(self.methods)
