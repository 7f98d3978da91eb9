"""The probe matrix: every (endpoint, network, resolver, family) a config asks for. Pure."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from exporter.config import NO_RESOLVER, Check, Config, Endpoint, Network, Resolver
from exporter.model import TupleKey

#: The service label of resolver checks. Config names start with [a-z0-9], so it never
#: collides with a configured service; these tuples are not exported as probe series.
RESOLVER_CHECK_SERVICE = "_resolver"

#: The name a silent resolver is asked when it has no `identity`: the first endpoint host of
#: the config, the kind of name an on-path injector forges answers for.
FALLBACK_SILENT_QNAME = "example.com"


class TargetKind(enum.Enum):
    ENDPOINT = "endpoint"
    #: An identity or silent-resolver question, judged for interception, not reachability.
    RESOLVER_CHECK = "resolver_check"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One tuple to probe, with its config objects resolved."""

    key: TupleKey
    endpoint: Endpoint
    network: Network
    resolver: Resolver | None  # None for an endpoint given by address
    kind: TargetKind = TargetKind.ENDPOINT


def address_family(address: str) -> int:
    return ipaddress.ip_address(address).version


def expand(config: Config) -> tuple[Target, ...]:
    """All tuples of `config`, sorted by key so that rounds and pages are stable."""
    targets: list[Target] = []
    for endpoint in config.endpoints():
        for network_name in endpoint.networks:
            network = config.networks[network_name]
            if endpoint.address is not None:
                key = TupleKey(
                    service=endpoint.service,
                    endpoint=endpoint.name,
                    network=network_name,
                    resolver=NO_RESOLVER,
                    family=address_family(endpoint.address),
                )
                targets.append(Target(key=key, endpoint=endpoint, network=network, resolver=None))
                continue
            for resolver_name in endpoint.resolvers:
                for family in endpoint.families:
                    key = TupleKey(
                        service=endpoint.service,
                        endpoint=endpoint.name,
                        network=network_name,
                        resolver=resolver_name,
                        family=family,
                    )
                    targets.append(
                        Target(
                            key=key,
                            endpoint=endpoint,
                            network=network,
                            resolver=config.resolvers[resolver_name],
                        )
                    )
    targets.extend(resolver_checks(config))
    targets.sort(key=lambda t: t.key)
    return tuple(targets)


def resolver_checks(config: Config) -> list[Target]:
    """One interception check per (network, resolver) for resolvers with `identity` or
    `silent`: the question goes through each network the resolver is used on (silent ones:
    every network)."""
    first_host = next((e.host for e in config.endpoints() if e.host), FALLBACK_SILENT_QNAME)
    used_on: dict[str, set[str]] = {}
    for endpoint in config.endpoints():
        for resolver_name in endpoint.resolvers:
            used_on.setdefault(resolver_name, set()).update(endpoint.networks)
    targets: list[Target] = []
    for resolver in config.resolvers.values():
        if resolver.identity is None and not resolver.silent:
            continue
        networks = (
            list(config.networks) if resolver.silent else sorted(used_on.get(resolver.name, ()))
        )
        qname = resolver.identity.qname if resolver.identity else first_host
        family = address_family(resolver.address) if resolver.address else 4
        for network_name in networks:
            key = TupleKey(
                service=RESOLVER_CHECK_SERVICE,
                endpoint="silent" if resolver.silent else "identity",
                network=network_name,
                resolver=resolver.name,
                family=family,
            )
            endpoint = Endpoint(
                service=RESOLVER_CHECK_SERVICE,
                name=key.endpoint,
                host=qname,
                address=None,
                port=resolver.port,
                checks=(Check.DNS,),
                resolvers=(resolver.name,),
                networks=(network_name,),
                families=(family,),
            )
            targets.append(
                Target(
                    key=key,
                    endpoint=endpoint,
                    network=config.networks[network_name],
                    resolver=resolver,
                    kind=TargetKind.RESOLVER_CHECK,
                )
            )
    return targets
