"""The `networks:` section: the ways out of the host a probe can take (a source address, an
interface, a SOCKS proxy, a network namespace)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final
from urllib.parse import unquote, urlsplit

from exporter.config import scalars
from exporter.config.decoding import Decoder, Fields
from exporter.config.errors import join, quote
from exporter.config.model import Network, Proxy

__all__ = ["NETWORK_FIELDS", "network", "networks"]

_NETNS: Final = re.compile(r"[A-Za-z0-9_.-]+")
_IFNAMSIZ: Final = 15  # usable characters of a Linux interface name
_PROXY_HINT: Final = "a URL like socks5://127.0.0.1:9050, socks5://user:pass@127.0.0.1:1080"


def _interface(d: Decoder, path: str, value: object) -> str | None:
    v = scalars.string(d, path, value, "an interface name like wg0")
    if v is None:
        return None
    if len(v) > _IFNAMSIZ:
        d.error(path, f"{quote(v)} is longer than {_IFNAMSIZ} characters (Linux IFNAMSIZ)")
    elif v in (".", "..") or any(c == "/" or c == ":" or c.isspace() for c in v):
        d.error(path, f"{quote(v)} is not a valid interface name")
    else:
        return v
    return None


def _netns(d: Decoder, path: str, value: object) -> str | None:
    v = scalars.string(d, path, value, "a network namespace name like vpn")
    if v is None:
        return None
    if not _NETNS.fullmatch(v) or v in (".", ".."):
        d.error(path, f"{quote(v)} is not a namespace name (letters, digits, '_', '.', '-')")
        return None
    return v


def _proxy(d: Decoder, path: str, value: object) -> Proxy | None:
    # Never echo the URL: it may hold a password.
    if not isinstance(value, str) or not value:
        d.error(path, f"expected {_PROXY_HINT} or socks4://127.0.0.1:1080")
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        d.error(path, f"not a valid proxy URL: expected {_PROXY_HINT}")
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if scheme not in ("socks5", "socks4"):
        hint = ""
        if scheme in ("socks5h", "socks4a"):
            hint = " (names are always resolved by the exporter, through the resolver under test)"
        d.error(path, f"unsupported proxy scheme {quote(scheme)}: use socks5 or socks4{hint}")
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        d.error(path, f"a proxy URL has no path, query or fragment: expected {_PROXY_HINT}")
    elif not host:
        d.error(path, f"the proxy URL has no host: expected {_PROXY_HINT}")
    elif host != "localhost" and not scalars.is_ip(host):
        d.error(path, f"the proxy host {quote(host)} must be an IP address or localhost")
    elif port is None or port == 0:
        d.error(path, f"the proxy URL needs a port (1-65535): expected {_PROXY_HINT}")
    elif scheme == "socks4" and (username is not None or password is not None):
        d.error(path, "socks4 takes no credentials; use socks5://user:pass@host:port")
    elif (username is not None or password is not None) and not (username and password):
        d.error(path, "proxy credentials must be user:password, both non-empty")
    else:
        if host != "localhost":
            host = str(ipaddress.ip_address(host))
        return Proxy(scheme=scheme, host=host, port=port, username=username, password=password)
    return None


NETWORK_FIELDS: Final[Fields] = MappingProxyType(
    {
        "source_address": scalars.ip,
        "interface": _interface,
        "proxy": _proxy,
        "netns": _netns,
    }
)


def network(d: Decoder, path: str, name: str, value: object) -> Network | None:
    if value is None:  # `default:` with nothing, same as `default: {}`
        value = {}
    given = d.fields(path, value, NETWORK_FIELDS, "a mapping of network options (or {})")
    if given is None:
        return None
    n = len(d.errors)
    v = d.decode(path, given, NETWORK_FIELDS)
    source: str | None = v.get("source_address")
    proxy: Proxy | None = v.get("proxy")
    if (
        source is not None
        and proxy is not None
        and proxy.host != "localhost"
        and ipaddress.ip_address(source).version != ipaddress.ip_address(proxy.host).version
    ):
        d.error(
            join(path, "source_address"),
            f"{source} and the proxy host {proxy.host} are of different IP families: the "
            "connection to the proxy cannot bind this address",
        )
    return Network(name=name, **v) if len(d.errors) == n else None


def networks(d: Decoder, path: str, value: object) -> dict[str, Network | None]:
    """Network name -> its Network (None: it has errors, but the name is defined)."""
    entries = d.named(path, value, "network")
    if not entries and isinstance(value, Mapping):
        d.error(path, "must define at least one network (omit it for default: {})")
    out: dict[str, Network | None] = {}
    for entry_path, name, body in entries:
        net = network(d, entry_path, name or "", body)
        if name is not None:
            out[name] = net
    return out
