"""Builders of observations for the pure judgement tests: facts as a probe would report them,
without any socket."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from exporter.config.model import (
    Check,
    Config,
    Endpoint,
    IdentityCheck,
    Network,
    Resolver,
    ResolverType,
    Service,
)
from exporter.model.judgement import Finding, Judgement
from exporter.model.observation import (
    Certificate,
    DnsObservation,
    ErrorKind,
    HttpObservation,
    Observation,
    Phase,
    TlsObservation,
    TupleKey,
)

REAL = "91.108.56.10"  # the look-alike service address
REAL_OTHER = "91.108.56.11"


def lab_config(
    *,
    networks: tuple[str, ...] = ("clean", "censor"),
    expected_networks: tuple[str, ...] = (),
    patterns: tuple[bytes, ...] = (rb"(?i)<title>access denied", rb"blocked\.lab"),
    headers: Mapping[str, tuple[bytes, ...]] = MappingProxyType(
        {"server": (rb"^Protected by WireFilter",)}
    ),
) -> Config:
    import ipaddress

    resolvers = {
        "isp": Resolver(name="isp", type=ResolverType.UDP, address="192.0.2.53"),
        "google": Resolver(name="google", type=ResolverType.UDP, address="8.8.8.8"),
        "doh": Resolver(
            name="doh", type=ResolverType.DOH, address="1.1.1.1", url="https://1.1.1.1/dns-query"
        ),
        "silent": Resolver(name="silent", type=ResolverType.UDP, address="4.2.2.2", silent=True),
        "whoami": Resolver(
            name="whoami",
            type=ResolverType.UDP,
            address="8.8.4.4",
            identity=IdentityCheck(qname="id.server", qclass="CH", expect=re.compile(r"^google")),
        ),
    }
    web = Endpoint(
        service="telegram",
        name="web",
        host="web.telegram.lab",
        address=None,
        port=443,
        checks=(Check.DNS, Check.TCP, Check.TLS, Check.HTTP),
        resolvers=("isp", "google", "doh"),
        networks=networks,
        expected_networks=tuple(ipaddress.ip_network(n) for n in expected_networks),
        control_sni="example.lab",
    )
    canary = Endpoint(
        service="canary",
        name="example",
        host="example.lab",
        address=None,
        port=443,
        checks=(Check.DNS, Check.TCP, Check.TLS, Check.HTTP),
        resolvers=("isp", "google", "doh"),
        networks=networks,
    )
    return Config(
        resolvers=MappingProxyType(resolvers),
        networks=MappingProxyType({n: Network(name=n) for n in networks}),
        services=MappingProxyType(
            {
                "telegram": Service(name="telegram", endpoints=MappingProxyType({"web": web})),
                "canary": Service(name="canary", endpoints=MappingProxyType({"example": canary})),
            }
        ),
        blockpage_addresses=frozenset({"10.10.34.35", "195.175.254.2", "d0::11"}),
        blockpage_patterns=tuple(re.compile(p) for p in patterns),
        blockpage_headers=MappingProxyType(
            {name: tuple(re.compile(p) for p in found) for name, found in headers.items()}
        ),
    )


def key(
    network: str = "clean",
    resolver: str = "google",
    service: str = "telegram",
    endpoint: str = "web",
) -> TupleKey:
    return TupleKey(
        service=service, endpoint=endpoint, network=network, resolver=resolver, family=4
    )


def cert(issuer: str = "Lab CA", verified: bool = True) -> Certificate:
    return Certificate(
        subject="web.telegram.lab",
        issuer=issuer,
        not_after=2_000_000_000.0,
        not_before=1_700_000_000.0,
        sans=("web.telegram.lab",),
        verified=verified,
    )


def dns(answers: tuple[str, ...] = (REAL,), error: ErrorKind | None = None) -> DnsObservation:
    rcode: str | None = "NOERROR"
    if error is ErrorKind.DNS_NXDOMAIN:
        rcode = "NXDOMAIN"
    elif error is ErrorKind.DNS_SERVFAIL:
        rcode = "SERVFAIL"
    elif error is not None:
        rcode = None
    return DnsObservation(
        qname="web.telegram.lab",
        qtype="A",
        server="udp://8.8.8.8:53",
        rcode=rcode,
        answers=answers if error is None else (),
        error=error,
    )


def ok(
    k: TupleKey, answers: tuple[str, ...] = (REAL,), body: bytes = b"<html>hi</html>"
) -> Observation:
    """A probe that passed every check."""
    return Observation(
        key=k,
        started=1.0,
        finished=1.2,
        phases=MappingProxyType(
            {
                Phase.DNS: 0.01,
                Phase.CONNECT: 0.02,
                Phase.TLS: 0.03,
                Phase.HTTP: 0.04,
                Phase.TOTAL: 0.1,
            }
        ),
        dns=dns(answers),
        address=answers[0],
        tls=TlsObservation(server_name="web.telegram.lab", certificate=cert()),
        http=HttpObservation(
            method="GET", url="https://web.telegram.lab/", status=200, body_head=body
        ),
    )


def failed(
    k: TupleKey,
    phase: Phase,
    error: ErrorKind,
    *,
    answers: tuple[str, ...] = (REAL,),
    dns_error: ErrorKind | None = None,
    tls: TlsObservation | None = None,
    control: TlsObservation | None = None,
    http: HttpObservation | None = None,
) -> Observation:
    """A probe that failed in `phase` with `error`; the phases before it passed."""
    order = [Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.HTTP]
    ran = order[: order.index(phase) + 1]
    phases = {p: 0.01 for p in ran}
    phases[Phase.TOTAL] = 0.05
    return Observation(
        key=k,
        started=1.0,
        finished=1.1,
        error=error,
        failed_phase=phase,
        phases=MappingProxyType(phases),
        dns=dns(answers, dns_error if phase is Phase.DNS else None),
        address=answers[0] if phase is not Phase.DNS and answers else None,
        tls=tls,
        control=control,
        http=http,
    )


def dns_failed(k: TupleKey, error: ErrorKind) -> Observation:
    return failed(k, Phase.DNS, error, answers=(), dns_error=error)


def check(
    k_network: str,
    resolver: str,
    *,
    rcode: str | None,
    answers: tuple[str, ...],
    error: ErrorKind | None = None,
) -> Observation:
    """A resolver identity/silent check; without a reply (`rcode` None) its error is `error`,
    a timeout by default."""
    k = TupleKey(service="", endpoint="", network=k_network, resolver=resolver, family=4)
    if error is None and not rcode:
        error = ErrorKind.TIMEOUT
    return Observation(
        key=k,
        started=1.0,
        finished=1.1,
        error=error,
        dns=DnsObservation(
            qname="id.server",
            qtype="TXT",
            server="udp://x",
            rcode=rcode,
            answers=answers,
            error=error,
        ),
    )


def with_rate(obs: Observation, bytes_per_second: float) -> Observation:
    """`obs` with a throughput download that measured `bytes_per_second`."""
    import dataclasses

    from exporter.model.observation import ThroughputObservation

    return dataclasses.replace(
        obs,
        throughput=ThroughputObservation(
            url="https://web.telegram.lab/large",
            limit=1024 * 1024,
            status=200,
            body_bytes=1024 * 1024,
            complete=True,
            duration=1024 * 1024 / max(bytes_per_second, 1.0),
            bytes_per_second=bytes_per_second,
        ),
    )


#: A look-alike service's own plain-HTTP page, and a filter's page nobody has a pattern for.
REAL_PAGE = b"<html><head><title>Telegram Datacenter Gateway</title></head><body>" + b"m" * 1500
REAL_HEADERS: tuple[tuple[str, str], ...] = (("Server", "nginx"), ("X-Datacenter", "2"))
FILTER_PAGE = b"<html><head><title>Restricted Resource Notice</title></head><body>no</body>"
FILTER_HEADERS: tuple[tuple[str, str], ...] = (("Server", "filter"), ("X-Filter-Id", "7"))


def page(
    k: TupleKey,
    body: bytes = REAL_PAGE,
    *,
    status: int = 200,
    headers: tuple[tuple[str, str], ...] = REAL_HEADERS,
    address: str = REAL,
    error: ErrorKind | None = None,
) -> Observation:
    """A plain-HTTP probe (no TLS) that got `status` and `body` from `address`: passed, or
    failed in the http phase with `error` (a status the endpoint does not accept)."""
    import dataclasses

    http = HttpObservation(
        method="GET",
        url=f"http://{address}/",
        status=status,
        headers=headers,
        body_bytes=len(body),
        body_head=body[:4096],
    )
    if error is not None:
        return dataclasses.replace(
            failed(k, Phase.HTTP, error, answers=(address,), http=http), tls=None
        )
    return dataclasses.replace(ok(k, answers=(address,)), tls=None, http=http)


def judged(findings: Mapping[TupleKey, Finding]) -> Judgement:
    """A round's judgement of `findings` alone, with the service states `judge()` would give
    it (the store and pages read those)."""
    import dataclasses

    from exporter.judge.summary import service_states
    from exporter.model.judgement import EMPTY_JUDGEMENT

    judgement = dataclasses.replace(EMPTY_JUDGEMENT, findings=MappingProxyType(dict(findings)))
    return dataclasses.replace(judgement, services=service_states(judgement))
