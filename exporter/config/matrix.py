"""The probe matrix: every (endpoint, network, resolver, family) a config asks for. Pure."""

from __future__ import annotations

import enum
import ipaddress
from collections import defaultdict
from dataclasses import dataclass

from exporter.config.model import (
    NO_RESOLVER,
    Check,
    Config,
    Endpoint,
    Network,
    Resolver,
    incompatibility,
    on_network,
)
from exporter.model.observation import TupleKey

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
    """All tuples of `config`, sorted by key so that rounds and pages are stable. Pairs that
    cannot work are left out (`skipped` says which): a resolver a network cannot carry, the
    quic check through a proxy, an address endpoint of an IP family not in `ip_families`."""
    targets: list[Target] = []
    for endpoint in config.endpoints():
        for network_name in endpoint.networks:
            network = config.networks[network_name]
            probed = on_network(endpoint, network)
            if probed is None:
                continue
            if probed.address is not None:
                family = address_family(probed.address)
                if family not in probed.families:
                    continue
                key = TupleKey(
                    service=probed.service,
                    endpoint=probed.name,
                    network=network_name,
                    resolver=NO_RESOLVER,
                    family=family,
                )
                targets.append(Target(key=key, endpoint=probed, network=network, resolver=None))
                continue
            for resolver_name in probed.resolvers:
                resolver = config.resolvers[resolver_name]
                if incompatibility(network, resolver) is not None:
                    continue
                for family in probed.families:
                    key = TupleKey(
                        service=probed.service,
                        endpoint=probed.name,
                        network=network_name,
                        resolver=resolver_name,
                        family=family,
                    )
                    targets.append(
                        Target(key=key, endpoint=probed, network=network, resolver=resolver)
                    )
    targets.extend(resolver_checks(config))
    targets.sort(key=lambda t: t.key)
    return tuple(targets)


def skipped(config: Config) -> list[str]:
    """One line per kind of pair the matrix leaves out, for `check` (empty: nothing is)."""
    lines: list[str] = []
    pairs: dict[tuple[str, str], set[str]] = defaultdict(set)  # (network, why) -> resolvers
    for endpoint in config.endpoints():
        for network_name in endpoint.networks:
            for resolver_name in endpoint.resolvers:
                why = incompatibility(
                    config.networks[network_name], config.resolvers[resolver_name]
                )
                if why is not None:
                    pairs[(network_name, why)].add(resolver_name)
    for resolver in config.resolvers.values():
        if resolver.silent:
            for network_name, network in config.networks.items():
                why = incompatibility(network, resolver)
                if why is not None:
                    pairs[(network_name, why)].add(resolver.name)
    for (network_name, why), resolvers in sorted(pairs.items()):
        lines.append(
            f"network {network_name}: not asked through it: resolvers "
            f"{', '.join(sorted(resolvers))} ({why})"
        )
    no_quic: dict[str, list[str]] = defaultdict(list)
    for endpoint in config.endpoints():
        for network_name in endpoint.networks:
            network = config.networks[network_name]
            if network.proxy is not None and Check.QUIC in endpoint.checks:
                no_quic[network_name].append(f"{endpoint.service}.{endpoint.name}")
    for network_name, names in sorted(no_quic.items()):
        lines.append(
            f"network {network_name}: no quic check through it (a SOCKS proxy carries only "
            f"TCP) for {_few(names)}"
        )
    by_family: dict[int, list[str]] = defaultdict(list)
    for endpoint in config.endpoints():
        if endpoint.address is not None and not endpoint.families:
            by_family[address_family(endpoint.address)].append(
                f"{endpoint.service}.{endpoint.name}"
            )
    for family, names in sorted(by_family.items()):
        lines.append(f"not probed: IPv{family} is not in ip_families: {_few(names)}")
    return lines


def _few(names: list[str], shown: int = 6) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


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
        networks = [
            name
            for name in (
                config.networks if resolver.silent else sorted(used_on.get(resolver.name, ()))
            )
            if incompatibility(config.networks[name], resolver) is None
        ]
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
