"""The `resolvers:` section: each resolver's transport, address, TLS and identity check.

`type` is decoded first: it decides which of the other keys are allowed
(`_RESOLVER_TYPE_KEYS`), and how the address, port and server name are completed from the
DoH URL or the defaults.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

from exporter.config import options, scalars
from exporter.config.decoding import Decoder, Fields
from exporter.config.errors import describe, join, quote
from exporter.config.model import (
    DEFAULT_RESOLVER_PORT,
    ENCRYPTED_RESOLVER_TYPES,
    NO_RESOLVER,
    IdentityCheck,
    Resolver,
    ResolverType,
    TlsOptions,
)

__all__ = ["IDENTITY_FIELDS", "RESOLVER_FIELDS", "resolver", "resolvers"]

_RESOLVER_TYPES: Final = tuple(t.value for t in ResolverType)
_TLS_RESOLVER_KEYS: Final = frozenset({"type", "address", "port", "server_name", "tls", "identity"})
_DOH_RESOLVER_KEYS: Final = frozenset({"type", "url", "address", "server_name", "tls", "identity"})
#: DoH over HTTP/1.1 (`doh`) and over HTTP/3 (`doh3`): configured by a URL.
_URL_RESOLVER_TYPES: Final = (ResolverType.DOH, ResolverType.DOH3)
#: The types that dial `address` (a DoH resolver may take it from its URL).
_ADDRESS_RESOLVER_TYPES: Final = (
    ResolverType.UDP,
    ResolverType.TCP,
    ResolverType.DOT,
    ResolverType.DOQ,
)
#: The keys of `RESOLVER_FIELDS` each type allows.
_RESOLVER_TYPE_KEYS: Final[Mapping[ResolverType, frozenset[str]]] = MappingProxyType(
    {
        ResolverType.SYSTEM: frozenset({"type", "identity"}),
        ResolverType.UDP: frozenset({"type", "address", "port", "silent", "identity"}),
        ResolverType.TCP: frozenset({"type", "address", "port", "silent", "identity"}),
        ResolverType.DOT: _TLS_RESOLVER_KEYS,
        ResolverType.DOH: _DOH_RESOLVER_KEYS,
        ResolverType.DOQ: _TLS_RESOLVER_KEYS,
        ResolverType.DOH3: _DOH_RESOLVER_KEYS,
    }
)


# ---- identity


def _qname(d: Decoder, path: str, value: object) -> str | None:
    if isinstance(value, str) and scalars.is_dns_name(value):
        return value
    d.error(path, f"expected a DNS name like o-o.myaddr.l.google.com, got {describe(value)}")
    return None


IDENTITY_FIELDS: Final[Fields] = MappingProxyType(
    {
        "qname": _qname,
        "qtype": scalars.one_of(("TXT", "A", "AAAA")),
        "qclass": scalars.one_of(("IN", "CH")),
        "expect": scalars.regex,
    }
)
#: The keys of `IDENTITY_FIELDS` without a default, with what to give.
_IDENTITY_REQUIRED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "qname": "a DNS name like o-o.myaddr.l.google.com",
        "expect": "a regular expression a truthful answer matches",
    }
)


def _identity(d: Decoder, path: str, value: object) -> IdentityCheck | None:
    given = d.fields(path, value, IDENTITY_FIELDS, "a mapping with qname and expect")
    if given is None:
        return None
    n = len(d.errors)
    decoded = d.decode(path, given, IDENTITY_FIELDS)
    for key, hint in _IDENTITY_REQUIRED.items():
        if key not in given:
            d.error(join(path, key), f"missing required key ({hint})")
    return IdentityCheck(**decoded) if len(d.errors) == n else None


# ---- resolver


def _resolver_type(d: Decoder, path: str, value: object) -> ResolverType | None:
    if isinstance(value, str) and value in _RESOLVER_TYPES:
        return ResolverType(value)
    d.error(path, f"expected one of {', '.join(_RESOLVER_TYPES)}, got {describe(value)}")
    return None


def _doh_url(d: Decoder, path: str, value: object) -> tuple[str, str, int | None] | None:
    """(url, host, port or None) of a DoH URL."""
    url = scalars.string(d, path, value, "an https:// URL like https://1.1.1.1/dns-query")
    if url is None:
        return None
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as e:
        d.error(path, f"invalid URL {quote(url)}: {e}")
        return None
    host = parts.hostname
    if parts.scheme.lower() != "https":
        d.error(path, f"must be an https:// URL, got {quote(url)}")
    elif not host:
        d.error(path, f"the URL {quote(url)} has no host")
    elif parts.username is not None or parts.password is not None:
        d.error(path, "the URL must not hold credentials")
    elif not scalars.is_ip(host) and not scalars.is_dns_name(host):
        d.error(path, f"the URL host {quote(host)} is neither an IP address nor a DNS name")
    elif port == 0:
        d.error(path, "0 is not a port (1-65535)")
    else:
        return url, host, port
    return None


RESOLVER_FIELDS: Final[Fields] = MappingProxyType(
    {
        "type": _resolver_type,  # decoded before the others: it decides which are allowed
        "address": scalars.ip,
        "port": scalars.port,
        "server_name": scalars.server_name,
        "url": _doh_url,
        "tls": options.tls,
        "silent": scalars.boolean,
        "identity": _identity,
    }
)


def _not_allowed(rtype: ResolverType, key: str) -> str:
    if rtype is ResolverType.SYSTEM:
        return "not allowed for type system (it uses the nameservers of the host's resolv.conf)"
    if rtype in _URL_RESOLVER_TYPES and key == "port":
        return (
            f"not allowed for type {rtype.value} (put the port in the url: https://host:port/path)"
        )
    types = ", ".join(t.value for t, keys in _RESOLVER_TYPE_KEYS.items() if key in keys)
    return f"not allowed for type {rtype.value} (only for {types})"


def _type_of(d: Decoder, path: str, given: dict[str, object]) -> ResolverType | None:
    """The resolver's type, taken out of `given` with the keys it does not allow (errors)."""
    if "type" not in given:
        d.error(join(path, "type"), f"missing required key (one of {', '.join(_RESOLVER_TYPES)})")
        return None
    rtype = _resolver_type(d, join(path, "type"), given.pop("type"))
    if rtype is not None:
        for key in list(given):
            if key not in _RESOLVER_TYPE_KEYS[rtype]:
                d.error(join(path, key), _not_allowed(rtype, key))
                del given[key]
    return rtype


def _dialled(
    d: Decoder, path: str, rtype: ResolverType, given: Mapping[str, object], v: dict[str, Any]
) -> None:
    """Completes `address`, `port` and `url` of `v` from the DoH URL; errors for the ones a
    type needs and lacks."""
    if "address" not in given and rtype in _ADDRESS_RESOLVER_TYPES:
        d.error(
            join(path, "address"),
            f"missing required key for type {rtype.value} (the resolver's IP address)",
        )
    doh = v.pop("url", None)
    if rtype not in _URL_RESOLVER_TYPES:
        return
    if "url" not in given:
        d.error(
            join(path, "url"),
            f"missing required key for type {rtype.value} (like https://1.1.1.1/dns-query)",
        )
    elif doh is not None:
        v["url"], host, url_port = doh
        v["port"] = url_port or DEFAULT_RESOLVER_PORT[rtype]
        if "address" in given:
            pass
        elif scalars.is_ip(host):
            v["address"] = str(ipaddress.ip_address(host))
        else:
            d.error(
                join(path, "address"),
                f"required for type {rtype.value} when the url host {quote(host)} is not an "
                "IP address: the exporter does not resolve a DoH server through another "
                "resolver, so give the IP address to dial",
            )
        v["host"] = host


def _server_name(
    d: Decoder, path: str, rtype: ResolverType, given: Mapping[str, object], v: dict[str, Any]
) -> None:
    """Completes `server_name` of `v` from tls.server_name or the DoH URL's host; an error
    when an encrypted transport has no name to check the certificate against."""
    tls: TlsOptions | None = v["tls"]
    doh_host: str | None = v.pop("host", None)
    if rtype not in ENCRYPTED_RESOLVER_TYPES or tls is None:
        return
    server_name = v.get("server_name")
    if server_name is not None and tls.server_name is not None:
        d.error(join(path, "tls.server_name"), "give only one of server_name and tls.server_name")
    server_name = server_name or tls.server_name
    if rtype in _URL_RESOLVER_TYPES and server_name is None:
        server_name = doh_host
    if (
        rtype not in _URL_RESOLVER_TYPES
        and server_name is None
        and "server_name" not in given
        and not tls.insecure_skip_verify
    ):
        d.error(
            join(path, "server_name"),
            f"missing required key for type {rtype.value}: the name in the server's "
            "certificate (or set tls.insecure_skip_verify: true)",
        )
    v["server_name"] = server_name


def resolver(d: Decoder, path: str, name: str, value: object) -> Resolver | None:
    given = d.fields(path, value, RESOLVER_FIELDS, "a mapping of resolver options")
    if given is None:
        return None
    n = len(d.errors)
    rtype = _type_of(d, path, given)
    v = d.decode(path, given, RESOLVER_FIELDS)
    if rtype is None:
        return None
    v.setdefault("tls", TlsOptions())
    _dialled(d, path, rtype, given, v)
    _server_name(d, path, rtype, given, v)
    if len(d.errors) != n or v["tls"] is None:
        return None
    v["port"] = v.get("port") or DEFAULT_RESOLVER_PORT[rtype]
    return Resolver(name=name, type=rtype, **v)


def resolvers(d: Decoder, path: str, value: object) -> dict[str, Resolver | None]:
    """Resolver name -> its Resolver (None: it has errors, but the name is defined)."""
    entries = d.named(
        path,
        value,
        "resolver",
        reserved={NO_RESOLVER: "(it labels endpoints given by address, which skip DNS)"},
    )
    if not entries and isinstance(value, Mapping):
        d.error(path, "must define at least one resolver (omit it for the system one)")
    out: dict[str, Resolver | None] = {}
    for entry_path, name, body in entries:
        r = resolver(d, entry_path, name or "", body)
        if name is not None:
            out[name] = r
    return out
