"""Decoders of single values: durations, sizes, ports, addresses, names, regular expressions,
HTTP statuses and headers, lists of names.

Each has the `Decode` shape, (context, key path, value) -> the value or None, the error
recorded; `one_of` and `int_range` make such decoders for a fixed set or range.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Final

from exporter.config.decoding import Decode, Decoder
from exporter.config.errors import describe, join, key_text, quote
from exporter.config.model import StatusRange

__all__ = [
    "MAX_BODY_LIMIT",
    "SIZE_HINT",
    "body_limit",
    "boolean",
    "byte_pattern",
    "ca_file",
    "dns_name",
    "duration",
    "families",
    "header_entries",
    "headers",
    "host",
    "int_range",
    "ip",
    "is_dns_name",
    "is_ip",
    "name_list",
    "one_of",
    "parse_duration",
    "parse_size",
    "port",
    "regex",
    "request_path",
    "server_name",
    "sni",
    "status",
    "string",
]

_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_DURATION_UNITS: Final[Mapping[str, tuple[int, Decimal]]] = MappingProxyType(
    {
        "h": (0, Decimal(3600)),
        "m": (1, Decimal(60)),
        "s": (2, Decimal(1)),
        "ms": (3, Decimal("0.001")),
    }
)
_DURATION_HINT: Final = "a number and a unit (h, m, s, ms) like 500ms, 10s, 2m, 1h, 1m30s"

#: The largest `http.body_limit`, bytes.
MAX_BODY_LIMIT: Final = 16 * 1024 * 1024
_SIZE: Final = re.compile(r"(\d+)\s*(B|KiB|MiB)?")
_SIZE_UNITS: Final[Mapping[str, int]] = MappingProxyType({"B": 1, "KiB": 1024, "MiB": 1024 * 1024})
SIZE_HINT: Final = "a size in bytes or like 256KiB, 1MiB (units B, KiB, MiB)"

_DNS_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_STATUS_CLASS: Final = re.compile(r"[1-5]xx")


def parse_duration(text: str) -> float:
    """Seconds of a duration like ``500ms``, ``10s``, ``2m``, ``1h`` or ``1m30s``.

    Parts go from the largest unit to the smallest, each unit at most once. Raises ValueError.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string like 10s, got {describe(text)}")
    s = text.strip()
    if not s:
        raise ValueError(f"empty duration: expected {_DURATION_HINT}")
    total = Decimal(0)
    pos = 0
    last_rank = -1
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {quote(text)}: expected {_DURATION_HINT}")
        rank, unit_seconds = _DURATION_UNITS[m.group(2)]
        if rank <= last_rank:
            raise ValueError(
                f"invalid duration {quote(text)}: units must go from the largest to the "
                "smallest, each at most once (h, m, s, ms)"
            )
        last_rank = rank
        total += Decimal(m.group(1)) * unit_seconds
        pos = m.end()
    return float(total)


def parse_size(value: object) -> int | None:
    """Bytes of `1048576`, `"512KiB"` or `"1MiB"`; None when it is none of these."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
        return int(m.group(1)) * _SIZE_UNITS[m.group(2) or "B"]
    return None


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_dns_name(text: str) -> bool:
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():  # "1.2.3" is a broken address, not a name
        return False
    return all(_DNS_LABEL.fullmatch(label) for label in labels)


# ---- decoders


def string(d: Decoder, path: str, value: object, what: str = "a string") -> str | None:
    if isinstance(value, str) and value:
        return value
    d.error(path, f"expected {what}, got {describe(value)}")
    return None


def boolean(d: Decoder, path: str, value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    d.error(path, f"expected true or false, got {describe(value)}")
    return None


def one_of(allowed: Sequence[str]) -> Decode:
    """The decoder of a string among `allowed`."""

    def decode(d: Decoder, path: str, value: object) -> str | None:
        if isinstance(value, str) and value in allowed:
            return value
        d.error(path, f"expected one of {', '.join(allowed)}, got {describe(value)}")
        return None

    return decode


def int_range(low: int, high: int) -> Decode:
    """The decoder of an integer from `low` to `high`, both included."""

    def decode(d: Decoder, path: str, value: object) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        d.error(path, f"expected an integer from {low} to {high}, got {describe(value)}")
        return None

    return decode


def duration(d: Decoder, path: str, value: object) -> float | None:
    """Seconds, more than 0."""
    if not isinstance(value, str):
        d.error(path, f"expected a duration like 500ms, 10s, 2m, got {describe(value)}")
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        d.error(path, str(e))
        return None
    if seconds <= 0:
        d.error(path, f"must be more than 0, got {quote(value)}")
        return None
    return seconds


def port(d: Decoder, path: str, value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= 65535:
            return value
        d.error(path, f"{value} is not a port (1-65535)")
        return None
    d.error(path, f"expected a port number (1-65535), got {describe(value)}")
    return None


def ip(d: Decoder, path: str, value: object) -> str | None:
    """An IP address, in its canonical spelling."""
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
    d.error(path, f"expected an IP address like 192.0.2.1 or 2001:db8::1, got {describe(value)}")
    return None


def dns_name(d: Decoder, path: str, value: object, *, allow_ip: bool) -> str | None:
    if isinstance(value, str):
        if is_ip(value):
            if allow_ip:
                return value
            d.error(path, f"{quote(value)} is an IP address; give it as address:")
            return None
        if is_dns_name(value):
            return value
    d.error(path, f"expected a DNS name like example.org, got {describe(value)}")
    return None


def host(d: Decoder, path: str, value: object) -> str | None:
    """A DNS name to resolve (an IP address belongs in `address:`)."""
    return dns_name(d, path, value, allow_ip=False)


def server_name(d: Decoder, path: str, value: object) -> str | None:
    """The name a certificate is checked against: a DNS name or an IP address."""
    return dns_name(d, path, value, allow_ip=True)


def sni(d: Decoder, path: str, value: object) -> str | None:
    """A DNS name sent as TLS SNI (an IP literal is not a valid SNI)."""
    if isinstance(value, str):
        if is_ip(value):
            d.error(
                path,
                f"{quote(value)} is an IP address, which TLS never sends as SNI; give a DNS name",
            )
            return None
        if is_dns_name(value):
            return value
    d.error(path, f"expected a DNS name like example.com, got {describe(value)}")
    return None


def families(d: Decoder, path: str, value: object) -> tuple[int, ...] | None:
    """IP families (4, 6), sorted, each at most once."""
    items = d.nonempty_list(path, value, "IP families like [4] or [4, 6]")
    if items is None:
        return None
    seen: list[int] = []
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        if isinstance(item, bool) or item not in (4, 6):
            d.error(item_path, f"expected 4 or 6, got {describe(item)}")
            ok = False
        elif item in seen:
            d.error(item_path, f"{item} is listed twice")
            ok = False
        else:
            assert isinstance(item, int)
            seen.append(item)
    return tuple(sorted(seen)) if ok else None


def ca_file(d: Decoder, path: str, value: object) -> str | None:
    """The path of a readable PEM file holding a certificate, relative to the config's
    directory."""
    given = string(d, path, value, "a path to a PEM file of CA certificates")
    if given is None:
        return None
    p = Path(given)
    if not p.is_absolute() and d.base_dir is not None:
        p = d.base_dir / p
    shown = quote(str(p))
    if not p.exists():
        d.error(path, f"{shown} does not exist")
        return None
    if not p.is_file():
        d.error(path, f"{shown} is not a regular file")
        return None
    try:
        data = p.read_bytes()
    except OSError as e:
        d.error(path, f"cannot read {shown}: {e.strerror or e}")
        return None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        d.error(path, f"{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        return None
    return str(p)


def name_list(
    d: Decoder,
    path: str,
    value: object,
    kind: str,
    defined: Mapping[str, object],
    *,
    refused: Mapping[str, str] = MappingProxyType({}),
) -> tuple[str, ...] | None:
    """A narrowing list (resolvers: / networks:) of names that must be defined.

    `refused` maps defined names that may not be listed to the reason."""
    items = d.nonempty_list(path, value, f"{kind} names", empty_hint=f"omit it to use every {kind}")
    if items is None:
        return None
    names: list[str] = []
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        if not isinstance(item, str):
            d.error(item_path, f"expected a {kind} name, got {describe(item)}")
            ok = False
        elif item not in defined:
            listed = ", ".join(sorted(defined)) or "none"
            d.error(item_path, f"unknown {kind} {quote(item)} (defined: {listed})")
            ok = False
        elif item in refused:
            d.error(item_path, refused[item])
            ok = False
        elif item in names:
            d.error(item_path, f"{quote(item)} is listed twice")
            ok = False
        else:
            names.append(item)
    return tuple(names) if ok else None


def regex(d: Decoder, path: str, value: object) -> re.Pattern[str] | None:
    if not isinstance(value, str) or not value:
        d.error(path, f"expected a regular expression, got {describe(value)}")
        return None
    try:
        return re.compile(value)
    except re.error as e:
        d.error(path, f"invalid regular expression {quote(value)}: {e}")
        return None


def byte_pattern(d: Decoder, path: str, value: object) -> re.Pattern[bytes] | None:
    """A regular expression searched in bytes (a body or a header value)."""
    if not isinstance(value, str) or not value:
        d.error(path, f"expected a regular expression, got {describe(value)}")
        return None
    try:
        return re.compile(value.encode())
    except re.error as e:
        d.error(path, f"invalid regular expression {quote(value)}: {e}")
        return None


def request_path(d: Decoder, path: str, value: object) -> str | None:
    """An HTTP request path: starts with /, no spaces or control characters."""
    if not isinstance(value, str) or not value.startswith("/"):
        d.error(path, f"expected a path starting with /, got {describe(value)}")
    elif any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        d.error(path, "must not contain spaces or control characters")
    else:
        return value
    return None


def status(d: Decoder, path: str, value: object) -> StatusRange | None:
    """An HTTP status code (200) or class (2xx)."""
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return StatusRange(low=value, high=value)
    if isinstance(value, str) and _STATUS_CLASS.fullmatch(value):
        low = int(value[0]) * 100
        return StatusRange(low=low, high=low + 99)
    d.error(path, f"expected a status code 100-599 or a class 1xx-5xx, got {describe(value)}")
    return None


def body_limit(d: Decoder, path: str, value: object) -> int | None:
    """Bytes, from 0 to `MAX_BODY_LIMIT`."""
    size = parse_size(value)
    if size is None or size < 0:
        d.error(path, f"expected {SIZE_HINT}, got {describe(value)}")
        return None
    if size > MAX_BODY_LIMIT:
        d.error(path, f"{describe(value)} is more than the maximum of 16MiB")
        return None
    return size


def header_entries(
    d: Decoder, path: str, m: Mapping[object, object]
) -> tuple[list[tuple[str, str, object]], bool]:
    """(path, name as written, value) of each entry of a mapping keyed by header names, and
    whether every name was valid and given once (names are case-insensitive)."""
    entries: list[tuple[str, str, object]] = []
    seen: set[str] = set()
    ok = True
    for key, item in m.items():
        item_path = join(path, key_text(key))
        if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
            d.error(item_path, f"invalid header name {describe(key)}")
            ok = False
        elif key.lower() in seen:
            d.error(item_path, "header given twice (names are case-insensitive)")
            ok = False
        else:
            seen.add(key.lower())
            entries.append((item_path, key, item))
    return entries, ok


def headers(d: Decoder, path: str, value: object) -> Mapping[str, str] | None:
    """Request headers: name -> value, without CR, LF or NUL."""
    m = d.mapping(path, value, "a mapping of header names to values")
    if m is None:
        return None
    entries, ok = header_entries(d, path, m)
    out: dict[str, str] = {}
    for item_path, key, item in entries:
        if not isinstance(item, str):
            d.error(item_path, f"expected a string value, got {describe(item)} (quote it)")
            ok = False
        elif any(c in item for c in "\r\n\0"):
            d.error(item_path, "a header value must not contain CR, LF or NUL")
            ok = False
        else:
            out[key] = item
    return MappingProxyType(out) if ok else None
