"""The top level of a config: its keys (`TOP_FIELDS`), their defaults, and the `Config` they
build once every section has been decoded."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from exporter.config import endpoints, networks, resolvers, rules, scalars, sections
from exporter.config.blocklists.addresses import DEFAULT_BLOCKPAGE_ADDRESSES
from exporter.config.decoding import Decoder, Fields, later
from exporter.config.errors import describe, quote
from exporter.config.model import (
    CANARY_SERVICE,
    DEFAULT_RESOLVER_PORT,
    Config,
    Localisation,
    MetricsOptions,
    Network,
    Resolver,
    ResolverType,
    Service,
    Throttling,
)

__all__ = ["TOP_FIELDS", "decode_config"]

_TOP: Final = "<top level>"


def _concurrency(d: Decoder, path: str, value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    d.error(path, f"expected an integer of at least 1, got {describe(value)}")
    return None


#: The top-level keys. `services`, `canaries` and `localisation` are decoded after the others,
#: with what those give them (the names defined, the probe interval).
TOP_FIELDS: Final[Fields] = MappingProxyType(
    {
        "interval": scalars.duration,
        "timeout": scalars.duration,
        "concurrency": _concurrency,
        "ip_families": scalars.families,
        "resolvers": resolvers.resolvers,
        "networks": networks.networks,
        "services": later,
        "canaries": later,
        "control_sni": scalars.sni,
        "blockpage_addresses": sections.blockpage_addresses,
        "blockpage_patterns": sections.blockpage_patterns,
        "blockpage_headers": sections.blockpage_headers,
        "throttling": sections.throttling,
        "metrics": sections.metrics,
        "localisation": later,
    }
)

#: The value of each top-level key not given.
_DEFAULTS: Final[Mapping[str, object]] = MappingProxyType(
    {
        "interval": 60.0,
        "timeout": 10.0,
        "concurrency": 64,
        "ip_families": (4,),
        "control_sni": None,
        "blockpage_addresses": DEFAULT_BLOCKPAGE_ADDRESSES,
        "blockpage_patterns": sections.DEFAULT_BLOCKPAGE_PAGE_PATTERNS,
        "blockpage_headers": sections.DEFAULT_BLOCKPAGE_HEADER_PATTERNS,
        "throttling": Throttling(),
        "metrics": MetricsOptions(),
        "localisation": Localisation(),
    }
)


def _defined(v: Mapping[str, Any]) -> endpoints.Defined:
    """The names the services may reference, with what endpoints inherit by default."""
    found: dict[str, Resolver | None] = v["resolvers"]
    silent = [name for name, r in found.items() if r is not None and r.silent]
    return endpoints.Defined(
        resolvers=found,
        networks=v["networks"],
        families=v["ip_families"] or (4,),
        control_sni=v["control_sni"],
        dns_resolvers=tuple(name for name in found if name not in silent),
        refused_resolvers={
            name: f"resolver {quote(name)} is silent: it runs no DNS server and only detects "
            "interception, so it cannot resolve endpoints"
            for name in silent
        },
    )


def _top(d: Decoder, data: object) -> Mapping[str, object] | None:
    """The top-level mapping's known keys, or None (with the error) when it is none."""
    if data is None:
        d.error(_TOP, "the config is empty; it needs at least services:")
        return None
    if not isinstance(data, Mapping):
        d.error(_TOP, f"expected a mapping of keys like interval, services, got {describe(data)}")
        return None
    return d.fields("", data, TOP_FIELDS, "a mapping")


def decode_config(d: Decoder, data: object) -> Config | None:
    """The Config of decoded YAML data, or None with every problem in `d.errors`."""
    given = _top(d, data)
    if given is None:
        return None
    v: dict[str, Any] = {**_DEFAULTS, **d.decode("", given, TOP_FIELDS)}
    rules.timeout_within_interval(d, v["interval"], v["timeout"])
    if "localisation" in given:
        v["localisation"] = sections.localisation(
            d, "localisation", given["localisation"], v["interval"]
        )
    if "resolvers" not in given:
        system = ResolverType.SYSTEM
        v["resolvers"] = {
            "system": Resolver(name="system", type=system, port=DEFAULT_RESOLVER_PORT[system])
        }
    if "networks" not in given:
        v["networks"] = {"default": Network(name="default")}
    defined = _defined(v)
    services: dict[str, Service] = {}
    if "services" not in given:
        d.error("services", "missing required key (a mapping of services to probe)")
    else:
        services.update(endpoints.services(d, "services", given["services"], defined))
    if "canaries" in given:
        canaries = endpoints.canaries(d, "canaries", given["canaries"], defined)
        if canaries is not None:
            services[CANARY_SERVICE] = canaries
    if d.errors:
        return None
    return Config(
        interval=v["interval"],
        timeout=v["timeout"],
        concurrency=v["concurrency"],
        ip_families=v["ip_families"],
        resolvers=MappingProxyType({k: r for k, r in v["resolvers"].items() if r is not None}),
        networks=MappingProxyType({k: n for k, n in v["networks"].items() if n is not None}),
        services=MappingProxyType(services),
        blockpage_addresses=v["blockpage_addresses"],
        blockpage_patterns=v["blockpage_patterns"],
        blockpage_headers=v["blockpage_headers"],
        localisation=v["localisation"],
        throttling=v["throttling"],
        metrics=v["metrics"],
    )
