"""Blocking or outage: the judgement of one round of observations. Pure.

Every tuple is judged by its own observation and, as controls, the other tuples of the same
endpoint measured in the same round: other networks, other resolvers, encrypted resolvers,
and the canaries of each network. The rules, in order (first match wins), are the table in
docs/verdicts.md; keep the two in step.

Invariants:
- a verdict is one of `Verdict`, a closed set (bounded label values);
- "blocked" needs a control that got further than the tuple did (another network, another
  address, a control SNI) or positive evidence (a bogon, a sinkhole, a blockpage); a failure
  seen the same way everywhere is `down`, never blocked;
- a network whose canaries all failed is `network_down`, never blocked.
"""

from __future__ import annotations

import enum
import ipaddress
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.config import CANARY_SERVICE, Check, Config, Endpoint, Resolver
from exporter.difference import ResponseShape, alike, difference
from exporter.matrix import RESOLVER_CHECK_SERVICE
from exporter.model import (
    ErrorKind,
    Observation,
    PathObservation,
    PathOutcome,
    Phase,
    TupleKey,
)
from exporter.units import format_rate


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
    }
)

CERT_ERRORS = frozenset(
    {
        ErrorKind.CERT_UNKNOWN_AUTHORITY,
        ErrorKind.CERT_HOSTNAME,
        ErrorKind.CERT_EXPIRED,
        ErrorKind.CERT_INVALID,
    }
)

#: Failures of the exporter's own path (its proxy, namespace, interface), not of the target.
PATH_ERRORS = frozenset({ErrorKind.PROXY, ErrorKind.NETWORK_SETUP})

#: Sizes of the prefixes compared when judging whether two answers agree: CDNs hand out
#: different addresses of the same block to different resolvers.
V4_PREFIX = 24
V6_PREFIX = 48

#: Earlier rates a tuple needs before its median counts as a baseline (fewer when
#: `throttling.baseline_rounds` is smaller).
MIN_BASELINE_SAMPLES = 3

#: Per tuple, the throughput rates (bytes/s) of its earlier rounds, oldest first: the state
#: the baseline rule needs across rounds, kept by the caller (exporter.history) and passed in.
Baselines = Mapping[TupleKey, Sequence[float]]

#: Per tuple, the shape of its last response judged `ok` on an earlier round (plain HTTP
#: only): the reference of the changed-page rules when no other network is a control. Kept
#: by the caller (exporter.history.Pages) and passed in, like the baselines.
References = Mapping[TupleKey, ResponseShape]


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


EMPTY_JUDGEMENT = Judgement(
    findings=MappingProxyType({}),
    network_up=MappingProxyType({}),
    resolver_up=MappingProxyType({}),
    resolver_intercepted=MappingProxyType({}),
)


def is_bogon(address: str) -> bool:
    """Private, loopback, link-local, reserved, documentation, multicast and the like."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def _prefix(address: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    bits = V4_PREFIX if ip.version == 4 else V6_PREFIX
    return ipaddress.ip_network(f"{ip}/{bits}", strict=False)


def _group_key(key: TupleKey) -> tuple[str, str, int]:
    return (key.service, key.endpoint, key.family)


def _phase_reached(obs: Observation, phase: Phase) -> bool:
    """Whether the probe got past `phase` (it completed it without error)."""
    if obs.error is None:
        return phase in obs.phases or phase == Phase.DNS
    order = (Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.HTTP, Phase.QUIC)
    failed = obs.failed_phase
    if failed is None or phase not in order or failed not in order:
        return False
    return order.index(phase) < order.index(failed) and phase in obs.phases


def _got_through(obs: Observation) -> bool:
    """Whether the probe's path worked: it succeeded, or only its quic check failed (every
    TCP check before it passed). A network that blocks QUIC is not down."""
    return obs.success or obs.failed_phase is Phase.QUIC


def _blockpage_reason(obs: Observation, config: Config) -> str | None:
    """A known blockpage: its body or redirect target (`blockpage_patterns`), or a header
    only a filter sends (`blockpage_headers`)."""
    http = obs.http
    if http is None:
        return None
    if config.blockpage_headers:
        for name, value in http.headers:
            for pattern in config.blockpage_headers.get(name.lower(), ()):
                # Header values were decoded as Latin-1: encoding back gives the wire bytes.
                if pattern.search(value.encode("latin-1", errors="replace")):
                    return f"the {name} header {value[:100]!r} matches a blockpage fingerprint"
    if not config.blockpage_patterns:
        return None
    location = next((v for k, v in http.headers if k.lower() == "location"), "")
    body = http.body_head  # unpacked once for every pattern
    for pattern in config.blockpage_patterns:
        if pattern.search(body):
            return f"the body matches the blockpage pattern {pattern.pattern!r}"
        if location and pattern.search(location.encode(errors="replace")):
            return f"redirect to {location[:100]!r} matches the blockpage pattern"
    return None


def _inside(
    address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _dns_tamper_reason(
    obs: Observation,
    resolver: Resolver | None,
    endpoint: Endpoint | None,
    peers: list[Observation],
    encrypted_prefixes: set[ipaddress.IPv4Network | ipaddress.IPv6Network],
    config: Config,
    verified: frozenset[str],
) -> str | None:
    """Rules 3-7 of docs/verdicts.md. An answer is consistent when it lies in the service's
    `expected_networks` or a probe of the round completed a handshake with it verified for
    the name (`verified`); only an answer that is neither can be called a lie by comparison
    (rules 5 and 6). Blockpage addresses and bogons are lies whatever else holds, but an
    address inside `expected_networks` is never a bogon (a private deployment says so)."""
    dns = obs.dns
    if dns is None:
        return None
    if dns.error is ErrorKind.DNS_NXDOMAIN:
        answered = [p for p in peers if p.dns is not None and p.dns.answers and p is not obs]
        if answered:
            return f"NXDOMAIN while {len(answered)} other resolver tuple(s) answered the name"
        return None
    if not dns.answers:
        return None
    expected = endpoint.expected_networks if endpoint is not None else ()
    for address in dns.answers:
        if address in config.blockpage_addresses:
            return f"answered {address}, a known sinkhole/blockpage address"
        if is_bogon(address) and not _inside(address, expected):
            return f"answered {address}, a bogon (private, reserved or special-purpose)"
    if expected:
        outside = [a for a in dns.answers if not _inside(a, expected) and a not in verified]
        if outside:
            return f"answered {outside[0]}, outside the service's expected_networks" + _unproven(
                endpoint
            )
        return None  # inside the published ranges, or proven to serve the name
    if resolver is not None and not resolver.encrypted and encrypted_prefixes:
        if any(a in verified for a in dns.answers):
            return None  # another site of the same name (geo-DNS): it proved it serves it
        mine = {p for p in (_prefix(a) for a in dns.answers) if p is not None}
        if mine.isdisjoint(encrypted_prefixes):
            return (
                f"answered {', '.join(dns.answers[:3])}, disjoint from what encrypted resolvers "
                "answered in the same round" + _unproven(endpoint)
            )
    return None


def _unproven(endpoint: Endpoint | None) -> str:
    """The end of a rule 5/6 reason: that no handshake vouched for the answer."""
    if endpoint is not None and Check.TLS in endpoint.checks:
        return ", and no handshake with it was verified for the name this round"
    return " (without the tls check nothing can vouch for another address)"


def judge_round(
    config: Config,
    observations: Iterable[Observation],
    baselines: Baselines | None = None,
    setup_problems: Mapping[str, str] | None = None,
    references: References | None = None,
) -> Judgement:
    """Judge the last observation of every tuple: endpoint tuples are judged, resolver checks
    (service `RESOLVER_CHECK_SERVICE`) feed interception. `baselines`, `setup_problems`,
    `references`: see `judge`."""
    tuples: dict[TupleKey, Observation] = {}
    checks: dict[tuple[str, str], Observation] = {}
    for obs in observations:
        if obs.key.service == RESOLVER_CHECK_SERVICE:
            checks[(obs.key.network, obs.key.resolver)] = obs
        else:
            tuples[obs.key] = obs
    return judge(config, tuples, checks, baselines, setup_problems, references)


def judge(
    config: Config,
    observations: Mapping[TupleKey, Observation],
    resolver_checks: Mapping[tuple[str, str], Observation] | None = None,
    baselines: Baselines | None = None,
    setup_problems: Mapping[str, str] | None = None,
    references: References | None = None,
) -> Judgement:
    """Judge one round. `resolver_checks` are the identity / silent-resolver queries, keyed
    by (network, resolver). `baselines` are the earlier throughput rates of each tuple.
    `setup_problems` are the networks the host could not provide when the round ended (a
    namespace, interface or source address gone; `exporter.network.setup_problem`), with why.
    `references` are the last passing plain-HTTP responses of each tuple. All are state from
    outside the round, passed in as data: the judgement stays a pure function."""
    resolver_checks = resolver_checks or {}
    baselines = baselines or {}
    references = references or {}
    by_network: dict[str, list[Observation]] = defaultdict(list)
    by_group: dict[tuple[str, str, int], list[Observation]] = defaultdict(list)
    for key, obs in observations.items():
        by_network[key.network].append(obs)
        by_group[_group_key(key)].append(obs)

    setup = _setup_failures(config, by_network, setup_problems or {})
    network_up = {n: up for n, up in _network_up(config, by_network).items() if n not in setup}
    canary_failed = _canary_failures(by_network)
    resolver_up = _resolver_up(observations.values())
    intercepted = _intercepted(config, resolver_checks)
    verified = {group: _verified_addresses(obs) for group, obs in by_group.items()}
    vouched = frozenset(k for k, o in observations.items() if _vouched(o, references.get(k)))

    endpoints = {(e.service, e.name): e for e in config.endpoints()}
    findings: dict[TupleKey, Finding] = {}
    for key, obs in observations.items():
        group = by_group[_group_key(key)]
        healthy = [
            p for p in group if network_up.get(p.key.network, True) and p.key.network not in setup
        ]
        findings[key] = classify(
            obs,
            endpoint=endpoints.get((key.service, key.endpoint)),
            resolver=config.resolvers.get(key.resolver),
            peers=healthy,
            # A failure probed while a canary of the same network was failing too (the
            # uplink went down mid-round) says nothing about the service.
            network_up=network_up.get(key.network, True)
            and not (
                obs.error is not None
                and canary_failed.get(key.network, float("-inf")) >= obs.started
            ),
            resolver_up=resolver_up.get((key.network, key.resolver), True),
            config=config,
            baselines=baselines,
            setup_problem=setup.get(key.network),
            verified=verified[_group_key(key)],
            reference=references.get(key),
            vouched_pages=vouched,
        )
    return Judgement(
        findings=MappingProxyType(findings),
        network_up=MappingProxyType(network_up),
        resolver_up=MappingProxyType(resolver_up),
        resolver_intercepted=MappingProxyType(intercepted),
        network_setup=MappingProxyType(setup),
    )


def _setup_failures(
    config: Config, by_network: Mapping[str, list[Observation]], problems: Mapping[str, str]
) -> dict[str, str]:
    """Networks the exporter cannot use as configured: those the host check found broken,
    and those whose canaries (without canaries: every probe) all failed on the exporter's
    own path (`proxy_error`, `network_setup`): the network then says nothing about the
    path, whether it is down or not."""
    result = {n: why for n, why in problems.items() if n in config.networks}
    for network, obs in by_network.items():
        if network in result:
            continue
        judged = [o for o in obs if o.key.service == CANARY_SERVICE] or obs
        if judged and all(o.error in PATH_ERRORS for o in judged):
            result[network] = (
                f"every probe on it fails on the exporter's own path ({judged[0].error})"
            )
    return result


def _verified_addresses(group: Iterable[Observation]) -> frozenset[str]:
    """The addresses a probe of the group (one endpoint and family, any network) completed a
    TLS handshake with, verified for the endpoint's name: they serve the name, whatever a
    resolver's answer looked like next to another's (a CDN answers each resolver with a
    different site)."""
    return frozenset(
        o.address
        for o in group
        if o.address is not None
        and o.tls is not None
        and o.tls.error is None
        and o.tls.certificate is not None
        and o.tls.certificate.verified
    )


def _network_up(config: Config, by_network: Mapping[str, list[Observation]]) -> dict[str, bool]:
    """Canaries decide; without canaries, any success on the network counts."""
    result: dict[str, bool] = {}
    for network in config.networks:
        obs = by_network.get(network, [])
        if not obs:
            continue
        canaries = [o for o in obs if o.key.service == CANARY_SERVICE]
        judged = canaries or obs
        if not any(_got_through(o) for o in judged):
            result[network] = False
            continue
        # Some canary worked this round; the network is up unless the most recent canary
        # that got past DNS (a dead resolver says nothing about the path) failed: the
        # uplink went away during the round.
        reached = [o for o in canaries if o.failed_phase is not Phase.DNS]
        latest = max(reached, key=lambda o: o.finished, default=None)
        result[network] = latest is None or _got_through(latest)
    return result


def _canary_failures(by_network: Mapping[str, list[Observation]]) -> dict[str, float]:
    """Per network, when (unix seconds) the last canary failed past DNS this round."""
    result: dict[str, float] = {}
    for network, obs in by_network.items():
        failed = [
            o.finished
            for o in obs
            if o.key.service == CANARY_SERVICE
            and not _got_through(o)
            and o.failed_phase is not Phase.DNS
        ]
        if failed:
            result[network] = max(failed)
    return result


def _resolver_up(observations: Iterable[Observation]) -> dict[tuple[str, str], bool]:
    """A resolver is up on a network when it answered a canary's question there, or, without
    canaries, any question with a reply."""
    canary: dict[tuple[str, str], bool] = {}
    anyreply: dict[tuple[str, str], bool] = {}
    for obs in observations:
        if obs.dns is None:
            continue
        pair = (obs.key.network, obs.key.resolver)
        replied = obs.dns.rcode is not None
        anyreply[pair] = anyreply.get(pair, False) or replied
        if obs.key.service == CANARY_SERVICE:
            canary[pair] = canary.get(pair, False) or bool(obs.dns.answers)
    return {pair: canary.get(pair, up) for pair, up in anyreply.items()}


def _intercepted(
    config: Config, checks: Mapping[tuple[str, str], Observation]
) -> dict[tuple[str, str], bool]:
    result: dict[tuple[str, str], bool] = {}
    for (network, name), obs in checks.items():
        resolver = config.resolvers.get(name)
        dns = obs.dns
        if resolver is None or dns is None:
            continue
        if resolver.silent:
            # Any reply is evidence, a malformed or oversized one included: bytes came back
            # from an address that runs no DNS server.
            replied = dns.rcode is not None or ErrorKind.DNS_BAD_RESPONSE in (obs.error, dns.error)
            result[(network, name)] = replied
        elif resolver.identity is not None:
            if dns.rcode is None:
                result[(network, name)] = False  # no reply: unknown, not intercepted
            else:
                pattern = resolver.identity.expect
                result[(network, name)] = not any(pattern.search(a) for a in dns.answers)
    return result


def classify(
    obs: Observation,
    *,
    endpoint: Endpoint | None,
    resolver: Resolver | None,
    peers: list[Observation],
    network_up: bool,
    resolver_up: bool,
    config: Config,
    baselines: Baselines | None = None,
    setup_problem: str | None = None,
    verified: frozenset[str] = frozenset(),
    reference: ResponseShape | None = None,
    vouched_pages: frozenset[TupleKey] = frozenset(),
) -> Finding:
    """The verdict of one tuple. `peers` are the tuples of the same endpoint and family in the
    same round on networks that are up (the tuple itself may be among them); `baselines` the
    earlier throughput rates per tuple; `setup_problem` why the tuple's network cannot be
    used as configured, if so; `verified` the addresses a probe of the same endpoint and
    family completed a verified handshake with this round (on any network); `reference` the
    tuple's own last passing plain-HTTP page (an earlier round); `vouched_pages` the tuples
    of the round whose plain-HTTP page is known to be the service's (`_vouched`)."""
    if setup_problem is not None:
        return Finding(
            verdict=Verdict.SETUP_ERROR,
            reason=f"the network cannot be used as configured: {setup_problem}; nothing "
            "can be said about the service (a set-up error, not a shutdown)",
        )
    if obs.error in PATH_ERRORS:
        return Finding(
            verdict=Verdict.SETUP_ERROR,
            reason=f"the exporter's own path failed ({obs.error}): its proxy, namespace, "
            "interface or source address, not the service",
        )
    if not network_up:
        return Finding(
            verdict=Verdict.NETWORK_DOWN,
            reason="the network's canaries failed (a shutdown or a dead uplink) while this "
            "was probed: nothing can be said about the service",
        )
    others = [p for p in peers if p is not obs]
    encrypted_prefixes = {
        prefix
        for p in others
        if p.dns is not None
        and p.dns.error is None
        and (r := config.resolvers.get(p.key.resolver)) is not None
        and r.encrypted
        and not any(is_bogon(a) or a in config.blockpage_addresses for a in p.dns.answers)
        for prefix in (_prefix(a) for a in p.dns.answers)
        if prefix is not None
    }
    tamper = _dns_tamper_reason(
        obs, resolver, endpoint, peers, encrypted_prefixes, config, verified
    )
    if tamper is not None:
        return Finding(verdict=Verdict.DNS_TAMPERED, reason=tamper)

    if obs.success:
        blockpage = _blockpage_reason(obs, config)
        if blockpage is not None:
            return Finding(verdict=Verdict.HTTP_BLOCKPAGE, reason=blockpage)
        changed = _changed_page(obs, others, reference, vouched_pages)
        if changed is not None:
            return Finding(verdict=Verdict.HTTP_BLOCKPAGE, reason=changed)
        throttled = _throttle_reason(obs, others, baselines or {}, config)
        if throttled is not None:
            return Finding(verdict=Verdict.THROTTLED, reason=throttled)
        return Finding(verdict=Verdict.OK, reason="every check passed")

    phase = obs.failed_phase
    error = obs.error
    if phase == Phase.DNS:
        if not resolver_up:
            return Finding(
                verdict=Verdict.DNS_FAILED,
                reason="the resolver answers no canary question on this network",
            )
        if others and all(p.dns is not None and p.dns.error is not None for p in others):
            return Finding(
                verdict=Verdict.DOWN,
                reason=f"the name fails ({error}) through every healthy resolver and network",
            )
        return Finding(verdict=Verdict.DNS_FAILED, reason=f"the resolver failed: {error}")

    path = obs.path if obs.path is not None and obs.path.phase is phase else None
    if phase == Phase.CONNECT:
        got_further = [p for p in others if _phase_reached(p, Phase.CONNECT)]
        if got_further:
            where = _where(got_further[0], obs)
            return Finding(
                verdict=Verdict.TCP_BLOCKED,
                reason=f"TCP connect failed ({error}) while it succeeded {where}"
                + _path_note(path),
            )
        if _on_path(path):
            return Finding(
                verdict=Verdict.TCP_BLOCKED,
                reason=f"TCP connect failed ({error}): {_path_said(path)}",
            )
        return Finding(
            verdict=Verdict.DOWN,
            reason=f"TCP connect fails ({error}) on every healthy network" + _path_note(path),
        )

    if phase == Phase.TLS:
        verified_elsewhere = [p for p in others if _phase_reached(p, Phase.TLS)]
        if error in CERT_ERRORS:
            presented = ""
            if obs.tls is not None and obs.tls.certificate is not None:
                cert = obs.tls.certificate
                presented = f" (issued by {cert.issuer!r}, SHA-256 {cert.sha256 or 'unknown'})"
            if verified_elsewhere:
                return Finding(
                    verdict=Verdict.TLS_MITM,
                    reason=f"certificate rejected: {error}{presented}, while it validates "
                    f"{_where(verified_elsewhere[0], obs)}" + _path_note(path),
                )
            if error is ErrorKind.CERT_UNKNOWN_AUTHORITY:
                # An outage does not present another authority's certificate for the name.
                return Finding(
                    verdict=Verdict.TLS_MITM,
                    reason=f"a certificate from an authority the endpoint does not trust"
                    f"{presented}" + _path_note(path),
                )
            if _on_path(path):
                return Finding(
                    verdict=Verdict.TLS_MITM,
                    reason=f"certificate rejected: {error}{presented}: {_path_said(path)}",
                )
            return Finding(
                verdict=Verdict.DOWN,
                reason=f"the certificate is rejected ({error}) on every healthy network"
                + _path_note(path),
            )
        control = obs.control
        if control is not None and (control.error is None or control.error in CERT_ERRORS):
            return Finding(
                verdict=Verdict.TLS_BLOCKED,
                reason=f"the handshake failed ({error}) while the control SNI "
                f"{control.server_name!r} to the same address got a server reply"
                + _path_note(path),
            )
        if verified_elsewhere:
            return Finding(
                verdict=Verdict.TLS_BLOCKED,
                reason=f"the handshake failed ({error}) while it succeeded "
                f"{_where(verified_elsewhere[0], obs)}" + _path_note(path),
            )
        if _on_path(path):
            return Finding(
                verdict=Verdict.TLS_BLOCKED,
                reason=f"the handshake failed ({error}): {_path_said(path)}",
            )
        return Finding(
            verdict=Verdict.DOWN,
            reason=f"the TLS handshake fails ({error}) on every healthy network" + _path_note(path),
        )

    if phase == Phase.HTTP:
        blockpage = _blockpage_reason(obs, config)
        if blockpage is not None:
            return Finding(verdict=Verdict.HTTP_BLOCKPAGE, reason=blockpage)
        changed = _changed_page(obs, others, reference, vouched_pages)
        if changed is not None:
            return Finding(verdict=Verdict.HTTP_BLOCKPAGE, reason=changed)
        answered = obs.http is not None and obs.http.status is not None
        if not answered and path is not None and path.outcome is PathOutcome.BEFORE_DESTINATION:
            # No page came back (a reset, silence): who cut it is all there is to judge.
            # A page that came back was judged by `_changed_page` above.
            return Finding(
                verdict=Verdict.HTTP_BLOCKPAGE,
                reason=f"HTTP failed ({error}), cut by the path: {_path_said(path)}",
            )
        worked = [p for p in others if p.success or _phase_reached(p, Phase.HTTP)]
        if worked:
            return Finding(
                verdict=Verdict.HTTP_FAILED,
                reason=f"HTTP failed ({error}) while it succeeded {_where(worked[0], obs)}",
            )
        return Finding(
            verdict=Verdict.DOWN,
            reason=f"HTTP fails ({error}) on every healthy network" + _path_note(path),
        )

    if phase == Phase.QUIC:
        return _quic_finding(obs, others)

    return Finding(verdict=Verdict.DOWN, reason=f"the probe failed ({error})")


def _page(obs: Observation) -> ResponseShape | None:
    """The shape of `obs`'s response when no TLS handshake vouched for it (plain HTTP): only
    such a page can be someone else's. Over verified TLS, whatever answers holds the key."""
    if obs.tls is not None or obs.http is None:
        return None
    return ResponseShape.of(obs.http)


def _http_path(obs: Observation) -> PathObservation | None:
    return obs.path if obs.path is not None and obs.path.phase is Phase.HTTP else None


def _vouched(obs: Observation, reference: ResponseShape | None) -> bool:
    """Whether `obs`'s plain-HTTP page is known to be the service's own: localisation found
    it at the destination's own distance, or it is the page this tuple got when it last
    passed (OONI's rule: the same status and a criterion that says alike)."""
    shape = _page(obs)
    if shape is None:
        return False
    path = _http_path(obs)
    if path is not None and path.outcome is PathOutcome.AT_DESTINATION:
        return True
    return reference is not None and difference(shape, reference, status_counts=True) is None


def _changed_page(
    obs: Observation,
    others: list[Observation],
    reference: ResponseShape | None,
    vouched: frozenset[TupleKey],
) -> str | None:
    """Why a plain-HTTP page is an unknown blockpage (rules 8c and 20 of docs/verdicts.md),
    or None.

    A page vouched for (`_vouched`) is the service's. Otherwise, in order:
    - controls: tuples on other networks that passed, dialled the same address in the same
      round and whose page is vouched for. OONI's http-diff (`status_counts`) against each;
      a page unlike every one is a blockpage. Only a vouched control counts: two networks
      that see two pages cannot say, alone, which one is the service's (a server may answer
      each region its own way);
    - the tuple's own last passing page: alike on a criterion (whatever the status) it is the
      service's; different by the strict rule (a stale reference), a blockpage;
    - localisation: the page came from a hop before the destination.
    """
    shape = _page(obs)
    if shape is None or obs.key in vouched:
        return None
    path = _http_path(obs)
    controls = [
        (p, page)
        for p in others
        if p.key.network != obs.key.network
        and p.key in vouched
        and p.success
        and p.address == obs.address
        and (page := _page(p)) is not None
    ]
    if controls:
        differs = [difference(shape, page, status_counts=True) for _, page in controls]
        if all(d is not None for d in differs):
            return (
                f"{differs[0]}, against the page on network {controls[0][0].key.network!r} "
                "(the same address, the same round)" + _path_note(path)
            )
        return None
    if reference is not None:
        if alike(shape, reference):
            return None  # the service's own page, whatever its status: relayed or not
        differs_from_last = difference(shape, reference, status_counts=False)
        if differs_from_last is not None:
            return f"{differs_from_last}, against this tuple's last passing page" + _path_note(path)
    if path is not None and path.outcome is PathOutcome.BEFORE_DESTINATION:
        return f"a page nothing vouches for, served from the path: {_path_said(path)}"
    return None


def _on_path(path: PathObservation | None) -> bool:
    """Whether localisation put the failure on the path: an answer from before the
    destination, or a drop at a hop other traffic passes."""
    return path is not None and path.outcome in (
        PathOutcome.BEFORE_DESTINATION,
        PathOutcome.DROPPED,
    )


def _path_said(path: PathObservation | None) -> str:
    """The evidence of localisation, for a reason."""
    assert path is not None
    where = ""
    if path.hop is not None:
        last = path.router(path.hop - 1) if path.hop > 1 else None
        here = path.router(path.hop)
        addresses = ", ".join(
            f"hop {n} {a}" for n, a in ((path.hop - 1, last), (path.hop, here)) if a
        )
        where = f"; interference at hop {path.hop}" + (f" ({addresses})" if addresses else "")
    return f"{path.detail}{where}"


def _path_note(path: PathObservation | None) -> str:
    """What localisation said when it is not the evidence (for /probes and the logs)."""
    if path is None:
        return ""
    if path.outcome is PathOutcome.AT_DESTINATION:
        return f"; localised at the destination's own distance: {path.detail}"
    if path.outcome is PathOutcome.INCONCLUSIVE:
        return f"; localisation inconclusive: {path.detail}"
    return f"; localised on the path: {_path_said(path)}"


def _quic_finding(obs: Observation, others: list[Observation]) -> Finding:
    """Rules 21a-21c of docs/verdicts.md: the quic check failed after every other check of
    the tuple passed (it runs last), so the TCP path to the same address works. QUIC is
    blocked when a control completed a QUIC handshake: another network, or another address
    on this one. Failing everywhere it is `down` (the service answers no QUIC, or every
    network blocks it: nothing here tells which)."""
    error = obs.error
    quic = obs.quic
    tcp = " while TCP" if obs.connects or obs.tls is not None else ""
    if tcp and obs.tls is not None:
        tcp += "+TLS"
    if tcp:
        tcp += " to the same address worked"
    if quic is not None and quic.connected:
        # The handshake worked, the HTTP/3 request failed: as rule 21 for HTTP/1.1.
        passed = [p for p in others if p.quic is not None and p.quic.error is None]
        if passed:
            return Finding(
                verdict=Verdict.HTTP_FAILED,
                reason=f"the HTTP/3 request failed ({error}) after the QUIC handshake, while "
                f"it succeeded {_where(passed[0], obs)}",
            )
        return Finding(
            verdict=Verdict.DOWN,
            reason=f"the HTTP/3 request fails ({error}) on every healthy network",
        )
    connected = [p for p in others if p.quic is not None and p.quic.connected]
    if connected:
        return Finding(
            verdict=Verdict.QUIC_BLOCKED,
            reason=f"the QUIC handshake failed ({error}){tcp}, and it succeeded "
            f"{_where(connected[0], obs)}",
        )
    return Finding(
        verdict=Verdict.DOWN,
        reason=f"the QUIC handshake fails ({error}) on every healthy network{tcp}: the service "
        "answers no QUIC here, or every network blocks it (a network where QUIC works tells)",
    )


def _where(peer: Observation, obs: Observation) -> str:
    if peer.key.network != obs.key.network:
        return f"on network {peer.key.network!r}"
    if peer.address and peer.address != obs.address:
        return f"to {peer.address} on the same network"
    return f"through resolver {peer.key.resolver!r}"


def _rate(obs: Observation) -> float | None:
    """The throughput a probe measured, bytes/s; None without a measurement."""
    return None if obs.throughput is None else obs.throughput.bytes_per_second


def _baseline(samples: Sequence[float] | None, rounds: int) -> float | None:
    """The median of the last `rounds` rates, once there are enough of them."""
    if rounds <= 0 or not samples:
        return None
    recent = samples[-rounds:]
    if len(recent) < min(MIN_BASELINE_SAMPLES, rounds):
        return None
    return float(statistics.median(recent))


def _throttle_reason(
    obs: Observation, others: list[Observation], baselines: Baselines, config: Config
) -> str | None:
    """Why `obs`'s throughput counts as throttled (rules 8a and 8b of docs/verdicts.md), or
    None. `others` are the other tuples of the same endpoint and family on networks that are
    up; only those on *other* networks are controls (the same network shares the path)."""
    rate = _rate(obs)
    rule = config.throttling
    if rate is None:
        return None
    if rule.min_bytes_per_second > 0 and rate >= rule.min_bytes_per_second:
        return None  # enough for the service, whatever the others do
    elsewhere = [
        (p, r)
        for p in others
        if p.key.network != obs.key.network and p.success and (r := _rate(p)) is not None
    ]
    if elsewhere:
        best, best_rate = max(elsewhere, key=lambda pr: pr[1])
        if rate < rule.ratio * best_rate:
            return (
                f"throughput {format_rate(rate)} is below {rule.ratio:g} x the "
                f"{format_rate(best_rate)} measured on network {best.key.network!r} in the "
                f"same round"
            )
    base = _baseline(baselines.get(obs.key), rule.baseline_rounds)
    if base is None or rate >= rule.ratio * base:
        return None
    if elsewhere:
        # Comparable rates elsewhere now: the drop is local only if another network kept
        # its own baseline (a drop seen everywhere is the service's, not this network's).
        steady = [
            (p, r)
            for p, r in elsewhere
            if (b := _baseline(baselines.get(p.key), rule.baseline_rounds)) is not None
            and r >= rule.ratio * b
        ]
        if not steady:
            return None
        evidence = f", while network {steady[0][0].key.network!r} kept its own"
    else:
        evidence = " (no other network measured it this round)"
    count = min(len(baselines.get(obs.key) or ()), rule.baseline_rounds)
    return (
        f"throughput {format_rate(rate)} is below {rule.ratio:g} x this tuple's median of "
        f"{format_rate(base)} over its last {count} rounds{evidence}"
    )
