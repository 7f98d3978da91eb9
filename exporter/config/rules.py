"""Rules across keys: what one key of an endpoint allows or implies for the others, what a
service's expected networks must cover, the probe interval's bounds, and the probe matrix
checked as a whole.

A tuple of the matrix that can never work (a UDP resolver through a SOCKS proxy, DoQ
through an interface or namespace) is left out of the matrix and listed by `check`; an
endpoint of which nothing could ever be probed is an error, never silently skipped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any, Final

from exporter.config.decoding import Decoder
from exporter.config.errors import join, quote
from exporter.config.model import (
    ALONE_WITH,
    DEFAULT_CHECKS,
    Check,
    Endpoint,
    HttpOptions,
    MtprotoOptions,
    Network,
    QuicOptions,
    Resolver,
    ThroughputOptions,
    TlsOptions,
    incompatibility,
    on_network,
)

__all__ = [
    "CANARY_WHY",
    "checks",
    "control_sni",
    "drop_not_allowed",
    "expected_families",
    "localisation_interval",
    "matrix",
    "mtproto",
    "options",
    "timeout_within_interval",
]

CANARY_WHY: Final = "canaries are probed on every network through every resolver"

_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def timeout_within_interval(d: Decoder, interval: float | None, timeout: float | None) -> None:
    if interval is not None and timeout is not None and timeout > interval:
        d.error("timeout", f"must not be longer than interval ({timeout:g}s > {interval:g}s)")


def localisation_interval(
    d: Decoder, path: str, every: float | None, interval: float | None
) -> None:
    """Localisation runs at most once per network, address and port per `every` seconds:
    never more often than the probes it follows."""
    if every is not None and interval is not None and every < interval:
        d.error(
            path,
            f"must not be shorter than the probe interval ({every:g}s < {interval:g}s): "
            "localisation runs at most once per network, address and port per interval",
        )


# ---- one endpoint


def drop_not_allowed(
    d: Decoder, path: str, given: dict[str, object], *, canary: bool, by_address: bool
) -> None:
    """Errors for (and out of `given`) the keys this endpoint may not have: a canary is probed
    everywhere, an endpoint given by address skips DNS and has its address's family."""
    for key in ("resolvers", "networks"):
        if canary and key in given:
            d.error(join(path, key), f"not allowed for a canary ({CANARY_WHY})")
            del given[key]
    if by_address and "resolvers" in given:
        d.error(
            join(path, "resolvers"), "not allowed for an endpoint given by address (it skips DNS)"
        )
        del given["resolvers"]
    if by_address and "ip_families" in given:
        d.error(
            join(path, "ip_families"),
            "not allowed for an endpoint given by address (its address sets the family)",
        )
        del given["ip_families"]


def checks(
    d: Decoder,
    path: str,
    given: Mapping[str, object],
    listed: set[Check] | None,
    *,
    by_address: bool,
) -> set[Check] | None:
    """The checks of an endpoint: its `checks:` (`listed`, None when refused) with what they
    need, else the default of an endpoint given by host, by address, or by both."""
    if "checks" in given:
        if listed is not None:
            if not by_address:
                listed.add(Check.DNS)  # a host is resolved before anything else
            for needs_tcp in (Check.TLS, Check.HTTP):
                if needs_tcp in listed and Check.TCP not in listed:
                    d.error(join(path, "checks"), f"{needs_tcp.value} needs tcp (add tcp)")
            if Check.THROUGHPUT in listed and Check.HTTP not in listed:
                d.error(join(path, "checks"), "throughput needs http (add http)")
            if Check.MTPROTO in listed and Check.TCP not in listed:
                d.error(join(path, "checks"), "mtproto needs tcp (add tcp)")
            for alone, allowed in ALONE_WITH.items():
                others = sorted(c.value for c in listed - allowed - {alone})
                if alone in listed and others:
                    d.error(
                        join(path, "checks"),
                        f"{alone.value} goes only with {' and '.join(sorted(allowed))}, not "
                        f"with {', '.join(others)} (give it an endpoint of its own)",
                    )
        return listed
    if not by_address:
        return set(DEFAULT_CHECKS)
    if "host" in given:
        return {Check.TCP, Check.TLS, Check.HTTP}
    return {Check.TCP}


def options(
    d: Decoder,
    path: str,
    given: Mapping[str, object],
    decoded: Mapping[str, Any],
    endpoint_checks: set[Check] | None,
) -> tuple[QuicOptions, TlsOptions, HttpOptions, ThroughputOptions]:
    """The quic, tls, http and throughput options of an endpoint (the defaults for the ones
    not given or refused). Options given for a check not made are an error; quic or
    throughput options without a `checks:` list turn their check on."""
    c = endpoint_checks
    listed = "checks" in given
    quic: QuicOptions = decoded.get("quic") or QuicOptions()
    if "quic" in given:
        if c is not None and not listed:
            c.add(Check.QUIC)
        elif c is not None and Check.QUIC not in c:
            d.error(join(path, "quic"), "QUIC options given but quic is not in checks")
    has_quic = c is not None and Check.QUIC in c
    tls: TlsOptions = decoded.get("tls") or TlsOptions()
    if "tls" in given and c is not None and Check.TLS not in c and not has_quic:
        d.error(join(path, "tls"), "TLS options given but neither tls nor quic is in checks")
    http: HttpOptions = decoded.get("http") or HttpOptions()
    if "http" in given and c is not None and Check.HTTP not in c and not (has_quic and quic.http3):
        d.error(
            join(path, "http"),
            "HTTP options given but http is not in checks (nor quic with http3: true)",
        )
    throughput = ThroughputOptions(path=http.path)
    if "throughput" in given:
        if (t := decoded.get("throughput")) is not None:
            throughput = ThroughputOptions(**{"path": http.path, **t})
        if c is not None and not listed and Check.HTTP in c:
            c.add(Check.THROUGHPUT)
        elif c is not None and Check.THROUGHPUT not in c:
            d.error(
                join(path, "throughput"),
                "throughput options given but throughput is not in checks"
                + ("" if Check.HTTP in c else " (it needs http)"),
            )
    return quic, tls, http, throughput


def mtproto(
    d: Decoder,
    path: str,
    given: Mapping[str, object],
    decoded: Mapping[str, Any],
    endpoint_checks: set[Check] | None,
) -> MtprotoOptions:
    """The mtproto options of an endpoint (the defaults when not given or refused). Given
    without a `checks:` list they turn the check on (with tcp); given for an endpoint whose
    checks leave it out, they are an error."""
    options: MtprotoOptions = decoded.get("mtproto") or MtprotoOptions()
    c = endpoint_checks
    if "mtproto" in given and c is not None:
        if "checks" not in given:
            c.clear()
            c.update(
                ALONE_WITH[Check.MTPROTO]
                & ({Check.DNS, Check.TCP} if "host" in given else {Check.TCP})
            )
            c.add(Check.MTPROTO)
        elif Check.MTPROTO not in c:
            d.error(join(path, "mtproto"), "MTProto options given but mtproto is not in checks")
    return options


def _same_name(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def control_sni(
    d: Decoder,
    path: str,
    given: Mapping[str, object],
    own: str | None,
    *,
    endpoint_checks: set[Check] | None,
    server_name: str | None,
    inherited: str | None,
) -> str | None:
    """The control SNI of an endpoint: its `own` (decoded), else the `inherited` default;
    only with tls, and never the endpoint's own server name (such a control would control
    nothing). An inherited default is dropped silently where it cannot apply."""
    has_tls = endpoint_checks is not None and Check.TLS in endpoint_checks
    sni = own if "control_sni" in given else inherited
    own_name = sni is not None and server_name is not None and _same_name(sni, server_name)
    if "control_sni" in given and endpoint_checks is not None:
        if not has_tls:
            d.error(join(path, "control_sni"), "control_sni given but tls is not in checks")
        elif own_name:
            d.error(
                join(path, "control_sni"),
                f"{quote(str(sni))} is the endpoint's own server name; a control must be "
                "another, innocuous name",
            )
    return None if not has_tls or own_name else sni


# ---- a service, the matrix


def _names(endpoints: Sequence[Endpoint]) -> str:
    shown = ", ".join(e.name for e in endpoints[:3])
    more = f" and {len(endpoints) - 3} more" if len(endpoints) > 3 else ""
    verb = "is" if len(endpoints) == 1 else "are"
    return f"{'endpoint' if len(endpoints) == 1 else 'endpoints'} {shown}{more} {verb}"


def expected_families(
    d: Decoder, path: str, expected: Sequence[_IPNetwork], endpoints: Sequence[Endpoint]
) -> None:
    """Judged by expected_networks, an answer of a family it has no network for would always
    be "outside", so every such tuple would read dns_tampered: an error."""
    if not expected:
        return
    for family, rtype in ((4, "A"), (6, "AAAA")):
        if any(net.version == family for net in expected):
            continue
        hosts = [e for e in endpoints if e.address is None and family in e.families]
        if hosts:
            d.error(
                path,
                f"has no IPv{family} network, but {_names(hosts)} probed over IPv{family}: "
                f"every {rtype} answer would be judged outside it (dns_tampered); add the "
                f"service's IPv{family} ranges or narrow ip_families",
            )


def matrix(
    d: Decoder,
    path: str,
    endpoint: Endpoint,
    networks: Mapping[str, Network | None],
    resolvers: Mapping[str, Resolver | None],
    *,
    canary: bool = False,
) -> None:
    """An error when nothing of this endpoint could ever be probed: every (network,
    resolver) pair of it is one a network cannot carry (`config.incompatibility`), or its
    only check is quic and every network is a proxy. Single pairs that cannot work are left
    out of the matrix, not refused: a SOCKS network is probed through the resolvers that
    cross it, and `check` lists what is left out."""
    nets = [n for name in endpoint.networks if (n := networks.get(name)) is not None]
    if not nets or (endpoint.address is not None and not endpoint.families):
        return
    if not any(on_network(endpoint, network) for network in nets):
        d.error(
            path,
            "the quic check cannot be made through any of its networks (a SOCKS proxy "
            "carries only TCP); add tcp checks or a network without a proxy",
        )
        return
    if endpoint.address is not None:
        return
    used = [r for name in endpoint.resolvers if (r := resolvers.get(name)) is not None]
    whys = {
        f"{quote(r.name)} through {quote(n.name)}: {why}"
        for n in nets
        for r in used
        if (why := incompatibility(n, r)) is not None
    }
    if used and len(whys) == len(nets) * len(used):
        first = sorted(whys)[0]
        more = f" (and {len(whys) - 1} more)" if len(whys) > 1 else ""
        fix = (
            f"{CANARY_WHY}: define a resolver every network can carry (tcp, dot or doh)"
            if canary
            else "add a resolver its networks can carry (tcp, dot or doh), or another network"
        )
        d.error(
            path,
            f"no resolver of it can be asked through any of its networks ({first}{more}); {fix}",
        )
