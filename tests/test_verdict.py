"""The judgement rules as a table: each row is a round of facts and the verdicts it must give.

Every case named in the verdicts issue has a row; the negatives (an outage is not blocked, a
dead network is not blocked, a DoH answer is not tampered) are rows too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest

from exporter.config.model import Config, Throttling
from exporter.judge.answers import is_bogon
from exporter.judge.difference import ResponseShape
from exporter.judge.verdict import judge
from exporter.model.judgement import BLOCKED, Verdict
from exporter.model.observation import (
    ConnectAttempt,
    ErrorKind,
    HttpObservation,
    Observation,
    PathObservation,
    PathOutcome,
    Phase,
    QuicObservation,
    TlsObservation,
    TupleKey,
)
from tests.fakes.observations import (
    FILTER_HEADERS,
    FILTER_PAGE,
    REAL,
    REAL_OTHER,
    cert,
    check,
    dns_failed,
    failed,
    key,
    lab_config,
    ok,
    page,
    with_rate,
)

C = "clean"
X = "censor"


def canaries_ok(*networks: str) -> list[Observation]:
    return [
        ok(key(n, r, service="canary", endpoint="example"), answers=("93.184.216.34",))
        for n in networks
        for r in ("isp", "google", "doh")
    ]


KIB = 1024.0
MIB = 1024.0 * 1024.0


def throttling(**options: float) -> Callable[[], Config]:
    return lambda: dataclasses.replace(lab_config(), throttling=Throttling(**options))


def with_quic(
    obs: Observation,
    error: ErrorKind | None = None,
    *,
    connected: bool | None = None,
    status: int | None = None,
) -> Observation:
    """`obs` (every TCP check passed) with the quic check run last: passed, or failed with
    `error` (before the handshake completed unless `connected`)."""
    connected = error is None if connected is None else connected
    phases = dict(obs.phases)
    phases[Phase.QUIC] = 0.02
    return dataclasses.replace(
        obs,
        error=error,
        failed_phase=None if error is None else Phase.QUIC,
        phases=MappingProxyType(phases),
        quic=QuicObservation(
            address=obs.address or REAL,
            port=443,
            server_name="web.telegram.lab",
            version="1" if connected else None,
            alpn="h3" if connected else None,
            handshake_duration=0.01 if connected else None,
            status=status,
            error=error,
            duration=0.02,
        ),
    )


def connect_failed(k: TupleKey, error: ErrorKind, address: str = REAL) -> Observation:
    """A connect that failed as a probe records it: no connected address, the attempt kept."""
    return dataclasses.replace(
        failed(k, Phase.CONNECT, error, answers=(address,)),
        address=None,
        connects=(ConnectAttempt(address=address, port=443, error=error),),
    )


@dataclass(frozen=True)
class Case:
    name: str
    observations: list[Observation]
    expected: dict[TupleKey, Verdict]
    config: Callable[[], Config] = lab_config
    #: Earlier throughput rates per tuple (the baseline rule's state across rounds).
    baselines: dict[TupleKey, tuple[float, ...]] = field(default_factory=dict)
    #: Networks the host check found unusable at the end of the round, with why.
    setup_problems: dict[str, str] = field(default_factory=dict)
    #: Each tuple's last passing plain-HTTP page (the changed-page rules' state).
    references: dict[TupleKey, ResponseShape] = field(default_factory=dict)


def located(
    obs: Observation,
    outcome: PathOutcome,
    *,
    hop: int | None = 2,
    phase: Phase | None = None,
    answer: str = "reset",
) -> Observation:
    """`obs` with what localisation found for its failing exchange (one uplink, the
    destination 4 hops away behind routers 10.0.0.1, 10.0.1.1, 10.0.2.1)."""
    return dataclasses.replace(
        obs,
        path=PathObservation(
            phase=phase or obs.failed_phase or Phase.HTTP,
            outcome=outcome,
            distance=4,
            hop=hop,
            answer=answer,
            routers=("10.0.0.1", "10.0.1.1", "10.0.2.1"),
            detail=f"{answer} at TTL {hop}",
        ),
    )


BEFORE = PathOutcome.BEFORE_DESTINATION

#: One uplink: the cases issue 21 is about. No other network is a control.
PATH_CASES = [
    Case(
        "13 one uplink: a reset from hop 2, before the destination, is tcp_blocked",
        [
            located(failed(key(X, "google"), Phase.CONNECT, ErrorKind.REFUSED), BEFORE),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.TCP_BLOCKED},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "13 one uplink: a drop at a hop other traffic passes is tcp_blocked",
        [
            located(
                failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT),
                PathOutcome.DROPPED,
                answer="silence",
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.TCP_BLOCKED},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "14 one uplink: refused at the destination's own distance is down",
        [
            located(
                failed(key(X, "google"), Phase.CONNECT, ErrorKind.REFUSED),
                PathOutcome.AT_DESTINATION,
                hop=4,
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.DOWN},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "14 one uplink: inconclusive localisation leaves today's rules: down",
        [
            located(
                failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT),
                PathOutcome.INCONCLUSIVE,
                hop=None,
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.DOWN},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "14 evidence of another phase says nothing about this one",
        [
            located(
                failed(key(X, "google"), Phase.CONNECT, ErrorKind.REFUSED), BEFORE, phase=Phase.TLS
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.DOWN},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "12a one uplink: the connect timed out while another resolver's probe connected to the "
        "same address on this network: a passing failure (a blip), down, not blocked",
        [
            connect_failed(key(X, "isp"), ErrorKind.TIMEOUT),
            ok(key(X, "google")),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DOWN, key(X, "google"): Verdict.OK},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "13 one uplink: the same with a reset from hop 2 localised: the path's evidence wins",
        [
            located(connect_failed(key(X, "isp"), ErrorKind.REFUSED), BEFORE),
            ok(key(X, "google")),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.TCP_BLOCKED},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "13 one uplink: the connect to one address failed while another resolver's probe "
        "connected to another address on this network: tcp_blocked",
        [
            connect_failed(key(X, "isp"), ErrorKind.TIMEOUT),
            ok(key(X, "google"), answers=(REAL_OTHER,)),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.TCP_BLOCKED},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "14 one uplink: refused at the destination's own distance while another resolver's "
        "probe connected to another address of the name there: that site is down, not blocked",
        [
            located(
                connect_failed(key(X, "isp"), ErrorKind.REFUSED),
                PathOutcome.AT_DESTINATION,
                hop=4,
            ),
            ok(key(X, "google"), answers=(REAL_OTHER,)),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DOWN},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "13 the same at the destination's distance, while the same address connected on "
        "another network: a control network still decides, tcp_blocked",
        [
            located(
                connect_failed(key(X, "isp"), ErrorKind.REFUSED),
                PathOutcome.AT_DESTINATION,
                hop=4,
            ),
            ok(key(C, "isp")),
            *canaries_ok(C, X),
        ],
        {key(X, "isp"): Verdict.TCP_BLOCKED},
    ),
    Case(
        "12a one uplink: the handshake timed out while another resolver's probe completed a "
        "verified handshake with the same address on this network: a passing failure, down",
        [
            failed(key(X, "isp"), Phase.TLS, ErrorKind.TIMEOUT),
            ok(key(X, "google")),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DOWN},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "12a one uplink: an overloaded server times out one handshake while the control SNI "
        "(made just before) got a reply and another resolver's probe completed the real one "
        "with the same address: the name is not filtered there, down",
        [
            failed(
                key(X, "isp"),
                Phase.TLS,
                ErrorKind.TIMEOUT,
                control=TlsObservation(server_name="example.com", error=ErrorKind.CERT_HOSTNAME),
            ),
            ok(key(X, "google")),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DOWN},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "17 one uplink: every probe of the name times out while the control SNI got a reply: "
        "SNI filtering, tls_blocked",
        [
            failed(
                key(X, r),
                Phase.TLS,
                ErrorKind.TIMEOUT,
                control=TlsObservation(server_name="example.com", error=ErrorKind.CERT_HOSTNAME),
            )
            for r in ("isp", "google")
        ]
        + canaries_ok(X),
        {key(X, "isp"): Verdict.TLS_BLOCKED, key(X, "google"): Verdict.TLS_BLOCKED},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "18 one uplink: the ClientHello reset by hop 1 is tls_blocked",
        [
            located(failed(key(X, "google"), Phase.TLS, ErrorKind.RESET), BEFORE, hop=1),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.TLS_BLOCKED},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "19 one uplink: a TLS failure at the destination is down",
        [
            located(
                failed(key(X, "google"), Phase.TLS, ErrorKind.TLS_ERROR),
                PathOutcome.AT_DESTINATION,
                hop=4,
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.DOWN},
        lambda: lab_config(networks=(X,)),
    ),
    *(
        Case(
            f"15 one uplink, an unknown authority everywhere, the control SNI {said}: {verdict}",
            [
                failed(
                    key(X, "google"),
                    Phase.TLS,
                    ErrorKind.CERT_UNKNOWN_AUTHORITY,
                    tls=TlsObservation(
                        server_name="web.telegram.lab",
                        certificate=cert("Evil CA", verified=False),
                        error=ErrorKind.CERT_UNKNOWN_AUTHORITY,
                    ),
                    control=control,
                ),
                *canaries_ok(X),
            ],
            {key(X, "google"): verdict},
            lambda: lab_config(networks=(X,)),
        )
        for said, control, verdict in [
            (
                "got a trusted chain for its own name (a CDN that also serves it): proves "
                "nothing of the real name's root, down",
                TlsObservation(server_name="example.com", certificate=cert("Lab CA")),
                Verdict.DOWN,
            ),
            (
                "got a trusted chain for another name (a CDN's public default certificate, its "
                "customer's on a private root, as Signal's): down",
                TlsObservation(server_name="example.com", error=ErrorKind.CERT_HOSTNAME),
                Verdict.DOWN,
            ),
            (
                "got an untrusted certificate for the control name itself: minted, tls_mitm",
                TlsObservation(
                    server_name="example.com",
                    error=ErrorKind.CERT_UNKNOWN_AUTHORITY,
                    certificate=dataclasses.replace(
                        cert("Evil CA", verified=False), sans=("example.com",)
                    ),
                ),
                Verdict.TLS_MITM,
            ),
            (
                "got the server's own untrusted certificate (its names): a root the trust "
                "lacks (the service moved to a new one), down",
                TlsObservation(
                    server_name="example.com",
                    error=ErrorKind.CERT_UNKNOWN_AUTHORITY,
                    certificate=cert("Lab Private Root", verified=False),
                ),
                Verdict.DOWN,
            ),
            (
                "got an unknown authority, its certificate unread: down",
                TlsObservation(server_name="example.com", error=ErrorKind.CERT_UNKNOWN_AUTHORITY),
                Verdict.DOWN,
            ),
            (
                "was reset: nothing tells, down",
                TlsObservation(server_name="example.com", error=ErrorKind.RESET),
                Verdict.DOWN,
            ),
            ("not configured: nothing tells, down", None, Verdict.DOWN),
        ]
    ),
    Case(
        "16 a wrong name everywhere is still down; from a hop before the destination, MITM",
        [
            failed(key(X, "google"), Phase.TLS, ErrorKind.CERT_HOSTNAME),
            located(
                failed(key(X, "doh"), Phase.TLS, ErrorKind.CERT_HOSTNAME),
                BEFORE,
                hop=1,
                answer="answer",
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.DOWN, key(X, "doh"): Verdict.TLS_MITM},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "20 one uplink: an unknown page refused by status, served by hop 1, is a blockpage",
        [
            located(
                failed(
                    key(X, "google"),
                    Phase.HTTP,
                    ErrorKind.HTTP_STATUS,
                    http=HttpObservation(method="GET", url="http://x/", status=403),
                ),
                BEFORE,
                hop=1,
                answer="answer",
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE},
        lambda: lab_config(networks=(X,)),
    ),
]


def shape(obs: Observation) -> ResponseShape:
    assert obs.http is not None
    found = ResponseShape.of(obs.http)
    assert found is not None
    return found


ONE = lambda: lab_config(networks=(X,))  # noqa: E731 (a table cell)
AT = PathOutcome.AT_DESTINATION
#: The filter's page, as a passing plain-HTTP probe got it.
FILTERED = page(key(X, "google"), FILTER_PAGE, headers=FILTER_HEADERS)
#: The service's own page, as an earlier round got it: the tuple's reference.
LAST = {
    key(X, "google"): shape(page(key(X, "google"))),
    key(C, "google"): shape(page(key(C, "google"))),
}

#: Unknown blockpages on plain HTTP (rules 8c and 20): http-diff against a control or the
#: tuple's own last passing page, and the path. Negatives first among equals.
PAGE_CASES = [
    Case(
        "8c one uplink: a page served by hop 2, nothing to compare: http_blockpage",
        [located(FILTERED, BEFORE, answer="answer"), *canaries_ok(X)],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE},
        ONE,
    ),
    Case(
        "8c one uplink: a proxy at hop 2 relaying the service's own page is ok",
        [located(page(key(X, "google")), BEFORE, answer="answer"), *canaries_ok(X)],
        {key(X, "google"): Verdict.OK},
        ONE,
        references=LAST,
    ),
    Case(
        "8c one uplink: unlike its last passing page on all three criteria (ICMP filtered): "
        "http_blockpage",
        [located(FILTERED, PathOutcome.INCONCLUSIVE, hop=None), *canaries_ok(X)],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE},
        ONE,
        references=LAST,
    ),
    Case(
        "8c one uplink: a page found at the destination's own distance is the service's, "
        "however it changed",
        [located(FILTERED, AT, hop=4, answer="answer"), *canaries_ok(X)],
        {key(X, "google"): Verdict.OK},
        ONE,
        references=LAST,
    ),
    Case(
        "8c a new status with the same page against a stale reference is no blockpage",
        [page(key(X, "google"), status=404), *canaries_ok(X)],
        {key(X, "google"): Verdict.OK},
        ONE,
        references=LAST,
    ),
    Case(
        "8c an empty page is no evidence either way against a stale reference",
        [page(key(X, "google"), b"", headers=FILTER_HEADERS), *canaries_ok(X)],
        {key(X, "google"): Verdict.OK},
        ONE,
        references=LAST,
    ),
    Case(
        "8c one uplink, nothing compares and the path says nothing: ok (undecided is not blocked)",
        [FILTERED, *canaries_ok(X)],
        {key(X, "google"): Verdict.OK},
        ONE,
    ),
    Case(
        "8c two networks: unlike the vouched page of the same address elsewhere: "
        "http_blockpage, and the control stays ok",
        [FILTERED, page(key(C, "google")), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE, key(C, "google"): Verdict.OK},
        references={key(C, "google"): LAST[key(C, "google")]},
    ),
    Case(
        "8c two networks see two pages and nothing vouches for either: neither is blocked",
        [FILTERED, page(key(C, "google")), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.OK, key(C, "google"): Verdict.OK},
    ),
    Case(
        "8c the control is vouched for by its path (found at the destination)",
        [FILTERED, located(page(key(C, "google")), AT, hop=4), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE, key(C, "google"): Verdict.OK},
    ),
    Case(
        "8c a vouched page at another address is no control (a CDN's other site)",
        [FILTERED, page(key(C, "google"), address=REAL_OTHER), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.OK},
        references={key(C, "google"): LAST[key(C, "google")]},
    ),
    Case(
        "8c over TLS another page is the service's: whoever answers holds the name's key",
        [
            ok(key(X, "google"), body=FILTER_PAGE),
            located(ok(key(C, "google"), body=b"<title>Telegram Datacenter</title>"), AT),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.OK},
    ),
    Case(
        "20 a status refused here while the vouched page of the same address passed "
        "elsewhere: http_blockpage",
        [
            page(key(X, "google"), status=403, error=ErrorKind.HTTP_STATUS),
            page(key(C, "google")),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE},
        references={key(C, "google"): LAST[key(C, "google")]},
    ),
    Case(
        "21 a refused status with the service's own page, relayed by a proxy: not a "
        "blockpage; the same failure elsewhere: down",
        [
            located(
                page(key(X, "google"), status=503, error=ErrorKind.HTTP_STATUS),
                BEFORE,
                answer="answer",
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.DOWN},
        ONE,
        references=LAST,
    ),
    Case(
        "20 HTTP cut by a hop before the destination, no page at all: http_blockpage",
        [
            located(failed(key(X, "google"), Phase.HTTP, ErrorKind.RESET), BEFORE),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE},
        ONE,
    ),
]


def rated(k: TupleKey, bytes_per_second: float) -> Observation:
    return with_rate(ok(k), bytes_per_second)


#: Throttling (rules 8a and 8b), negatives included.
THROTTLE_CASES = [
    Case(
        "8a throughput far below the same endpoint's on another network: throttled",
        [rated(key(X, "google"), 40 * KIB), rated(key(C, "google"), 20 * MIB), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.THROTTLED, key(C, "google"): Verdict.OK},
    ),
    Case(
        "8a every network equally slow: not throttled (the service is slow)",
        [rated(key(X, "google"), 40 * KIB), rated(key(C, "google"), 40 * KIB), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.OK, key(C, "google"): Verdict.OK},
    ),
    Case(
        "8a slower, but not below ratio x the best other network: not throttled",
        [rated(key(X, "google"), 6 * MIB), rated(key(C, "google"), 20 * MIB), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.OK},
    ),
    Case(
        "8a another resolver on the same network is no control (same path)",
        [rated(key(X, "google"), 40 * KIB), rated(key(X, "doh"), 20 * MIB), *canaries_ok(X)],
        {key(X, "google"): Verdict.OK, key(X, "doh"): Verdict.OK},
    ),
    Case(
        "8a fast enough (min_bytes_per_second) is never throttled, however fast elsewhere",
        [rated(key(X, "google"), 2 * MIB), rated(key(C, "google"), 100 * MIB), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.OK},
        throttling(min_bytes_per_second=MIB),
    ),
    Case(
        "8a below min_bytes_per_second and far below elsewhere: throttled",
        [rated(key(X, "google"), 100 * KIB), rated(key(C, "google"), 20 * MIB), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.THROTTLED},
        throttling(min_bytes_per_second=MIB),
    ),
    Case(
        "8a a higher ratio catches a milder slowdown",
        [rated(key(X, "google"), 6 * MIB), rated(key(C, "google"), 20 * MIB), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.THROTTLED},
        throttling(ratio=0.5),
    ),
    Case(
        "8b one slow network alone, nothing to compare and no baseline: not throttled",
        [rated(key(X, "google"), 10 * KIB), *canaries_ok(X)],
        {key(X, "google"): Verdict.OK},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "8b one network alone, far below its own baseline: throttled",
        [rated(key(X, "google"), 100 * KIB), *canaries_ok(X)],
        {key(X, "google"): Verdict.THROTTLED},
        lambda: lab_config(networks=(X,)),
        {key(X, "google"): (9 * MIB, 10 * MIB, 11 * MIB, 10 * MIB)},
    ),
    Case(
        "8b too few earlier rounds for a baseline: not throttled",
        [rated(key(X, "google"), 100 * KIB), *canaries_ok(X)],
        {key(X, "google"): Verdict.OK},
        lambda: lab_config(networks=(X,)),
        {key(X, "google"): (10 * MIB, 10 * MIB)},
    ),
    Case(
        "8b only the last baseline_rounds count: an old fast round is forgotten",
        [rated(key(X, "google"), 100 * KIB), *canaries_ok(X)],
        {key(X, "google"): Verdict.OK},
        lambda: dataclasses.replace(
            lab_config(networks=(X,)), throttling=Throttling(baseline_rounds=3)
        ),
        {key(X, "google"): (10 * MIB, 10 * MIB, 90 * KIB, 100 * KIB, 110 * KIB)},
    ),
    Case(
        "8b every network dropped below its baseline alike: not throttled (the service)",
        [rated(key(X, "google"), MIB), rated(key(C, "google"), MIB), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.OK, key(C, "google"): Verdict.OK},
        lab_config,
        {key(X, "google"): (10 * MIB,) * 5, key(C, "google"): (10 * MIB,) * 5},
    ),
    Case(
        "8b below its own baseline while another network kept its own: throttled",
        [rated(key(X, "google"), 2 * MIB), rated(key(C, "google"), 3 * MIB), *canaries_ok(C, X)],
        {key(X, "google"): Verdict.THROTTLED, key(C, "google"): Verdict.OK},
        lab_config,
        {key(X, "google"): (10 * MIB,) * 5, key(C, "google"): (3 * MIB,) * 5},
    ),
    Case(
        "8b baseline_rounds 0 turns the baseline off",
        [rated(key(X, "google"), 100 * KIB), *canaries_ok(X)],
        {key(X, "google"): Verdict.OK},
        lambda: dataclasses.replace(
            lab_config(networks=(X,)), throttling=Throttling(baseline_rounds=0)
        ),
        {key(X, "google"): (10 * MIB,) * 5},
    ),
    Case(
        "1 a slow network whose canaries fail is network_down, never throttled",
        [
            rated(key(X, "google"), 10 * KIB),
            rated(key(C, "google"), 20 * MIB),
            failed(key(X, "google", "canary", "example"), Phase.CONNECT, ErrorKind.TIMEOUT),
            *canaries_ok(C),
        ],
        {key(X, "google"): Verdict.NETWORK_DOWN, key(C, "google"): Verdict.OK},
    ),
    Case(
        "3 a tampered answer wins over a slow download",
        [
            with_rate(ok(key(X, "isp"), answers=("10.10.34.35",)), 10 * KIB),
            rated(key(C, "google"), 20 * MIB),
            *canaries_ok(C, X),
        ],
        {key(X, "isp"): Verdict.DNS_TAMPERED},
    ),
    Case(
        "1 a shutdown: every canary and every service fails on the network, none blocked",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT),
            failed(key(X, "doh"), Phase.DNS, ErrorKind.TIMEOUT, answers=()),
            failed(key(X, "google", "canary", "example"), Phase.CONNECT, ErrorKind.TIMEOUT),
            failed(key(X, "isp", "canary", "example"), Phase.CONNECT, ErrorKind.TIMEOUT),
            rated(key(C, "google"), 20 * MIB),
            *canaries_ok(C),
        ],
        {
            key(X, "google"): Verdict.NETWORK_DOWN,
            key(X, "doh"): Verdict.NETWORK_DOWN,
            key(X, "google", "canary", "example"): Verdict.NETWORK_DOWN,
            key(C, "google"): Verdict.OK,
        },
    ),
    Case(
        "1 a shutdown without canaries: every probe on the network fails",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT),
            failed(key(X, "isp"), Phase.CONNECT, ErrorKind.TIMEOUT),
            rated(key(C, "google"), 20 * MIB),
        ],
        {key(X, "google"): Verdict.NETWORK_DOWN, key(X, "isp"): Verdict.NETWORK_DOWN},
    ),
    Case(
        "8a a failed probe elsewhere is no control, even with a rate",
        [
            rated(key(X, "google"), 40 * KIB),
            with_rate(failed(key(C, "google"), Phase.HTTP, ErrorKind.HTTP_STATUS), 20 * MIB),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.OK},
    ),
]


def quic_canaries(*networks: str, error: ErrorKind | None = None) -> list[Observation]:
    return [with_quic(o, error) for o in canaries_ok(*networks)]


#: The quic check (rules 21a-21c), negatives included.
QUIC_CASES = [
    Case(
        "21a QUIC dropped on one network while TCP+TLS worked there and QUIC elsewhere",
        [
            with_quic(ok(key(X, "google")), ErrorKind.TIMEOUT),
            with_quic(ok(key(C, "google"))),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.QUIC_BLOCKED, key(C, "google"): Verdict.OK},
    ),
    Case(
        "21a QUIC refused (ICMP) to one address, while it works to another on the same network",
        [
            with_quic(ok(key(X, "google")), ErrorKind.REFUSED),
            with_quic(ok(key(X, "doh"), answers=(REAL_OTHER,))),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.QUIC_BLOCKED, key(X, "doh"): Verdict.OK},
    ),
    Case(
        "21c QUIC failing on every network while TCP works everywhere: down, not blocked",
        [
            with_quic(ok(key(X, "google")), ErrorKind.TIMEOUT),
            with_quic(ok(key(C, "google")), ErrorKind.TIMEOUT),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.DOWN, key(C, "google"): Verdict.DOWN},
    ),
    Case(
        "21c one network alone: QUIC failing while TCP+TLS works cannot be told from a "
        "service without QUIC",
        [with_quic(ok(key(X, "google")), ErrorKind.TIMEOUT), *canaries_ok(X)],
        {key(X, "google"): Verdict.DOWN},
        lambda: lab_config(networks=(X,)),
    ),
    Case(
        "14 QUIC never ran: TCP failing everywhere is down",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT),
            failed(key(C, "google"), Phase.CONNECT, ErrorKind.TIMEOUT),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.DOWN, key(C, "google"): Verdict.DOWN},
    ),
    Case(
        "13 a peer that failed only at QUIC did connect: TCP refused here is tcp_blocked",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.REFUSED),
            with_quic(ok(key(C, "google")), ErrorKind.TIMEOUT),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.TCP_BLOCKED, key(C, "google"): Verdict.DOWN},
    ),
    Case(
        "1 a network whose canaries fail only at QUIC is up: QUIC blocking, not a shutdown",
        [
            with_quic(ok(key(X, "google")), ErrorKind.TIMEOUT),
            with_quic(ok(key(C, "google"))),
            *quic_canaries(X, error=ErrorKind.TIMEOUT),
            *quic_canaries(C),
        ],
        {key(X, "google"): Verdict.QUIC_BLOCKED, key(C, "google"): Verdict.OK},
    ),
    Case(
        "21b the HTTP/3 request failed after the handshake while it passed elsewhere: "
        "http_failed, not blocked",
        [
            with_quic(ok(key(X, "google")), ErrorKind.RESET, connected=True),
            with_quic(ok(key(C, "google")), status=200),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.HTTP_FAILED, key(C, "google"): Verdict.OK},
    ),
    Case(
        "21b the HTTP/3 request failing everywhere is down",
        [
            with_quic(ok(key(X, "google")), ErrorKind.HTTP_STATUS, connected=True, status=503),
            with_quic(ok(key(C, "google")), ErrorKind.HTTP_STATUS, connected=True, status=503),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.DOWN, key(C, "google"): Verdict.DOWN},
    ),
    Case(
        "3 a DNS lie is judged before QUIC",
        [
            with_quic(ok(key(X, "isp"), answers=("10.10.34.35",)), ErrorKind.TIMEOUT),
            with_quic(ok(key(C, "google"))),
            *canaries_ok(C, X),
        ],
        {key(X, "isp"): Verdict.DNS_TAMPERED},
    ),
]


CASES = [
    Case(
        "8 a header only a national filter sends (Server: WireFilter) is a blockpage",
        [
            dataclasses.replace(
                ok(key(X, "google")),
                http=HttpObservation(
                    method="GET",
                    url="https://web.telegram.lab/",
                    status=200,
                    headers=(("Server", "Protected by WireFilter 8000 (ksa-riyadh)"),),
                    body_head=b"<html>an ordinary looking page</html>",
                ),
            ),
            ok(key(C, "google")),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE, key(C, "google"): Verdict.OK},
    ),
    Case(
        "20 the same header on a refused status is a blockpage too; an ordinary Server is not",
        [
            failed(
                key(X, "google"),
                Phase.HTTP,
                ErrorKind.HTTP_STATUS,
                http=HttpObservation(
                    method="GET",
                    url="https://web.telegram.lab/",
                    status=403,
                    headers=(("server", "Protected by WireFilter"),),
                ),
            ),
            failed(
                key(X, "doh"),
                Phase.HTTP,
                ErrorKind.HTTP_STATUS,
                http=HttpObservation(
                    method="GET",
                    url="https://web.telegram.lab/",
                    status=403,
                    headers=(("Server", "nginx/1.22.1 WireFilter-free"),),
                ),
            ),
            ok(key(C, "google")),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE, key(X, "doh"): Verdict.HTTP_FAILED},
    ),
    Case(
        "1 clean path is ok",
        [ok(key(C, "google")), ok(key(C, "doh")), *canaries_ok(C)],
        {key(C, "google"): Verdict.OK, key(C, "doh"): Verdict.OK},
    ),
    Case(
        "2 bogon answer from the ISP resolver (Iran 10.10.34.35)",
        [
            failed(key(X, "isp"), Phase.CONNECT, ErrorKind.TIMEOUT, answers=("10.10.34.35",)),
            ok(key(X, "doh")),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DNS_TAMPERED, key(X, "doh"): Verdict.OK},
    ),
    Case(
        "2 private bogon even when the connection then succeeds",
        [ok(key(X, "isp"), answers=("192.168.1.1",)), *canaries_ok(X)],
        {key(X, "isp"): Verdict.DNS_TAMPERED},
    ),
    Case(
        "2 IPv6 sinkhole d0::11 / Turkey 195.175.254.2 (blockpage_addresses)",
        [ok(key(X, "isp"), answers=("195.175.254.2",)), ok(key(X, "doh")), *canaries_ok(X)],
        {key(X, "isp"): Verdict.DNS_TAMPERED, key(X, "doh"): Verdict.OK},
    ),
    Case(
        "5 answer outside expected_networks, its handshake not verified for the name",
        [
            failed(key(X, "isp"), Phase.TLS, ErrorKind.CERT_HOSTNAME, answers=("5.3.3.17",)),
            ok(key(X, "doh")),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DNS_TAMPERED, key(X, "doh"): Verdict.OK},
        lambda: lab_config(expected_networks=("91.108.56.0/22",)),
    ),
    Case(
        "5 outside expected_networks but verified for the name (a cache inside the ISP): ok",
        [ok(key(X, "isp"), answers=("5.3.3.17",)), ok(key(X, "doh")), *canaries_ok(X)],
        {key(X, "isp"): Verdict.OK, key(X, "doh"): Verdict.OK},
        lambda: lab_config(expected_networks=("91.108.56.0/22",)),
    ),
    Case(
        "5 outside expected_networks and never connected to: tampered",
        [
            failed(key(X, "isp"), Phase.CONNECT, ErrorKind.TIMEOUT, answers=("5.3.3.17",)),
            ok(key(X, "doh")),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DNS_TAMPERED},
        lambda: lab_config(expected_networks=("91.108.56.0/22",)),
    ),
    Case(
        "4 a private address inside expected_networks is no bogon (a private deployment)",
        [
            ok(key(C, "isp"), answers=("10.20.0.5",)),
            ok(key(C, "doh"), answers=("10.20.0.5",)),
            *canaries_ok(C),
        ],
        {key(C, "isp"): Verdict.OK, key(C, "doh"): Verdict.OK},
        lambda: lab_config(expected_networks=("10.20.0.0/16",)),
    ),
    Case(
        "3 a blockpage address is a lie even inside expected_networks",
        [ok(key(X, "isp"), answers=("10.10.34.35",)), ok(key(X, "doh")), *canaries_ok(X)],
        {key(X, "isp"): Verdict.DNS_TAMPERED},
        lambda: lab_config(expected_networks=("10.0.0.0/8", "91.108.56.0/22")),
    ),
    Case(
        "6 geo-DNS: another real site of the name, verified by its own handshake, is ok",
        [ok(key(C, "isp"), answers=("149.154.167.99",)), ok(key(C, "doh")), *canaries_ok(C)],
        {key(C, "isp"): Verdict.OK, key(C, "doh"): Verdict.OK},
    ),
    Case(
        "6 geo-DNS: the site verified on another network vouches for it; TLS judges the rest",
        [
            failed(key(X, "isp"), Phase.TLS, ErrorKind.RESET, answers=("149.154.167.99",)),
            ok(key(C, "isp"), answers=("149.154.167.99",)),
            ok(key(X, "doh")),
            *canaries_ok(C, X),
        ],
        {key(X, "isp"): Verdict.TLS_BLOCKED, key(C, "isp"): Verdict.OK},
    ),
    Case(
        "6 an injector's foreign address that refuses: nothing vouches for it, tampered",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.REFUSED, answers=("76.223.0.99",)),
            ok(key(X, "doh")),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.DNS_TAMPERED, key(X, "doh"): Verdict.OK},
    ),
    Case(
        "6 an outage: no handshake completes anywhere, and the ISP's resolver answered another "
        "/24 than DoH (a CDN's other site): nothing proves either answer, so neither is a lie "
        "by comparison; down, not tampered",
        [
            connect_failed(key(X, "isp"), ErrorKind.TIMEOUT, address="76.223.0.99"),
            connect_failed(key(X, "doh"), ErrorKind.TIMEOUT),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DOWN, key(X, "doh"): Verdict.DOWN},
    ),
    Case(
        "6 a handshake that completed without verification vouches for nothing",
        [
            dataclasses.replace(
                ok(key(X, "isp"), answers=("5.3.3.17",)),
                tls=TlsObservation(
                    server_name="web.telegram.lab", certificate=cert(verified=False)
                ),
            ),
            ok(key(X, "doh")),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DNS_TAMPERED},
    ),
    Case(
        "2 inside expected_networks is consistent even if other resolvers differ",
        [ok(key(X, "isp"), answers=("91.108.57.1",)), ok(key(X, "doh")), *canaries_ok(X)],
        {key(X, "isp"): Verdict.OK},
        lambda: lab_config(expected_networks=("91.108.56.0/22",)),
    ),
    Case(
        "2 disjoint from the encrypted resolver's answer; DoH itself not tampered",
        [
            failed(key(X, "isp"), Phase.TLS, ErrorKind.CERT_HOSTNAME, answers=("5.3.3.17",)),
            ok(key(X, "doh")),
            *canaries_ok(X),
        ],
        {key(X, "isp"): Verdict.DNS_TAMPERED, key(X, "doh"): Verdict.OK},
    ),
    Case(
        "2 same /24 as the encrypted answer is consistent (CDN spread)",
        [ok(key(X, "isp"), answers=(REAL_OTHER,)), ok(key(X, "doh")), *canaries_ok(X)],
        {key(X, "isp"): Verdict.OK},
    ),
    Case(
        "2 NXDOMAIN while other resolvers answer",
        [dns_failed(key(X, "isp"), ErrorKind.DNS_NXDOMAIN), ok(key(X, "doh")), *canaries_ok(X)],
        {key(X, "isp"): Verdict.DNS_TAMPERED, key(X, "doh"): Verdict.OK},
    ),
    Case(
        "7 NXDOMAIN through every resolver is down, not tampering",
        [
            dns_failed(key(C, "isp"), ErrorKind.DNS_NXDOMAIN),
            dns_failed(key(C, "google"), ErrorKind.DNS_NXDOMAIN),
            dns_failed(key(C, "doh"), ErrorKind.DNS_NXDOMAIN),
            *canaries_ok(C),
        ],
        {
            key(C, "isp"): Verdict.DOWN,
            key(C, "google"): Verdict.DOWN,
            key(C, "doh"): Verdict.DOWN,
        },
    ),
    Case(
        "4 TCP reset on one network, fine on another",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.REFUSED),
            ok(key(C, "google")),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.TCP_BLOCKED, key(C, "google"): Verdict.OK},
    ),
    Case(
        "4 TCP drop (timeout) on one network, fine on another",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT),
            ok(key(C, "google")),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.TCP_BLOCKED, key(C, "google"): Verdict.OK},
    ),
    Case(
        "7 refused on every network is down, not blocked",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.REFUSED),
            failed(key(C, "google"), Phase.CONNECT, ErrorKind.REFUSED),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.DOWN, key(C, "google"): Verdict.DOWN},
    ),
    Case(
        "5 TLS reset after the ClientHello while the control SNI got a reply",
        [
            failed(
                key(X, "google"),
                Phase.TLS,
                ErrorKind.RESET,
                control=TlsObservation(server_name="example.lab", certificate=cert()),
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.TLS_BLOCKED},
    ),
    Case(
        "5 TLS silence with the control SNI also silent, and nowhere better: down",
        [
            failed(
                key(X, "google"),
                Phase.TLS,
                ErrorKind.TIMEOUT,
                control=TlsObservation(server_name="example.lab", error=ErrorKind.TIMEOUT),
            ),
            *canaries_ok(X),
        ],
        {key(X, "google"): Verdict.DOWN},
    ),
    Case(
        "5 TLS reset here, handshake fine on the clean network (no control SNI)",
        [
            failed(key(X, "google"), Phase.TLS, ErrorKind.RESET),
            ok(key(C, "google")),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.TLS_BLOCKED, key(C, "google"): Verdict.OK},
    ),
    Case(
        "5 foreign CA here, validates elsewhere: MITM",
        [
            failed(
                key(X, "google"),
                Phase.TLS,
                ErrorKind.CERT_UNKNOWN_AUTHORITY,
                tls=TlsObservation(
                    server_name="web.telegram.lab",
                    certificate=cert("Evil CA", verified=False),
                    error=ErrorKind.CERT_UNKNOWN_AUTHORITY,
                ),
            ),
            ok(key(C, "google")),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.TLS_MITM, key(C, "google"): Verdict.OK},
    ),
    Case(
        "7 certificate rejected everywhere is down (the service's own fault)",
        [
            failed(key(X, "google"), Phase.TLS, ErrorKind.CERT_EXPIRED),
            failed(key(C, "google"), Phase.TLS, ErrorKind.CERT_EXPIRED),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.DOWN, key(C, "google"): Verdict.DOWN},
    ),
    Case(
        "6 blockpage body served with 200",
        [
            ok(key(X, "google"), body=b"<html><TITLE>Access Denied</title>by order of</html>"),
            ok(key(C, "google")),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.HTTP_BLOCKPAGE, key(C, "google"): Verdict.OK},
    ),
    Case(
        "6 HTTP failure elsewhere fine, no blockpage pattern: http_failed",
        [
            failed(key(X, "google"), Phase.HTTP, ErrorKind.HTTP_STATUS),
            ok(key(C, "google")),
            *canaries_ok(C, X),
        ],
        {key(X, "google"): Verdict.HTTP_FAILED},
    ),
    Case(
        "8 every canary fails: network_down, not blocked",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT),
            ok(key(C, "google")),
            failed(key(X, "google", "canary", "example"), Phase.CONNECT, ErrorKind.TIMEOUT),
            *canaries_ok(C),
        ],
        {key(X, "google"): Verdict.NETWORK_DOWN, key(C, "google"): Verdict.OK},
    ),
    Case(
        "8 a resolver that answers nothing is dns_failed, not tampering",
        [
            dns_failed(key(X, "isp"), ErrorKind.TIMEOUT),
            dns_failed(key(X, "isp", "canary", "example"), ErrorKind.TIMEOUT),
            ok(key(X, "google")),
            ok(key(X, "google", "canary", "example")),
        ],
        {key(X, "isp"): Verdict.DNS_FAILED, key(X, "google"): Verdict.OK},
    ),
    Case(
        "0 the exporter's own proxy failing is a set-up error, not a shutdown",
        [failed(key(X, "google"), Phase.CONNECT, ErrorKind.PROXY), ok(key(C, "google"))],
        {key(X, "google"): Verdict.SETUP_ERROR},
    ),
    Case(
        "0 a network whose interface is gone: setup_error everywhere on it, never network_down",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.NETWORK_SETUP),
            failed(key(X, "google", "canary", "example"), Phase.CONNECT, ErrorKind.NETWORK_SETUP),
            dns_failed(key(X, "isp"), ErrorKind.NETWORK_SETUP),
            ok(key(C, "google")),
            *canaries_ok(C),
        ],
        {
            key(X, "google"): Verdict.SETUP_ERROR,
            key(X, "isp"): Verdict.SETUP_ERROR,
            key(X, "google", "canary", "example"): Verdict.SETUP_ERROR,
            key(C, "google"): Verdict.OK,
        },
        setup_problems={X: 'networks.censor.interface: no such interface "wg0"'},
    ),
    Case(
        "0 every canary failing on the exporter's own path is a set-up error by itself",
        [
            failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT),
            *[
                failed(key(X, r, "canary", "example"), Phase.CONNECT, ErrorKind.PROXY)
                for r in ("isp", "google", "doh")
            ],
            ok(key(C, "google")),
            *canaries_ok(C),
        ],
        {key(X, "google"): Verdict.SETUP_ERROR, key(C, "google"): Verdict.OK},
    ),
    Case(
        "0 the host check outranks the round: probed before the interface went, still setup",
        [ok(key(X, "google")), *canaries_ok(X, C), ok(key(C, "google"))],
        {key(X, "google"): Verdict.SETUP_ERROR, key(C, "google"): Verdict.OK},
        setup_problems={X: 'networks.censor.netns: no such network namespace "vpn"'},
    ),
    *THROTTLE_CASES,
    *QUIC_CASES,
    *PATH_CASES,
    *PAGE_CASES,
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict_table(case: Case) -> None:
    observations = {o.key: o for o in case.observations}
    judgement = judge(
        case.config(),
        observations,
        baselines=case.baselines,
        setup_problems=case.setup_problems,
        references=case.references,
    )
    got = {k: judgement.findings[k].verdict for k in case.expected}
    assert got == case.expected, {k: judgement.findings[k].reason for k in case.expected}
    for k in case.expected:
        assert judgement.findings[k].reason


def test_network_and_resolver_health() -> None:
    observations = [
        dns_failed(key(X, "isp", "canary", "example"), ErrorKind.TIMEOUT),
        ok(key(X, "google", "canary", "example")),
        failed(key("dead", "google", "canary", "example"), Phase.CONNECT, ErrorKind.TIMEOUT),
    ]
    config = lab_config(networks=(C, X, "dead"))
    judgement = judge(config, {o.key: o for o in observations})
    assert judgement.network_up == {X: True, "dead": False}
    assert judgement.resolver_up[(X, "isp")] is False
    assert judgement.resolver_up[(X, "google")] is True


@pytest.mark.parametrize(
    ("resolver", "rcode", "answers", "error", "intercepted"),
    [
        ("silent", None, (), None, False),  # silence from a silent address: as it should be
        ("silent", None, (), ErrorKind.REFUSED, False),  # ICMP unreachable: nobody there
        ("silent", "NOERROR", ("10.10.34.35",), None, True),  # only an injector answers there
        # a malformed or oversized reply is still a reply from an address with no DNS server
        ("silent", None, (), ErrorKind.DNS_BAD_RESPONSE, True),
        ("whoami", "NOERROR", ("google-public-dns-b",), None, False),
        ("whoami", "NOERROR", ("isp-resolver-7",), None, True),  # someone else answered
        ("whoami", None, (), None, False),  # no reply: unknown, not interception
        ("whoami", None, (), ErrorKind.DNS_BAD_RESPONSE, False),  # garbage: unknown
    ],
)
def test_interception(
    resolver: str,
    rcode: str | None,
    answers: tuple[str, ...],
    error: ErrorKind | None,
    intercepted: bool,
) -> None:
    observed = check(X, resolver, rcode=rcode, answers=answers, error=error)
    judgement = judge(lab_config(), {}, {(X, resolver): observed})
    assert judgement.resolver_intercepted[(X, resolver)] is intercepted


def test_blocked_set_is_exactly_the_issue_list() -> None:
    assert {v.value for v in BLOCKED} == {
        "dns_tampered",
        "tcp_blocked",
        "tls_blocked",
        "tls_mitm",
        "http_blockpage",
        "throttled",
        "quic_blocked",
        "udp_blocked",
        "protocol_blocked",
    }
    assert [v.value for v in Verdict] == [
        "ok",
        "dns_tampered",
        "dns_failed",
        "tcp_blocked",
        "tls_blocked",
        "tls_mitm",
        "http_blockpage",
        "http_failed",
        "down",
        "network_down",
        "throttled",
        "quic_blocked",
        "setup_error",
        "udp_blocked",
        "protocol_blocked",
        "udp_down",
    ]


def test_a_set_up_error_is_no_outage_of_the_network() -> None:
    """The network the host cannot provide is named with why, and left out of network_up:
    no "network down", no outage counted, while the other network is judged as usual."""
    observations = [
        *[
            failed(key(X, r, "canary", "example"), Phase.CONNECT, ErrorKind.NETWORK_SETUP)
            for r in ("isp", "google", "doh")
        ],
        failed(key("dead", "google", "canary", "example"), Phase.CONNECT, ErrorKind.TIMEOUT),
        *canaries_ok(C),
    ]
    why = 'networks.censor.interface: no such interface "wg0"'
    judgement = judge(
        lab_config(networks=(C, X, "dead")),
        {o.key: o for o in observations},
        setup_problems={X: why, "unknown-network": "ignored: not in the config"},
    )
    assert judgement.network_setup == {X: why}
    assert judgement.network_up == {C: True, "dead": False}
    reason = judgement.findings[key(X, "google", "canary", "example")].reason
    assert why in reason


@pytest.mark.parametrize(
    ("address", "bogon"),
    [
        ("10.10.34.34", True),
        ("127.0.0.1", True),
        ("192.0.2.1", True),
        ("198.18.0.1", True),
        ("224.0.0.1", True),
        ("100.64.0.1", True),
        ("d0::11", True),
        ("fe80::1", True),
        ("2001:db8::1", True),
        ("garbage", True),
        ("149.154.167.51", False),
        ("2001:67c:4e8::1", False),
        (REAL, False),
    ],
)
def test_is_bogon(address: str, bogon: bool) -> None:
    assert is_bogon(address) is bogon


def test_throttled_keeps_the_figures_compared_as_evidence() -> None:
    observations = [rated(key(X, "google"), 40 * KIB), rated(key(C, "google"), 20 * MIB)]
    judgement = judge(lab_config(), {o.key: o for o in [*observations, *canaries_ok(C, X)]})
    reason = judgement.findings[key(X, "google")].reason
    assert reason == (
        "throughput 40.0 KiB/s is below 0.25 x the 20.0 MiB/s measured on network 'clean' "
        "in the same round"
    )
    alone = {key(X, "google"): (9 * MIB, 10 * MIB, 11 * MIB)}
    judgement = judge(
        lab_config(networks=(X,)),
        {o.key: o for o in [rated(key(X, "google"), 100 * KIB), *canaries_ok(X)]},
        baselines=alone,
    )
    assert judgement.findings[key(X, "google")].reason == (
        "throughput 100.0 KiB/s is below 0.25 x this tuple's median of 10.0 MiB/s over its "
        "last 3 rounds (no other network measured it this round)"
    )
    assert judgement.findings[key(X, "google")].blocked


def _at(obs: Observation, started: float, finished: float) -> Observation:
    return dataclasses.replace(obs, started=started, finished=finished)


def test_uplink_cut_mid_round_is_network_down_not_blocked() -> None:
    """The canary passed early in the round, the uplink went away, the service then failed,
    and a later canary failed too: the service's failure is the network's, not a block."""
    observations = [
        _at(ok(key(X, "google", "canary", "example")), 1.0, 1.2),
        _at(failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT), 2.0, 6.0),
        _at(failed(key(X, "doh", "canary", "example"), Phase.CONNECT, ErrorKind.TIMEOUT), 3.0, 7.0),
        _at(ok(key(C, "google")), 2.0, 2.1),
        *canaries_ok(C),
    ]
    judgement = judge(lab_config(), {o.key: o for o in observations})
    assert judgement.findings[key(X, "google")].verdict is Verdict.NETWORK_DOWN
    assert judgement.network_up[X] is False
    assert judgement.network_up[C] is True


def test_a_failure_probed_before_the_canary_failed_is_still_network_down() -> None:
    """Without the canary's later failure the same facts would read as tcp_blocked."""
    service_failure = _at(failed(key(X, "google"), Phase.CONNECT, ErrorKind.TIMEOUT), 2.0, 6.0)
    early_canary = _at(ok(key(X, "google", "canary", "example")), 1.0, 1.2)
    clean = [_at(ok(key(C, "google")), 2.0, 2.1), *canaries_ok(C)]
    without = judge(lab_config(), {o.key: o for o in [early_canary, service_failure, *clean]})
    assert without.findings[key(X, "google")].verdict is Verdict.TCP_BLOCKED


def test_a_canary_failing_only_at_dns_says_nothing_about_the_network() -> None:
    """A dead resolver fails the canary's DNS; the path itself works."""
    observations = [
        _at(ok(key(X, "google", "canary", "example")), 1.0, 1.2),
        _at(dns_failed(key(X, "isp", "canary", "example"), ErrorKind.TIMEOUT), 3.0, 7.0),
        _at(failed(key(X, "google"), Phase.CONNECT, ErrorKind.REFUSED), 2.0, 2.1),
        _at(ok(key(C, "google")), 2.0, 2.1),
        *canaries_ok(C),
    ]
    judgement = judge(lab_config(), {o.key: o for o in observations})
    assert judgement.network_up[X] is True
    assert judgement.findings[key(X, "google")].verdict is Verdict.TCP_BLOCKED


def _one_uplink_round(*canaries: Observation) -> dict[TupleKey, Observation]:
    """One network (X): the service reset by a censor at 2 s while another resolver's probe
    reached another address there, plus the given canary probes."""
    observations = [
        _at(failed(key(X, "isp"), Phase.CONNECT, ErrorKind.RESET), 2.0, 2.1),
        _at(ok(key(X, "google"), answers=(REAL_OTHER,)), 2.5, 2.6),
        *canaries,
    ]
    return {o.key: o for o in observations}


def _canary(
    resolver: str, endpoint: str, start: float, error: ErrorKind | None = None, *, family: int = 4
) -> Observation:
    k = dataclasses.replace(key(X, resolver, "canary", endpoint), family=family)
    obs = ok(k) if error is None else failed(k, Phase.CONNECT, error)
    return _at(obs, start, start + (0.1 if error is None else 4.0))


def test_one_canary_operator_down_all_round_is_not_the_network() -> None:
    """example's operator is out for the whole round (its probes, last in the round, time
    out) while the other canary works: the network is up and the reset is judged, not hidden
    as network_down (config.yaml: two operators, so that one's outage is not the network's)."""
    judgement = judge(
        lab_config(networks=(X,)),
        _one_uplink_round(
            *(_canary(r, "apple", 0.5 + i) for i, r in enumerate(("isp", "google", "doh"))),
            *(
                _canary(r, "example", 3.0 + i, ErrorKind.TIMEOUT)
                for i, r in enumerate(("isp", "google", "doh"))
            ),
        ),
    )
    assert judgement.network_up[X] is True
    assert judgement.findings[key(X, "isp")].verdict is Verdict.TCP_BLOCKED


def test_one_lost_canary_probe_is_not_the_network() -> None:
    """The round's last canary probe timed out once; every other probe of it and of the other
    canary worked."""
    judgement = judge(
        lab_config(networks=(X,)),
        _one_uplink_round(
            *(_canary(r, "apple", 0.5 + i) for i, r in enumerate(("isp", "google", "doh"))),
            _canary("isp", "example", 3.0),
            _canary("google", "example", 3.5),
            _canary("doh", "example", 4.0, ErrorKind.TIMEOUT),
        ),
    )
    assert judgement.network_up[X] is True
    assert judgement.findings[key(X, "isp")].verdict is Verdict.TCP_BLOCKED


def test_canaries_of_an_ip_family_the_uplink_lacks_are_not_the_network() -> None:
    """ip_families [4, 6] on an uplink whose IPv6 is black-holed: every IPv6 canary probe
    fails (and comes last in its canary's order), every IPv4 one works."""
    canaries = [
        _canary(r, c, start, None if family == 4 else ErrorKind.TIMEOUT, family=family)
        for c, base in (("apple", 0.5), ("example", 3.0))
        for i, r in enumerate(("isp", "google", "doh"))
        for family, start in ((4, base + i), (6, base + i + 0.5))
    ]
    judgement = judge(lab_config(networks=(X,)), _one_uplink_round(*canaries))
    assert judgement.network_up[X] is True
    assert judgement.findings[key(X, "isp")].verdict is Verdict.TCP_BLOCKED


def test_uplink_cut_in_the_canaries_window_is_network_down() -> None:
    """Both canaries worked, then the uplink went away: the latest probe of each failed (and
    the service's failure, probed before the last of them, is the network's too)."""
    canaries = [
        _canary("isp", "apple", 0.5),
        _canary("google", "apple", 1.5, ErrorKind.TIMEOUT),
        _canary("isp", "example", 1.0),
        _canary("google", "example", 2.2, ErrorKind.TIMEOUT),
    ]
    judgement = judge(lab_config(networks=(X,)), _one_uplink_round(*canaries))
    assert judgement.network_up[X] is False
    assert judgement.findings[key(X, "isp")].verdict is Verdict.NETWORK_DOWN


def test_quic_blocked_keeps_the_evidence() -> None:
    observations = [
        with_quic(ok(key(X, "google")), ErrorKind.TIMEOUT),
        with_quic(ok(key(C, "google"))),
        *canaries_ok(C, X),
    ]
    finding = judge(lab_config(), {o.key: o for o in observations}).findings[key(X, "google")]
    assert finding.blocked
    assert finding.reason == (
        "the QUIC handshake failed (timeout) while TCP+TLS to the same address worked, and it "
        "succeeded on network 'clean'"
    )


def test_a_passing_failure_names_the_probe_that_got_through() -> None:
    observations = [connect_failed(key(X, "isp"), ErrorKind.TIMEOUT), ok(key(X, "google"))]
    judgement = judge(
        lab_config(networks=(X,)), {o.key: o for o in [*observations, *canaries_ok(X)]}
    )
    finding = judgement.findings[key(X, "isp")]
    assert not finding.blocked
    assert finding.reason == (
        f"TCP connect failed (timeout) while a probe through resolver 'google' got through to "
        f"{REAL} on the same network in the same round: a passing failure (a lost packet, a "
        "blip), not a block of the address"
    )
