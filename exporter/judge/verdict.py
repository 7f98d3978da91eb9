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
- a network whose canaries all failed is `network_down`, never blocked; UDP canaries (with
  the stun check) never decide that: a network without UDP is not down (`udp_down`).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from exporter.config.matrix import RESOLVER_CHECK_SERVICE
from exporter.config.model import CANARY_SERVICE, Check, Config, Endpoint, Resolver
from exporter.judge.answers import encrypted_prefixes, tamper_reason, verified_addresses
from exporter.judge.difference import ResponseShape
from exporter.judge.evidence import on_path, passed_there, path_note, path_said, same_way, where
from exporter.judge.pages import PageScans, References, blockpage_reason, changed_page, vouched
from exporter.judge.protocols import Answered, answered_exchanges, mtproto_finding, stun_finding
from exporter.judge.summary import service_states
from exporter.judge.throttling import Baselines, throttle_reason
from exporter.model.judgement import Finding, Judgement, Verdict
from exporter.model.observation import (
    Certificate,
    ErrorKind,
    Observation,
    PathObservation,
    PathOutcome,
    Phase,
    TlsObservation,
    TupleKey,
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


def _group_key(key: TupleKey) -> tuple[str, str, int]:
    return (key.service, key.endpoint, key.family)


def _phase_reached(obs: Observation, phase: Phase) -> bool:
    """Whether the probe got past `phase` (it completed it without error)."""
    if obs.error is None:
        return phase in obs.phases or phase == Phase.DNS
    order = (Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.HTTP, Phase.QUIC, Phase.MTPROTO)
    failed = obs.failed_phase
    if failed is None or phase not in order or failed not in order:
        return False
    return order.index(phase) < order.index(failed) and phase in obs.phases


def _address(obs: Observation) -> str | None:
    return obs.address


def _got_through(obs: Observation) -> bool:
    """Whether the probe's path worked: it succeeded, or only its quic or mtproto check
    failed (TCP got through before it). A network that blocks QUIC is not down."""
    return obs.success or obs.failed_phase in (Phase.QUIC, Phase.MTPROTO)


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
    namespace, interface or source address gone; `exporter.probes.network.setup_problem`), with why.
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

    udp_canaries = {
        e.name for e in config.endpoints() if e.service == CANARY_SERVICE and Check.STUN in e.checks
    }
    tcp_by_network = {
        n: [o for o in obs if not _udp_canary(o, udp_canaries)] for n, obs in by_network.items()
    }
    setup = _setup_failures(config, tcp_by_network, setup_problems or {})
    network_up = {n: up for n, up in _network_up(config, tcp_by_network).items() if n not in setup}
    network_udp = {
        n: up for n, up in _udp_up(by_network, udp_canaries).items() if network_up.get(n, False)
    }
    answered = answered_exchanges(list(observations.values()))
    canary_failed = _canary_failures(tcp_by_network)
    resolver_up = _resolver_up(observations.values())
    intercepted = _intercepted(config, resolver_checks)
    verified = {group: verified_addresses(obs) for group, obs in by_group.items()}
    vouched_pages = frozenset(k for k, o in observations.items() if vouched(o, references.get(k)))

    endpoints = {(e.service, e.name): e for e in config.endpoints()}
    scans: PageScans = {}
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
            and not _failed_meanwhile(obs, canary_failed.get(key.network, [])),
            resolver_up=resolver_up.get((key.network, key.resolver), True),
            config=config,
            baselines=baselines,
            setup_problem=setup.get(key.network),
            verified=verified[_group_key(key)],
            reference=references.get(key),
            vouched_pages=vouched_pages,
            # With UDP canaries configured but none heard from on this network yet (a first
            # round still localising them), whether UDP works there is not known.
            udp_up=network_udp.get(key.network, None if udp_canaries else True),
            answered=answered,
            scans=scans,
        )
    judgement = Judgement(
        findings=MappingProxyType(findings),
        network_up=MappingProxyType(network_up),
        resolver_up=MappingProxyType(resolver_up),
        resolver_intercepted=MappingProxyType(intercepted),
        network_setup=MappingProxyType(setup),
        network_udp=MappingProxyType(network_udp),
    )
    return dataclasses.replace(judgement, services=service_states(judgement))


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
        # Some canary worked this round; the network is up unless the uplink went away
        # during the round: the latest probe of every canary that worked failed.
        working = _working_canaries(canaries)
        result[network] = not working or any(
            _got_through(max(probes, key=lambda o: o.started)) for probes in working.values()
        )
    return result


def _working_canaries(
    canaries: Iterable[Observation],
) -> dict[tuple[str, int], list[Observation]]:
    """A network's canary probes that got past DNS (a dead resolver says nothing about the
    path), by canary and IP family, for the canaries that got through at least once this
    round. A canary that never did (its operator's outage, an IP family the uplink lacks) is
    left out: its failures are its own, and the other canary decides."""
    groups: dict[tuple[str, int], list[Observation]] = defaultdict(list)
    for o in canaries:
        if o.failed_phase is not Phase.DNS:
            groups[(o.key.endpoint, o.key.family)].append(o)
    return {g: probes for g, probes in groups.items() if any(_got_through(o) for o in probes)}


def _udp_canary(obs: Observation, udp_canaries: set[str]) -> bool:
    return obs.key.service == CANARY_SERVICE and obs.key.endpoint in udp_canaries


def _udp_up(by_network: Mapping[str, list[Observation]], udp_canaries: set[str]) -> dict[str, bool]:
    """Per network with UDP canaries that got past DNS: whether any of them got an answer."""
    result: dict[str, bool] = {}
    for network, obs in by_network.items():
        asked = [o for o in obs if _udp_canary(o, udp_canaries) and o.failed_phase is not Phase.DNS]
        if asked:
            result[network] = any(o.success for o in asked)
    return result


def _canary_failures(by_network: Mapping[str, list[Observation]]) -> dict[str, list[float]]:
    """Per network, when (unix seconds, sorted) probes of the canaries that worked this round
    started and then failed past DNS: the path failed then, not the canary's operator."""
    result: dict[str, list[float]] = {}
    for network, obs in by_network.items():
        working = _working_canaries(o for o in obs if o.key.service == CANARY_SERVICE)
        failed = [o.started for probes in working.values() for o in probes if not _got_through(o)]
        if failed:
            result[network] = sorted(failed)
    return result


def _failed_meanwhile(obs: Observation, canary_failures: list[float]) -> bool:
    """Whether `obs` failed while a canary probe started during it failed too: the uplink
    went away while it ran. One lost canary probe marks only the probes it overlapped."""
    if obs.error is None:
        return False
    first = bisect.bisect_left(canary_failures, obs.started)
    return first < len(canary_failures) and canary_failures[first] <= obs.finished


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
    udp_up: bool | None = True,
    answered: Answered = frozenset(),
    scans: PageScans | None = None,
) -> Finding:
    """The verdict of one tuple. `peers` are the tuples of the same endpoint and family in the
    same round on networks that are up (the tuple itself may be among them); `baselines` the
    earlier throughput rates per tuple; `setup_problem` why the tuple's network cannot be
    used as configured, if so; `verified` the addresses a probe of the same endpoint and
    family completed a verified handshake with this round (on any network); `reference` the
    tuple's own last passing plain-HTTP page (an earlier round); `vouched_pages` the tuples
    of the round whose plain-HTTP page is known to be the service's (`vouched`); `udp_up`
    False when every UDP canary of the network failed, None when none has a result yet;
    `answered` where an MTProto exchange got its answer this round
    (`exporter.judge.protocols`); `scans` the blockpage patterns' answers for the pages
    already judged this round (`exporter.judge.pages.blockpage_reason`)."""
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
    tamper = tamper_reason(
        obs, resolver, endpoint, peers, encrypted_prefixes(others, config), config, verified
    )
    if tamper is not None:
        return Finding(verdict=Verdict.DNS_TAMPERED, reason=tamper)
    if obs.success:
        return _passed(obs, others, config, baselines or {}, reference, vouched_pages, scans)
    phase = obs.failed_phase
    path = obs.path if obs.path is not None and obs.path.phase is phase else None
    if phase == Phase.DNS:
        return _dns_finding(obs, others, resolver_up=resolver_up)
    if phase == Phase.CONNECT:
        return _connect_finding(obs, others, path)
    if phase == Phase.TLS:
        return _tls_finding(obs, others, path)
    if phase == Phase.HTTP:
        return _http_finding(obs, others, path, config, reference, vouched_pages)
    if phase == Phase.QUIC:
        return _quic_finding(obs, others)
    if phase == Phase.STUN:
        return stun_finding(obs, others, path, udp_up=udp_up)
    if phase == Phase.MTPROTO:
        return mtproto_finding(obs, others, path, answered)
    return Finding(verdict=Verdict.DOWN, reason=f"the probe failed ({obs.error})")


def _passed(
    obs: Observation,
    others: list[Observation],
    config: Config,
    baselines: Baselines,
    reference: ResponseShape | None,
    vouched_pages: frozenset[TupleKey],
    scans: PageScans | None,
) -> Finding:
    """Rules 8-9: every check passed; a blockpage or a throttled download still count."""
    blockpage = blockpage_reason(obs, config, scans)
    if blockpage is not None:
        return Finding(verdict=Verdict.HTTP_BLOCKPAGE, reason=blockpage)
    changed = changed_page(obs, others, reference, vouched_pages)
    if changed is not None:
        return Finding(verdict=Verdict.HTTP_BLOCKPAGE, reason=changed)
    throttled = throttle_reason(obs, others, baselines, config)
    if throttled is not None:
        return Finding(verdict=Verdict.THROTTLED, reason=throttled)
    return Finding(verdict=Verdict.OK, reason="every check passed")


def _dns_finding(obs: Observation, others: list[Observation], *, resolver_up: bool) -> Finding:
    """Rules 10-12: the name did not resolve."""
    error = obs.error
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


def _connect_finding(
    obs: Observation, others: list[Observation], path: PathObservation | None
) -> Finding:
    """Rules 13-14: TCP connect failed."""
    error = obs.error
    failed_on = frozenset(c.address for c in obs.connects if c.error is not None) or frozenset(
        [obs.address] if obs.address else []
    )
    reached = [p for p in others if _phase_reached(p, Phase.CONNECT)]
    same, got_further = same_way(obs, reached, failed_on, _address, path)
    if same and not on_path(path):
        return passed_there("TCP connect", obs, same[0], same[0].address, path)
    if got_further:
        control = where(got_further[0], obs)
        return Finding(
            verdict=Verdict.TCP_BLOCKED,
            reason=f"TCP connect failed ({error}) while it succeeded {control}" + path_note(path),
        )
    if on_path(path):
        return Finding(
            verdict=Verdict.TCP_BLOCKED,
            reason=f"TCP connect failed ({error}): {path_said(path)}",
        )
    return Finding(
        verdict=Verdict.DOWN,
        reason=f"TCP connect fails ({error}) on every healthy network" + path_note(path),
    )


def _certificate_finding(
    obs: Observation, verified_elsewhere: list[Observation], path: PathObservation | None
) -> Finding:
    """Rules 15-16: the certificate was rejected."""
    error = obs.error
    presented = ""
    if obs.tls is not None and obs.tls.certificate is not None:
        cert = obs.tls.certificate
        presented = f" (issued by {cert.issuer!r}, SHA-256 {cert.sha256 or 'unknown'})"
    if verified_elsewhere:
        return Finding(
            verdict=Verdict.TLS_MITM,
            reason=f"certificate rejected: {error}{presented}, while it validates "
            f"{where(verified_elsewhere[0], obs)}" + path_note(path),
        )
    minted = _minted(obs.control) if error is ErrorKind.CERT_UNKNOWN_AUTHORITY else None
    if minted is not None:
        return Finding(
            verdict=Verdict.TLS_MITM,
            reason=f"a certificate from an authority the endpoint does not trust{presented}, "
            f"while {minted}" + path_note(path),
        )
    if on_path(path):
        return Finding(
            verdict=Verdict.TLS_MITM,
            reason=f"certificate rejected: {error}{presented}: {path_said(path)}",
        )
    if error is ErrorKind.CERT_UNKNOWN_AUTHORITY:
        # Everywhere, no control shows an interceptor and localisation did not place it: a
        # root the service moved to that the endpoint's trust lacks (OONI's ts-029 saw
        # Signal's do this) looks exactly so, and is not blocking.
        return Finding(
            verdict=Verdict.DOWN,
            reason=f"a certificate from an authority the endpoint does not trust{presented} "
            "on every healthy network and through every resolver, and no control SNI got one "
            "minted for its own name: the endpoint's roots (tls.ca_file, tls.extra_ca_file) may "
            "lack one the service moved to; an interception that spares the control name and "
            "hides from localisation would look the same" + path_note(path),
        )
    return Finding(
        verdict=Verdict.DOWN,
        reason=f"the certificate is rejected ({error}) on every healthy network" + path_note(path),
    )


def _minted(control: TlsObservation | None) -> str | None:
    """What the control handshake (another name, the same address) shows of an interceptor
    when the real name got a certificate from an authority the endpoint does not trust: an
    untrusted certificate for the control name itself, minted for whatever name is asked,
    which no messaging server holds. A server on a root the endpoint's trust lacks presents
    its own certificate, for its own names; a chain the endpoint trusts for the control
    proves nothing either way (a CDN's default certificate is public while its customer's
    may chain to a private root, as Signal's do)."""
    if control is None:
        return None
    sni = control.server_name
    cert = control.certificate
    if control.error in CERT_ERRORS and cert is not None and sni and _names(cert, sni):
        return (
            f"the control SNI {sni!r} to the same address got a certificate for that very "
            f"name from an untrusted authority ({cert.issuer!r}): minted for any name asked"
        )
    return None


def _names(certificate: Certificate, name: str) -> bool:
    """Whether `certificate` is for `name`: a SAN, or a wildcard for its parent."""
    name = name.lower().rstrip(".")
    wildcard = "*." + name.partition(".")[2]
    return any(san.lower() in (name, wildcard) for san in certificate.sans)


def _tls_finding(
    obs: Observation, others: list[Observation], path: PathObservation | None
) -> Finding:
    """Rules 15-19: the TLS handshake failed."""
    error = obs.error
    verified_elsewhere = [p for p in others if _phase_reached(p, Phase.TLS)]
    if error in CERT_ERRORS:
        return _certificate_finding(obs, verified_elsewhere, path)
    failed_on = frozenset([obs.address] if obs.address else [])
    same, verified_elsewhere = same_way(obs, verified_elsewhere, failed_on, _address, path)
    if same and not on_path(path):
        # Before the control's rule: the real name itself got through to this address on
        # this network in the round, so no filter of the name holds there.
        return passed_there("the TLS handshake", obs, same[0], obs.address, path)
    control = obs.control
    if control is not None and (control.error is None or control.error in CERT_ERRORS):
        return Finding(
            verdict=Verdict.TLS_BLOCKED,
            reason=f"the handshake failed ({error}) while the control SNI "
            f"{control.server_name!r} to the same address got a server reply" + path_note(path),
        )
    if verified_elsewhere:
        return Finding(
            verdict=Verdict.TLS_BLOCKED,
            reason=f"the handshake failed ({error}) while it succeeded "
            f"{where(verified_elsewhere[0], obs)}" + path_note(path),
        )
    if on_path(path):
        return Finding(
            verdict=Verdict.TLS_BLOCKED,
            reason=f"the handshake failed ({error}): {path_said(path)}",
        )
    return Finding(
        verdict=Verdict.DOWN,
        reason=f"the TLS handshake fails ({error}) on every healthy network" + path_note(path),
    )


def _http_finding(
    obs: Observation,
    others: list[Observation],
    path: PathObservation | None,
    config: Config,
    reference: ResponseShape | None,
    vouched_pages: frozenset[TupleKey],
) -> Finding:
    """Rules 20-21: the HTTP exchange failed."""
    error = obs.error
    blockpage = blockpage_reason(obs, config)
    if blockpage is not None:
        return Finding(verdict=Verdict.HTTP_BLOCKPAGE, reason=blockpage)
    changed = changed_page(obs, others, reference, vouched_pages)
    if changed is not None:
        return Finding(verdict=Verdict.HTTP_BLOCKPAGE, reason=changed)
    answered = obs.http is not None and obs.http.status is not None
    if not answered and path is not None and path.outcome is PathOutcome.BEFORE_DESTINATION:
        # No page came back (a reset, silence): who cut it is all there is to judge. A page
        # that came back was judged by `changed_page` above.
        return Finding(
            verdict=Verdict.HTTP_BLOCKPAGE,
            reason=f"HTTP failed ({error}), cut by the path: {path_said(path)}",
        )
    worked = [p for p in others if p.success or _phase_reached(p, Phase.HTTP)]
    if worked:
        return Finding(
            verdict=Verdict.HTTP_FAILED,
            reason=f"HTTP failed ({error}) while it succeeded {where(worked[0], obs)}",
        )
    return Finding(
        verdict=Verdict.DOWN,
        reason=f"HTTP fails ({error}) on every healthy network" + path_note(path),
    )


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
                f"it succeeded {where(passed[0], obs)}",
            )
        return Finding(
            verdict=Verdict.DOWN,
            reason=f"the HTTP/3 request fails ({error}) on every healthy network",
        )
    failed_on = frozenset([quic.address] if quic is not None else [])
    reached = [p for p in others if p.quic is not None and p.quic.connected]
    same, connected = same_way(
        obs, reached, failed_on, lambda p: p.quic.address if p.quic else None, None
    )
    if same:
        return passed_there("the QUIC handshake", obs, same[0], quic.address if quic else None)
    if connected:
        return Finding(
            verdict=Verdict.QUIC_BLOCKED,
            reason=f"the QUIC handshake failed ({error}){tcp}, and it succeeded "
            f"{where(connected[0], obs)}",
        )
    return Finding(
        verdict=Verdict.DOWN,
        reason=f"the QUIC handshake fails ({error}) on every healthy network{tcp}: the service "
        "answers no QUIC here, or every network blocks it (a network where QUIC works tells)",
    )
