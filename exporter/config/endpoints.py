"""The `services:` and `canaries:` sections: services, their endpoints, and what each
endpoint inherits (resolvers, networks, IP families, control SNI) from its service and the
top level.

The rules between an endpoint's keys (options given for a check not made, a control SNI
equal to the server name, the matrix as a whole) are in `exporter.config.rules`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, Final

from exporter.config import options, rules, scalars
from exporter.config.decoding import Decode, Decoder, Fields, later
from exporter.config.errors import describe, join, quote
from exporter.config.model import (
    CANARY_SERVICE,
    CHECK_ORDER,
    Check,
    Endpoint,
    Network,
    Resolver,
    Service,
)

__all__ = ["Defined", "canaries", "endpoint_fields", "service_fields", "services"]

_CHECK_VALUES: Final = frozenset(c.value for c in CHECK_ORDER)
_CHECKS: Final = ", ".join(c.value for c in CHECK_ORDER)

_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Defined:
    """Names defined at the top level; a value is None when its definition has errors (the
    name still counts as defined, so that references to it are not errors too)."""

    resolvers: Mapping[str, Resolver | None]
    networks: Mapping[str, Network | None]
    families: tuple[int, ...]
    #: The top-level control_sni.
    control_sni: str | None
    #: The resolvers an endpoint uses by default: every one but the silent ones, in file order.
    dns_resolvers: tuple[str, ...]
    #: Resolver name -> why it may not be listed in a `resolvers:` narrowing list.
    refused_resolvers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Scope:
    """What the endpoints of one service (or the canaries) inherit."""

    service: str
    resolvers: tuple[str, ...] | None  # the service's narrowing; None: every DNS resolver
    networks: tuple[str, ...] | None  # the service's narrowing; None: every network
    control_sni: str | None  # the service's, else the top level's
    expected_networks: tuple[_IPNetwork, ...] = ()
    canary: bool = False


def _checks(d: Decoder, path: str, value: object, *, by_address: bool) -> set[Check] | None:
    items = d.nonempty_list(path, value, f"checks among {_CHECKS}")
    if items is None:
        return None
    found: set[Check] = set()
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        if not isinstance(item, str) or item not in _CHECK_VALUES:
            d.error(item_path, f"expected one of {_CHECKS}, got {describe(item)}")
            ok = False
        elif Check(item) in found:
            d.error(item_path, f"{item} is listed twice")
            ok = False
        elif item == Check.DNS and by_address:
            d.error(
                item_path,
                "dns is not possible for an endpoint given by address (it is dialled "
                "directly); remove dns or address",
            )
            ok = False
        else:
            found.add(Check(item))
    return found if ok else None


def endpoint_fields(defined: Defined, *, by_address: bool) -> Fields:
    """The keys of an endpoint with their decoders; the same keys for every endpoint, the
    decoders bound to what it may reference."""
    return {
        "host": scalars.host,
        "address": scalars.ip,
        "port": scalars.port,
        "checks": partial(_checks, by_address=by_address),
        "tls": options.tls,
        "http": options.http,
        "resolvers": _names_of("resolver", defined),
        "networks": _names_of("network", defined),
        "ip_families": scalars.families,
        "control_sni": scalars.sni,
        "throughput": options.throughput,
        "quic": options.quic,
        "mtproto": options.mtproto,
    }


def _resolvers(
    d: Decoder,
    path: str,
    v: Mapping[str, Any],
    defined: Defined,
    scope: _Scope,
    *,
    by_address: bool,
) -> tuple[str, ...] | None:
    """The resolvers of an endpoint: none by address, else its own or the inherited ones."""
    if by_address:
        return ()
    if "resolvers" in v:
        listed: tuple[str, ...] | None = v["resolvers"]
        return listed
    inherited = scope.resolvers if scope.resolvers is not None else defined.dns_resolvers
    if not inherited and defined.refused_resolvers:
        d.error(
            path,
            "no resolver can resolve host: every resolver is silent (silent resolvers "
            "only detect interception); define one that answers DNS",
        )
    return inherited


def _families(
    v: Mapping[str, Any], defined: Defined, *, by_address: bool
) -> tuple[int, ...] | None:
    """The IP families of an endpoint. One by address is probed only where its family is
    asked for: an IPv6 data centre where ip_families has 6 (the matrix leaves it out
    otherwise, and `check` says so)."""
    if by_address:
        address: str | None = v.get("address")
        own = ipaddress.ip_address(address).version if address is not None else None
        return None if own is None else ((own,) if own in defined.families else ())
    if "ip_families" in v:
        listed: tuple[int, ...] | None = v["ip_families"]
        return listed
    return defined.families


def _endpoint(
    d: Decoder, path: str, name: str, value: object, defined: Defined, scope: _Scope
) -> Endpoint | None:
    by_address = isinstance(value, Mapping) and "address" in value
    table = endpoint_fields(defined, by_address=by_address)
    given = d.fields(path, value, table, "a mapping of endpoint options")
    if given is None:
        return None
    n = len(d.errors)
    rules.drop_not_allowed(d, path, given, canary=scope.canary, by_address=by_address)
    v = d.decode(path, given, table)
    if "host" not in given and not by_address:
        d.error(path, "needs host (a DNS name) or address (an IP address), or both")
    if "port" not in given:
        d.error(join(path, "port"), "missing required key (1-65535)")
    checks = rules.checks(d, path, given, v.get("checks"), by_address=by_address)
    quic, tls, http, throughput = rules.options(d, path, given, v, checks)
    mtproto = rules.mtproto(d, path, given, v, checks)
    resolvers = _resolvers(d, path, v, defined, scope, by_address=by_address)
    inherited = scope.networks if scope.networks is not None else tuple(defined.networks)
    networks: tuple[str, ...] | None = v.get("networks", inherited)
    families = _families(v, defined, by_address=by_address)
    control_sni = rules.control_sni(
        d,
        path,
        given,
        v.get("control_sni"),
        endpoint_checks=checks,
        server_name=tls.server_name or v.get("host"),
        inherited=scope.control_sni,
    )
    if len(d.errors) != n:
        return None
    assert checks is not None
    assert resolvers is not None
    assert networks is not None
    assert families is not None
    return Endpoint(
        service=scope.service,
        name=name,
        host=v.get("host"),
        address=v.get("address"),
        port=v["port"],
        checks=tuple(c for c in CHECK_ORDER if c in checks),
        tls=tls,
        http=http,
        throughput=throughput,
        quic=quic,
        mtproto=mtproto,
        resolvers=resolvers,
        networks=networks,
        families=families,
        expected_networks=scope.expected_networks,
        control_sni=control_sni,
    )


def _endpoints(
    d: Decoder, path: str, value: object, defined: Defined, scope: _Scope
) -> dict[str, Endpoint]:
    """The endpoints of a mapping of endpoint names, each checked against the matrix."""
    entries = d.named(path, value, "canary endpoint" if scope.canary else "endpoint")
    if not entries and isinstance(value, Mapping):
        if scope.canary:
            d.error(path, "must define at least one canary (omit it for none)")
        else:
            d.error(path, "must define at least one endpoint")
    endpoints: dict[str, Endpoint] = {}
    for entry_path, ep_name, body in entries:
        endpoint = _endpoint(d, entry_path, ep_name or "", body, defined, scope)
        if endpoint is not None and ep_name is not None:
            endpoints[ep_name] = endpoint
            rules.matrix(
                d, entry_path, endpoint, defined.networks, defined.resolvers, canary=scope.canary
            )
    return endpoints


def _expected_networks(d: Decoder, path: str, value: object) -> tuple[_IPNetwork, ...] | None:
    items = d.nonempty_list(
        path,
        value,
        "networks like 149.154.160.0/20",
        empty_hint="omit it when the service's ranges are not known",
    )
    if items is None:
        return None
    nets: list[_IPNetwork] = []
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        net: _IPNetwork | None = None
        if isinstance(item, str):
            try:
                net = ipaddress.ip_network(item, strict=True)
            except ValueError:
                try:
                    loose = ipaddress.ip_network(item, strict=False)
                except ValueError:
                    pass
                else:
                    d.error(item_path, f"{quote(item)} has host bits set: the network is {loose}")
                    ok = False
                    continue
        if net is None:
            d.error(
                item_path,
                f"expected a network like 149.154.160.0/20 or 2001:db8::/32, got {describe(item)}",
            )
            ok = False
        elif net in nets:
            d.error(item_path, f"{net} is listed twice")
            ok = False
        else:
            nets.append(net)
    return tuple(nets) if ok else None


def _names_of(kind: str, defined: Defined) -> Decode:
    """The decoder of a `resolvers:` or `networks:` narrowing list of `defined` names."""
    if kind == "resolver":
        return partial(
            scalars.name_list,
            kind="resolver",
            defined=defined.resolvers,
            refused=defined.refused_resolvers,
        )
    return partial(scalars.name_list, kind="network", defined=defined.networks)


def service_fields(defined: Defined) -> Fields:
    """The keys of a service with their decoders, bound to the names it may reference."""
    return {
        "endpoints": later,  # decoded last, with what the other keys give its endpoints
        "resolvers": _names_of("resolver", defined),
        "networks": _names_of("network", defined),
        "expected_networks": _expected_networks,
        "control_sni": scalars.sni,
    }


def _service(d: Decoder, path: str, name: str, value: object, defined: Defined) -> Service | None:
    table = service_fields(defined)
    given = d.fields(path, value, table, "a mapping with endpoints")
    if given is None:
        return None
    n = len(d.errors)
    v = d.decode(path, given, table)
    expected: tuple[_IPNetwork, ...] = v.get("expected_networks") or ()
    scope = _Scope(
        service=name,
        resolvers=v.get("resolvers"),
        networks=v.get("networks"),
        control_sni=v.get("control_sni", defined.control_sni),
        expected_networks=expected,
    )
    endpoints: dict[str, Endpoint] = {}
    if "endpoints" not in given:
        d.error(join(path, "endpoints"), "missing required key (a mapping of endpoints)")
    else:
        endpoints = _endpoints(d, join(path, "endpoints"), given["endpoints"], defined, scope)
    rules.expected_families(d, join(path, "expected_networks"), expected, list(endpoints.values()))
    if len(d.errors) != n:
        return None
    return Service(name=name, endpoints=MappingProxyType(endpoints))


def services(d: Decoder, path: str, value: object, defined: Defined) -> dict[str, Service]:
    """Service name -> Service, for the services without errors."""
    entries = d.named(path, value, "service", reserved={CANARY_SERVICE: "for canaries:"})
    if not entries and isinstance(value, Mapping):
        d.error(path, "must define at least one service")
    out: dict[str, Service] = {}
    for entry_path, name, body in entries:
        service = _service(d, entry_path, name or "", body, defined)
        if service is not None and name is not None:
            out[name] = service
    return out


def canaries(d: Decoder, path: str, value: object, defined: Defined) -> Service | None:
    """The canaries, as the service `CANARY_SERVICE` probed everywhere."""
    n = len(d.errors)
    scope = _Scope(
        service=CANARY_SERVICE,
        resolvers=None,
        networks=None,
        control_sni=defined.control_sni,
        canary=True,
    )
    endpoints = _endpoints(d, path, value, defined, scope)
    if len(d.errors) != n:
        return None
    return Service(name=CANARY_SERVICE, endpoints=MappingProxyType(endpoints))
