"""Whether a resolver's answer is a lie (rules 3-7 of docs/verdicts.md): bogons, known
blockpage addresses, answers outside a service's published ranges, and answers disjoint from
the encrypted resolvers' while no verified handshake vouches for them. Pure.

An answer is consistent, as in OONI's web_connectivity, when it lies in the service's
`expected_networks` or when a probe of the same endpoint and family completed a TLS handshake
with that very address, verified for the name, in the same round.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from exporter.config.model import Check, Config, Endpoint, Resolver
from exporter.model.observation import ErrorKind, Observation

#: Sizes of the prefixes compared when judging whether two answers agree: CDNs hand out
#: different addresses of the same block to different resolvers.
V4_PREFIX = 24
V6_PREFIX = 48


def is_bogon(address: str) -> bool:
    """Private, loopback, link-local, reserved, documentation, multicast and the like."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def prefix_of(address: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    bits = V4_PREFIX if ip.version == 4 else V6_PREFIX
    return ipaddress.ip_network(f"{ip}/{bits}", strict=False)


def _inside(
    address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def tamper_reason(
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
        if _can_vouch(endpoint) and not any(prefix_of(a) in encrypted_prefixes for a in verified):
            # Nothing proved the encrypted resolvers' answers either (an outage: no handshake
            # completes anywhere): two unproven answers, neither a lie by comparison.
            return None
        mine = {p for p in (prefix_of(a) for a in dns.answers) if p is not None}
        if mine.isdisjoint(encrypted_prefixes):
            return (
                f"answered {', '.join(dns.answers[:3])}, disjoint from what encrypted resolvers "
                "answered in the same round" + _unproven(endpoint)
            )
    return None


def _can_vouch(endpoint: Endpoint | None) -> bool:
    """Whether a probe of `endpoint` can prove an address serves the name (`verified_addresses`)."""
    return endpoint is not None and (Check.TLS in endpoint.checks or Check.STUN in endpoint.checks)


def _unproven(endpoint: Endpoint | None) -> str:
    """The end of a rule 5/6 reason: that no handshake vouched for the answer."""
    if endpoint is not None and Check.TLS in endpoint.checks:
        return ", and no handshake with it was verified for the name this round"
    return " (without the tls or stun check nothing can vouch for another address)"


def verified_addresses(group: Iterable[Observation]) -> frozenset[str]:
    """The addresses a probe of the group (one endpoint and family, any network) completed a
    TLS handshake with, verified for the endpoint's name, or (for a STUN endpoint, which has
    no TLS) a STUN transaction with: they serve the name, whatever a resolver's answer looked
    like next to another's (a CDN or an anycast relay answers each resolver with a different
    site). A sinkhole or blockpage address answers no STUN request with its transaction ID."""
    return frozenset(
        o.address
        for o in group
        if o.address is not None
        and (
            (
                o.tls is not None
                and o.tls.error is None
                and o.tls.certificate is not None
                and o.tls.certificate.verified
            )
            or (o.stun is not None and o.stun.error is None)
        )
    )


def encrypted_prefixes(
    others: Iterable[Observation], config: Config
) -> set[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The prefixes of what the encrypted resolvers answered the other tuples of the round,
    leaving out answers that are lies by rules 3-4 (rule 6 compares plain answers with
    these)."""
    return {
        prefix
        for p in others
        if p.dns is not None
        and p.dns.error is None
        and (r := config.resolvers.get(p.key.resolver)) is not None
        and r.encrypted
        and not any(is_bogon(a) or a in config.blockpage_addresses for a in p.dns.answers)
        for prefix in (prefix_of(a) for a in p.dns.answers)
        if prefix is not None
    }
