"""The probe matrix: every (endpoint, network, resolver, family) a config asks for. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from exporter.config import NO_RESOLVER, Config, Endpoint, Network, Resolver
from exporter.model import TupleKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One tuple to probe, with its config objects resolved."""

    key: TupleKey
    endpoint: Endpoint
    network: Network
    resolver: Resolver | None  # None for an endpoint given by address


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
    targets.sort(key=lambda t: t.key)
    return tuple(targets)
