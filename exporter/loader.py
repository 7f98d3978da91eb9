"""YAML → `exporter.config.Config`, or every problem of the file at once.

Decoding is strict: unknown keys, wrong types and dangling names are errors, and every error is
collected (never only the first) as a `ConfigError` naming the key path, e.g.
``services.telegram.endpoints.web.port: 70000 is not a port (1-65535)``.

Besides each key on its own, the probe matrix is checked as a whole: a tuple that can never
work (a UDP resolver through a SOCKS proxy, DoQ through an interface or namespace) is an error,
never a tuple silently skipped.

Pure core: no sockets. The only I/O is reading the config file and the CA files it names.
See docs/configuration.md for the reference of every key.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

import yaml

from exporter.blocklists import (
    DEFAULT_BLOCKPAGE_ADDRESSES,
    DEFAULT_BLOCKPAGE_HEADERS,
    DEFAULT_BLOCKPAGE_PATTERNS,
)
from exporter.config import (
    CANARY_SERVICE,
    CHECK_ORDER,
    DEFAULT_BODY_LIMIT,
    DEFAULT_CHECKS,
    DEFAULT_EXPECT_STATUS,
    DEFAULT_RESOLVER_PORT,
    DEFAULT_THROUGHPUT_BYTES,
    ENCRYPTED_RESOLVER_TYPES,
    MAX_LOCALISATION_HOPS,
    MAX_THROUGHPUT_BYTES,
    NO_RESOLVER,
    Check,
    Config,
    Endpoint,
    HttpOptions,
    IdentityCheck,
    Localisation,
    MetricsOptions,
    Network,
    PhaseHistograms,
    Proxy,
    QuicOptions,
    Resolver,
    ResolverType,
    Service,
    StatusRange,
    Throttling,
    ThroughputOptions,
    TlsOptions,
    incompatibility,
    on_network,
)

__all__ = [
    "ConfigError",
    "ConfigErrors",
    "load",
    "parse",
    "parse_duration",
    "parse_yaml",
]


# --------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One problem of a config: where (a key path) and what."""

    path: str  # key path like "services.telegram.endpoints.web.port"
    message: str  # e.g. "70000 is not a port (1-65535)"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


#: Errors reported at most (a real config narrowed wrongly can have ~150); past it one line
#: says how many more there were. A generated or hostile file with 200,000 bad list items
#: would otherwise print 17 MB of errors.
MAX_REPORTED_ERRORS: Final = 1000

#: Largest config file accepted, bytes. The shipped config is ~17 KB and an endpoint takes
#: ~80 bytes, so 10,000 endpoints fit in 1 MB; PyYAML parses ~2.5 MB/s (50 MB took 20 s).
MAX_CONFIG_BYTES: Final = 4 * 1024 * 1024


class ConfigErrors(Exception):
    """Every problem of a config; `str()` is one line per problem.

    At most `MAX_REPORTED_ERRORS` are kept, plus a last line counting the ones left out."""

    errors: tuple[ConfigError, ...]

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        kept = tuple(errors)
        if len(kept) > MAX_REPORTED_ERRORS + 1:
            left_out = len(kept) - MAX_REPORTED_ERRORS
            more = ConfigError(
                kept[MAX_REPORTED_ERRORS].path,
                f"... and {left_out} more errors not shown (fix the ones above first)",
            )
            kept = (*kept[:MAX_REPORTED_ERRORS], more)
        self.errors = kept
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


# --------------------------------------------------------------------------------------------
# Scalars: durations, sizes, names, addresses

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


def parse_duration(text: str) -> float:
    """Seconds of a duration like ``500ms``, ``10s``, ``2m``, ``1h`` or ``1m30s``.

    Parts go from the largest unit to the smallest, each unit at most once. Raises ValueError.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string like 10s, got {_describe(text)}")
    s = text.strip()
    if not s:
        raise ValueError(f"empty duration: expected {_DURATION_HINT}")
    total = Decimal(0)
    pos = 0
    last_rank = -1
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {_q(text)}: expected {_DURATION_HINT}")
        rank, unit_seconds = _DURATION_UNITS[m.group(2)]
        if rank <= last_rank:
            raise ValueError(
                f"invalid duration {_q(text)}: units must go from the largest to the smallest, "
                "each at most once (h, m, s, ms)"
            )
        last_rank = rank
        total += Decimal(m.group(1)) * unit_seconds
        pos = m.end()
    return float(total)


_MAX_BODY_LIMIT: Final = 16 * 1024 * 1024
_SIZE: Final = re.compile(r"(\d+)\s*(B|KiB|MiB)?")
_SIZE_UNITS: Final[Mapping[str, int]] = MappingProxyType({"B": 1, "KiB": 1024, "MiB": 1024 * 1024})

_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_NETNS: Final = re.compile(r"[A-Za-z0-9_.-]+")
_DNS_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_STATUS_CLASS: Final = re.compile(r"[1-5]xx")
_IFNAMSIZ: Final = 15  # usable characters of a Linux interface name

_HTTP_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "OPTIONS")
_RESOLVER_TYPE_VALUES: Final = frozenset(t.value for t in ResolverType)
_RESOLVER_TYPES: Final = ", ".join(t.value for t in ResolverType)
_CHECK_VALUES: Final = frozenset(c.value for c in CHECK_ORDER)
_CHECKS: Final = ", ".join(c.value for c in CHECK_ORDER)


def _q(text: str) -> str:
    """A string quoted for an error message, always on one line."""
    return json.dumps(text, ensure_ascii=False)


def _describe(value: object) -> str:
    """A value as YAML would spell it, short, for "got ..." in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _q(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _article(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_dns_name(text: str) -> bool:
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():  # "1.2.3" is a broken address, not a name
        return False
    return all(_DNS_LABEL.fullmatch(label) for label in labels)


# --------------------------------------------------------------------------------------------
# The decoding context


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _key_text(key: object) -> str:
    """A key as it appears in a key path. An empty key or one with a line break or another
    unprintable character is quoted (`""`, `"a\\nb"`), so that a path is always one line and
    never reads as its parent's ("services." or "")."""
    plain = isinstance(key, str) and key and key.isprintable()
    return key if plain and isinstance(key, str) else _describe(key)


class _Ctx:
    def __init__(self, base_dir: Path | None) -> None:
        self.errors: list[ConfigError] = []
        self.base_dir = base_dir

    def error(self, path: str, message: str) -> None:
        self.errors.append(ConfigError(path, message))

    # ---- generic shapes

    def mapping(self, path: str, value: object, what: str) -> Mapping[object, object] | None:
        if isinstance(value, Mapping):
            return value
        self.error(path, f"expected {what}, got {_describe(value)}")
        return None

    def fields(
        self, path: str, value: object, allowed: Sequence[str], what: str
    ) -> dict[str, object] | None:
        """The known keys of a fixed-schema mapping; every other key is an error."""
        m = self.mapping(path, value, what)
        if m is None:
            return None
        out: dict[str, object] = {}
        for key, item in m.items():
            if isinstance(key, str) and key in allowed:
                out[key] = item
            else:
                self.error(
                    _join(path, _key_text(key)), f"unknown key (allowed: {', '.join(allowed)})"
                )
        return out

    def named(
        self,
        path: str,
        value: object,
        what: str,
        *,
        reserved: Mapping[str, str] = MappingProxyType({}),
    ) -> list[tuple[str, str | None, object]]:
        """(path, name or None when invalid, body) of each entry of a mapping of names.

        `reserved` maps names that may not be used to the reason, ending the message."""
        m = self.mapping(path, value, f"a mapping of {what} names to {what}s")
        if m is None:
            return []
        out: list[tuple[str, str | None, object]] = []
        for key, body in m.items():
            entry_path = _join(path, _key_text(key))
            name: str | None = None
            if not isinstance(key, str):
                self.error(
                    entry_path,
                    f"{_article(what)} {what} name must be a string, got {_describe(key)} "
                    "(quote it)",
                )
            elif not _NAME.fullmatch(key):
                self.error(
                    entry_path,
                    f"invalid {what} name {_q(key)}: use lowercase letters, digits, '_', '.' and "
                    "'-', starting with a letter or digit (names are Prometheus label values)",
                )
            elif key in reserved:
                self.error(entry_path, f"the {what} name {_q(key)} is reserved {reserved[key]}")
            else:
                name = key
            out.append((entry_path, name, body))
        return out

    def nonempty_list(
        self, path: str, value: object, what: str, *, empty_hint: str | None = None
    ) -> Sequence[object] | None:
        if not isinstance(value, list | tuple):
            self.error(path, f"expected a list of {what}, got {_describe(value)}")
            return None
        if not value:
            hint = f"({empty_hint})" if empty_hint else f"(a list of {what})"
            self.error(path, f"must not be empty {hint}")
            return None
        return value

    # ---- scalars

    def string(self, path: str, value: object, what: str = "a string") -> str | None:
        if isinstance(value, str) and value:
            return value
        self.error(path, f"expected {what}, got {_describe(value)}")
        return None

    def boolean(self, path: str, value: object) -> bool | None:
        if isinstance(value, bool):
            return value
        self.error(path, f"expected true or false, got {_describe(value)}")
        return None

    def duration(self, path: str, value: object) -> float | None:
        if not isinstance(value, str):
            self.error(path, f"expected a duration like 500ms, 10s, 2m, got {_describe(value)}")
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            self.error(path, str(e))
            return None
        if seconds <= 0:
            self.error(path, f"must be more than 0, got {_q(value)}")
            return None
        return seconds

    def port(self, path: str, value: object) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            if 1 <= value <= 65535:
                return value
            self.error(path, f"{value} is not a port (1-65535)")
            return None
        self.error(path, f"expected a port number (1-65535), got {_describe(value)}")
        return None

    def ip(self, path: str, value: object) -> str | None:
        if isinstance(value, str):
            try:
                return str(ipaddress.ip_address(value))
            except ValueError:
                pass
        self.error(
            path, f"expected an IP address like 192.0.2.1 or 2001:db8::1, got {_describe(value)}"
        )
        return None

    def dns_name(self, path: str, value: object, *, allow_ip: bool) -> str | None:
        if isinstance(value, str):
            if _is_ip(value):
                if allow_ip:
                    return value
                self.error(path, f"{_q(value)} is an IP address; give it as address:")
                return None
            if _is_dns_name(value):
                return value
        self.error(path, f"expected a DNS name like example.org, got {_describe(value)}")
        return None

    def families(self, path: str, value: object) -> tuple[int, ...] | None:
        items = self.nonempty_list(path, value, "IP families like [4] or [4, 6]")
        if items is None:
            return None
        seen: list[int] = []
        ok = True
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]"
            if isinstance(item, bool) or item not in (4, 6):
                self.error(item_path, f"expected 4 or 6, got {_describe(item)}")
                ok = False
            elif item in seen:
                self.error(item_path, f"{item} is listed twice")
                ok = False
            else:
                assert isinstance(item, int)
                seen.append(item)
        return tuple(sorted(seen)) if ok else None

    def ca_file(self, path: str, value: object) -> str | None:
        given = self.string(path, value, "a path to a PEM file of CA certificates")
        if given is None:
            return None
        p = Path(given)
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        shown = _q(str(p))
        if not p.exists():
            self.error(path, f"{shown} does not exist")
            return None
        if not p.is_file():
            self.error(path, f"{shown} is not a regular file")
            return None
        try:
            data = p.read_bytes()
        except OSError as e:
            self.error(path, f"cannot read {shown}: {e.strerror or e}")
            return None
        if b"-----BEGIN CERTIFICATE-----" not in data:
            self.error(path, f"{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
            return None
        return str(p)

    def name_list(
        self,
        path: str,
        value: object,
        kind: str,
        defined: Mapping[str, object],
        *,
        refused: Mapping[str, str] = MappingProxyType({}),
    ) -> tuple[str, ...] | None:
        """A narrowing list (resolvers: / networks:) of names that must be defined.

        `refused` maps defined names that may not be listed to the reason."""
        items = self.nonempty_list(
            path, value, f"{kind} names", empty_hint=f"omit it to use every {kind}"
        )
        if items is None:
            return None
        names: list[str] = []
        ok = True
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]"
            if not isinstance(item, str):
                self.error(item_path, f"expected a {kind} name, got {_describe(item)}")
                ok = False
            elif item not in defined:
                listed = ", ".join(sorted(defined)) or "none"
                self.error(item_path, f"unknown {kind} {_q(item)} (defined: {listed})")
                ok = False
            elif item in refused:
                self.error(item_path, refused[item])
                ok = False
            elif item in names:
                self.error(item_path, f"{_q(item)} is listed twice")
                ok = False
            else:
                names.append(item)
        return tuple(names) if ok else None

    def sni(self, path: str, value: object) -> str | None:
        """A DNS name sent as TLS SNI (an IP literal is not a valid SNI)."""
        if isinstance(value, str):
            if _is_ip(value):
                self.error(
                    path,
                    f"{_q(value)} is an IP address, which TLS never sends as SNI; give a DNS name",
                )
                return None
            if _is_dns_name(value):
                return value
        self.error(path, f"expected a DNS name like example.com, got {_describe(value)}")
        return None

    def regex(self, path: str, value: object) -> re.Pattern[str] | None:
        if not isinstance(value, str) or not value:
            self.error(path, f"expected a regular expression, got {_describe(value)}")
            return None
        try:
            return re.compile(value)
        except re.error as e:
            self.error(path, f"invalid regular expression {_q(value)}: {e}")
            return None

    def optional_list(self, path: str, value: object, what: str) -> Sequence[object] | None:
        """A list that may be empty (`[]` replaces a default list with nothing)."""
        if isinstance(value, list | tuple):
            return value
        self.error(path, f"expected a list of {what} (or [] for none), got {_describe(value)}")
        return None


# --------------------------------------------------------------------------------------------
# TLS and HTTP options

_TLS_KEYS: Final = ("ca_file", "extra_ca_file", "server_name", "insecure_skip_verify")
_HTTP_KEYS: Final = (
    "method",
    "path",
    "expect_status",
    "fail_if_body_matches",
    "headers",
    "body_limit",
)


def _tls(ctx: _Ctx, path: str, value: object) -> TlsOptions | None:
    f = ctx.fields(path, value, _TLS_KEYS, "a mapping of TLS options")
    if f is None:
        return None
    n = len(ctx.errors)
    ca_file = ctx.ca_file(_join(path, "ca_file"), f["ca_file"]) if "ca_file" in f else None
    extra = (
        ctx.ca_file(_join(path, "extra_ca_file"), f["extra_ca_file"])
        if "extra_ca_file" in f
        else None
    )
    server_name = (
        ctx.dns_name(_join(path, "server_name"), f["server_name"], allow_ip=True)
        if "server_name" in f
        else None
    )
    insecure = (
        ctx.boolean(_join(path, "insecure_skip_verify"), f["insecure_skip_verify"])
        if "insecure_skip_verify" in f
        else False
    )
    if len(ctx.errors) != n:
        return None
    return TlsOptions(
        ca_file=ca_file,
        extra_ca_file=extra,
        server_name=server_name,
        insecure_skip_verify=bool(insecure),
    )


def _status(ctx: _Ctx, path: str, value: object) -> StatusRange | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return StatusRange(low=value, high=value)
    if isinstance(value, str) and _STATUS_CLASS.fullmatch(value):
        low = int(value[0]) * 100
        return StatusRange(low=low, high=low + 99)
    ctx.error(path, f"expected a status code 100-599 or a class 1xx-5xx, got {_describe(value)}")
    return None


def _body_limit(ctx: _Ctx, path: str, value: object) -> int | None:
    size: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
        size = int(m.group(1)) * _SIZE_UNITS[m.group(2) or "B"]
    if size is None or size < 0:
        ctx.error(
            path,
            f"expected a size in bytes or like 256KiB, 1MiB (units B, KiB, MiB), "
            f"got {_describe(value)}",
        )
        return None
    if size > _MAX_BODY_LIMIT:
        ctx.error(path, f"{_describe(value)} is more than the maximum of 16MiB")
        return None
    return size


def _header_entries(
    ctx: _Ctx, path: str, m: Mapping[object, object]
) -> tuple[list[tuple[str, str, object]], bool]:
    """(path, name as written, value) of each entry of a mapping keyed by header names, and
    whether every name was valid and given once (names are case-insensitive)."""
    entries: list[tuple[str, str, object]] = []
    seen: set[str] = set()
    ok = True
    for key, item in m.items():
        item_path = _join(path, _key_text(key))
        if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
            ctx.error(item_path, f"invalid header name {_describe(key)}")
            ok = False
        elif key.lower() in seen:
            ctx.error(item_path, "header given twice (names are case-insensitive)")
            ok = False
        else:
            seen.add(key.lower())
            entries.append((item_path, key, item))
    return entries, ok


def _headers(ctx: _Ctx, path: str, value: object) -> Mapping[str, str] | None:
    m = ctx.mapping(path, value, "a mapping of header names to values")
    if m is None:
        return None
    entries, ok = _header_entries(ctx, path, m)
    out: dict[str, str] = {}
    for item_path, key, item in entries:
        if not isinstance(item, str):
            ctx.error(item_path, f"expected a string value, got {_describe(item)} (quote it)")
            ok = False
        elif any(c in item for c in "\r\n\0"):
            ctx.error(item_path, "a header value must not contain CR, LF or NUL")
            ok = False
        else:
            out[key] = item
    return MappingProxyType(out) if ok else None


def _http(ctx: _Ctx, path: str, value: object) -> HttpOptions | None:
    f = ctx.fields(path, value, _HTTP_KEYS, "a mapping of HTTP options")
    if f is None:
        return None
    n = len(ctx.errors)
    method = "GET"
    if "method" in f:
        v = f["method"]
        if isinstance(v, str) and v in _HTTP_METHODS:
            method = v
        else:
            ctx.error(
                _join(path, "method"),
                f"expected one of {', '.join(_HTTP_METHODS)}, got {_describe(v)}",
            )
    request_path = "/"
    if "path" in f:
        v = f["path"]
        if not isinstance(v, str) or not v.startswith("/"):
            ctx.error(_join(path, "path"), f"expected a path starting with /, got {_describe(v)}")
        elif any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in v):
            ctx.error(_join(path, "path"), "must not contain spaces or control characters")
        else:
            request_path = v
    expect = DEFAULT_EXPECT_STATUS
    if "expect_status" in f:
        items = ctx.nonempty_list(
            _join(path, "expect_status"), f["expect_status"], "status codes or classes like 2xx"
        )
        if items is not None:
            ranges = [
                _status(ctx, f"{_join(path, 'expect_status')}[{i}]", item)
                for i, item in enumerate(items)
            ]
            expect = tuple(r for r in ranges if r is not None)
    patterns: list[re.Pattern[bytes]] = []
    if "fail_if_body_matches" in f:
        p = _join(path, "fail_if_body_matches")
        items = ctx.nonempty_list(p, f["fail_if_body_matches"], "regular expressions")
        for i, item in enumerate(items or ()):
            if not isinstance(item, str) or not item:
                ctx.error(f"{p}[{i}]", f"expected a regular expression, got {_describe(item)}")
                continue
            try:
                pattern = re.compile(item.encode())
            except re.error as e:
                ctx.error(f"{p}[{i}]", f"invalid regular expression {_q(item)}: {e}")
                continue
            # A pattern that matches nothing matches every body: each response, honest or
            # not, would fail as a blockpage (a false `http_blockpage` on every network).
            if pattern.search(b"") is not None:
                ctx.error(
                    f"{p}[{i}]",
                    f"{_q(item)} matches an empty body, so every response would match "
                    "(expected a pattern that needs at least one character)",
                )
                continue
            patterns.append(pattern)
    headers: Mapping[str, str] = MappingProxyType({})
    if "headers" in f:
        headers = _headers(ctx, _join(path, "headers"), f["headers"]) or headers
    body_limit = DEFAULT_BODY_LIMIT
    if "body_limit" in f:
        body_limit = _body_limit(ctx, _join(path, "body_limit"), f["body_limit"]) or 0
    if len(ctx.errors) != n:
        return None
    return HttpOptions(
        method=method,
        path=request_path,
        expect_status=expect,
        fail_if_body_matches=tuple(patterns),
        headers=headers,
        body_limit=body_limit,
    )


# --------------------------------------------------------------------------------------------
# Throughput and throttling

_THROUGHPUT_KEYS: Final = ("path", "bytes")
_THROTTLING_KEYS: Final = ("ratio", "baseline_rounds", "min_bytes_per_second")
_METRICS_KEYS: Final = ("phase_histograms",)
_LOCALISATION_KEYS: Final = ("enabled", "max_hops", "concurrency", "interval", "timeout")
_MAX_BASELINE_ROUNDS: Final = 1000


def _size(value: object) -> int | None:
    """Bytes of `1048576`, `"512KiB"` or `"1MiB"`; None when it is none of these."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
        return int(m.group(1)) * _SIZE_UNITS[m.group(2) or "B"]
    return None


def _throughput(ctx: _Ctx, path: str, value: object, http: HttpOptions) -> ThroughputOptions | None:
    f = ctx.fields(path, value, _THROUGHPUT_KEYS, "a mapping of throughput options (path, bytes)")
    if f is None:
        return None
    n = len(ctx.errors)
    request_path = http.path
    if "path" in f:
        v = f["path"]
        if not isinstance(v, str) or not v.startswith("/"):
            ctx.error(_join(path, "path"), f"expected a path starting with /, got {_describe(v)}")
        elif any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in v):
            ctx.error(_join(path, "path"), "must not contain spaces or control characters")
        else:
            request_path = v
    size = DEFAULT_THROUGHPUT_BYTES
    if "bytes" in f:
        v = f["bytes"]
        given = _size(v)
        if given is None or given < 0:
            ctx.error(
                _join(path, "bytes"),
                f"expected a size in bytes or like 256KiB, 1MiB (units B, KiB, MiB), "
                f"got {_describe(v)}",
            )
        elif given == 0:
            ctx.error(_join(path, "bytes"), "must be more than 0 (nothing to measure)")
        elif given > MAX_THROUGHPUT_BYTES:
            ctx.error(_join(path, "bytes"), f"{_describe(v)} is more than the maximum of 16MiB")
        else:
            size = given
    if len(ctx.errors) != n:
        return None
    return ThroughputOptions(path=request_path, bytes=size)


_QUIC_KEYS: Final = ("port", "http3")


def _quic(ctx: _Ctx, path: str, value: object) -> QuicOptions | None:
    f = ctx.fields(path, value, _QUIC_KEYS, "a mapping of QUIC options (port, http3)")
    if f is None:
        return None
    n = len(ctx.errors)
    port = ctx.port(_join(path, "port"), f["port"]) if "port" in f else None
    http3 = ctx.boolean(_join(path, "http3"), f["http3"]) if "http3" in f else False
    if len(ctx.errors) != n:
        return None
    return QuicOptions(port=port, http3=bool(http3))


def _throttling(ctx: _Ctx, value: object) -> Throttling | None:
    path = "throttling"
    f = ctx.fields(
        path, value, _THROTTLING_KEYS, "a mapping of throttling options (ratio, baseline_rounds)"
    )
    if f is None:
        return None
    n = len(ctx.errors)
    defaults = Throttling()
    ratio = defaults.ratio
    if "ratio" in f:
        v = f["ratio"]
        if isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1:
            ratio = float(v)
        else:
            ctx.error(
                _join(path, "ratio"),
                f"expected a number between 0 and 1 (both excluded) like 0.25, got {_describe(v)}",
            )
    rounds = defaults.baseline_rounds
    if "baseline_rounds" in f:
        v = f["baseline_rounds"]
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _MAX_BASELINE_ROUNDS:
            rounds = v
        else:
            ctx.error(
                _join(path, "baseline_rounds"),
                f"expected an integer from 0 (no baseline) to {_MAX_BASELINE_ROUNDS}, "
                f"got {_describe(v)}",
            )
    floor = defaults.min_bytes_per_second
    if "min_bytes_per_second" in f:
        v = f["min_bytes_per_second"]
        given = _size(v)
        if given is None or given < 0:
            ctx.error(
                _join(path, "min_bytes_per_second"),
                "expected bytes per second as a number or like 256KiB, 1MiB (units B, KiB, MiB), "
                f"got {_describe(v)}",
            )
        else:
            floor = float(given)
    if len(ctx.errors) != n:
        return None
    return Throttling(ratio=ratio, baseline_rounds=rounds, min_bytes_per_second=floor)


def _localisation(ctx: _Ctx, value: object, interval: float | None) -> Localisation | None:
    path = "localisation"
    f = ctx.fields(path, value, _LOCALISATION_KEYS, "a mapping of localisation options")
    if f is None:
        return None
    n = len(ctx.errors)
    defaults = Localisation()
    enabled = defaults.enabled
    if "enabled" in f:
        enabled = bool(ctx.boolean(_join(path, "enabled"), f["enabled"]))
    numbers = {"max_hops": defaults.max_hops, "concurrency": defaults.concurrency}
    limits = {"max_hops": (1, MAX_LOCALISATION_HOPS), "concurrency": (1, 64)}
    for key, (low, high) in limits.items():
        if key in f:
            v = f[key]
            if isinstance(v, int) and not isinstance(v, bool) and low <= v <= high:
                numbers[key] = v
            else:
                ctx.error(
                    _join(path, key),
                    f"expected an integer from {low} to {high}, got {_describe(v)}",
                )
    every: float | None = defaults.interval
    if "interval" in f:
        every = ctx.duration(_join(path, "interval"), f["interval"])
        if every is not None and interval is not None and every < interval:
            ctx.error(
                _join(path, "interval"),
                f"must not be shorter than the probe interval ({every:g}s < {interval:g}s): "
                "localisation runs at most once per network, address and port per interval",
            )
    timeout = defaults.timeout
    if "timeout" in f:
        given = ctx.duration(_join(path, "timeout"), f["timeout"])
        if given is not None:
            timeout = given
    if len(ctx.errors) != n:
        return None
    return Localisation(
        enabled=enabled,
        max_hops=numbers["max_hops"],
        concurrency=numbers["concurrency"],
        interval=every,
        timeout=timeout,
    )


def _metrics(ctx: _Ctx, value: object) -> MetricsOptions | None:
    path = "metrics"
    f = ctx.fields(path, value, _METRICS_KEYS, "a mapping of metrics options (phase_histograms)")
    if f is None:
        return None
    phase_histograms = PhaseHistograms.TUPLE
    if "phase_histograms" in f:
        v = f["phase_histograms"]
        allowed = ", ".join(m.value for m in PhaseHistograms)
        if isinstance(v, str) and v in {m.value for m in PhaseHistograms}:
            phase_histograms = PhaseHistograms(v)
        else:
            ctx.error(
                _join(path, "phase_histograms"), f"expected one of {allowed}, got {_describe(v)}"
            )
            return None
    return MetricsOptions(phase_histograms=phase_histograms)


# --------------------------------------------------------------------------------------------
# Resolvers

_RESOLVER_KEYS: Final = (
    "type",
    "address",
    "port",
    "server_name",
    "url",
    "tls",
    "silent",
    "identity",
)
_TLS_RESOLVER_KEYS: Final = frozenset({"type", "address", "port", "server_name", "tls", "identity"})
_DOH_RESOLVER_KEYS: Final = frozenset({"type", "url", "address", "server_name", "tls", "identity"})
#: DoH over HTTP/1.1 (`doh`) and over HTTP/3 (`doh3`): configured by a URL.
_URL_RESOLVER_TYPES: Final = (ResolverType.DOH, ResolverType.DOH3)
#: Transports dnspython dials on a UDP socket of its own (named as errors name them): they
#: honour a network's source address, not its interface or namespace.
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
_IDENTITY_KEYS: Final = ("qname", "qtype", "qclass", "expect")
_IDENTITY_QTYPES: Final = ("TXT", "A", "AAAA")
_IDENTITY_QCLASSES: Final = ("IN", "CH")


def _identity(ctx: _Ctx, path: str, value: object) -> IdentityCheck | None:
    f = ctx.fields(path, value, _IDENTITY_KEYS, "a mapping with qname and expect")
    if f is None:
        return None
    n = len(ctx.errors)
    qname: str | None = None
    if "qname" not in f:
        ctx.error(
            _join(path, "qname"), "missing required key (a DNS name like o-o.myaddr.l.google.com)"
        )
    elif isinstance(f["qname"], str) and _is_dns_name(f["qname"]):
        qname = f["qname"]
    else:
        ctx.error(
            _join(path, "qname"),
            f"expected a DNS name like o-o.myaddr.l.google.com, got {_describe(f['qname'])}",
        )
    choices: dict[str, str] = {}
    for key, allowed, default in (
        ("qtype", _IDENTITY_QTYPES, "TXT"),
        ("qclass", _IDENTITY_QCLASSES, "IN"),
    ):
        v = f.get(key, default)
        if isinstance(v, str) and v in allowed:
            choices[key] = v
        else:
            ctx.error(_join(path, key), f"expected one of {', '.join(allowed)}, got {_describe(v)}")
    expect: re.Pattern[str] | None = None
    if "expect" not in f:
        ctx.error(
            _join(path, "expect"),
            "missing required key (a regular expression a truthful answer matches)",
        )
    else:
        expect = ctx.regex(_join(path, "expect"), f["expect"])
    if len(ctx.errors) != n:
        return None
    assert qname is not None
    assert expect is not None
    return IdentityCheck(
        qname=qname, qtype=choices["qtype"], qclass=choices["qclass"], expect=expect
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


def _doh_url(ctx: _Ctx, path: str, value: object) -> tuple[str, str, int | None] | None:
    """(url, host, port or None) of a DoH URL."""
    url = ctx.string(path, value, "an https:// URL like https://1.1.1.1/dns-query")
    if url is None:
        return None
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as e:
        ctx.error(path, f"invalid URL {_q(url)}: {e}")
        return None
    if parts.scheme.lower() != "https":
        ctx.error(path, f"must be an https:// URL, got {_q(url)}")
        return None
    host = parts.hostname
    if not host:
        ctx.error(path, f"the URL {_q(url)} has no host")
        return None
    if parts.username is not None or parts.password is not None:
        ctx.error(path, "the URL must not hold credentials")
        return None
    if not _is_ip(host) and not _is_dns_name(host):
        ctx.error(path, f"the URL host {_q(host)} is neither an IP address nor a DNS name")
        return None
    if port == 0:
        ctx.error(path, "0 is not a port (1-65535)")
        return None
    return url, host, port


def _resolver(ctx: _Ctx, path: str, name: str, value: object) -> Resolver | None:
    f = ctx.fields(path, value, _RESOLVER_KEYS, "a mapping of resolver options")
    if f is None:
        return None
    n = len(ctx.errors)
    rtype: ResolverType | None = None
    if "type" not in f:
        ctx.error(_join(path, "type"), f"missing required key (one of {_RESOLVER_TYPES})")
    elif isinstance(f["type"], str) and f["type"] in _RESOLVER_TYPE_VALUES:
        rtype = ResolverType(f["type"])
    else:
        ctx.error(
            _join(path, "type"), f"expected one of {_RESOLVER_TYPES}, got {_describe(f['type'])}"
        )

    if rtype is not None:
        for key in list(f):
            if key not in _RESOLVER_TYPE_KEYS[rtype]:
                ctx.error(_join(path, key), _not_allowed(rtype, key))
                del f[key]

    address = ctx.ip(_join(path, "address"), f["address"]) if "address" in f else None
    port = ctx.port(_join(path, "port"), f["port"]) if "port" in f else None
    server_name = (
        ctx.dns_name(_join(path, "server_name"), f["server_name"], allow_ip=True)
        if "server_name" in f
        else None
    )
    tls = _tls(ctx, _join(path, "tls"), f["tls"]) if "tls" in f else TlsOptions()
    doh = _doh_url(ctx, _join(path, "url"), f["url"]) if "url" in f else None
    silent = ctx.boolean(_join(path, "silent"), f["silent"]) if "silent" in f else False
    identity = _identity(ctx, _join(path, "identity"), f["identity"]) if "identity" in f else None
    if rtype is None:
        return None

    if "address" not in f and rtype in (
        ResolverType.UDP,
        ResolverType.TCP,
        ResolverType.DOT,
        ResolverType.DOQ,
    ):
        ctx.error(
            _join(path, "address"),
            f"missing required key for type {rtype.value} (the resolver's IP address)",
        )
    url: str | None = None
    if rtype in _URL_RESOLVER_TYPES:
        if "url" not in f:
            ctx.error(
                _join(path, "url"),
                f"missing required key for type {rtype.value} (like https://1.1.1.1/dns-query)",
            )
        elif doh is not None:
            url, host, url_port = doh
            port = url_port or DEFAULT_RESOLVER_PORT[rtype]
            if "address" not in f:
                if _is_ip(host):
                    address = str(ipaddress.ip_address(host))
                else:
                    ctx.error(
                        _join(path, "address"),
                        f"required for type {rtype.value} when the url host {_q(host)} is not an "
                        "IP address: the exporter does not resolve a DoH server through another "
                        "resolver, so give the IP address to dial",
                    )
    if rtype in ENCRYPTED_RESOLVER_TYPES and tls is not None:
        if server_name is not None and tls.server_name is not None:
            ctx.error(
                _join(path, "tls.server_name"),
                "give only one of server_name and tls.server_name",
            )
        server_name = server_name or tls.server_name
        if rtype in _URL_RESOLVER_TYPES and server_name is None and doh is not None:
            server_name = doh[1]
        if (
            rtype not in _URL_RESOLVER_TYPES
            and server_name is None
            and "server_name" not in f
            and not tls.insecure_skip_verify
        ):
            ctx.error(
                _join(path, "server_name"),
                f"missing required key for type {rtype.value}: the name in the server's "
                "certificate (or set tls.insecure_skip_verify: true)",
            )
    if len(ctx.errors) != n or tls is None:
        return None
    return Resolver(
        name=name,
        type=rtype,
        address=address,
        port=port or DEFAULT_RESOLVER_PORT[rtype],
        server_name=server_name,
        url=url,
        tls=tls,
        silent=bool(silent),
        identity=identity,
    )


# --------------------------------------------------------------------------------------------
# Networks

_NETWORK_KEYS: Final = ("source_address", "interface", "proxy", "netns")
_PROXY_HINT: Final = "a URL like socks5://127.0.0.1:9050, socks5://user:pass@127.0.0.1:1080"


def _proxy(ctx: _Ctx, path: str, value: object) -> Proxy | None:
    # Never echo the URL: it may hold a password.
    if not isinstance(value, str) or not value:
        ctx.error(path, f"expected {_PROXY_HINT} or socks4://127.0.0.1:1080")
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        ctx.error(path, f"not a valid proxy URL: expected {_PROXY_HINT}")
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("socks5", "socks4"):
        hint = ""
        if scheme in ("socks5h", "socks4a"):
            hint = " (names are always resolved by the exporter, through the resolver under test)"
        ctx.error(path, f"unsupported proxy scheme {_q(scheme)}: use socks5 or socks4{hint}")
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        ctx.error(path, f"a proxy URL has no path, query or fragment: expected {_PROXY_HINT}")
        return None
    host = parts.hostname
    if not host:
        ctx.error(path, f"the proxy URL has no host: expected {_PROXY_HINT}")
        return None
    if host != "localhost" and not _is_ip(host):
        ctx.error(path, f"the proxy host {_q(host)} must be an IP address or localhost")
        return None
    if port is None or port == 0:
        ctx.error(path, f"the proxy URL needs a port (1-65535): expected {_PROXY_HINT}")
        return None
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if scheme == "socks4" and (username is not None or password is not None):
        ctx.error(path, "socks4 takes no credentials; use socks5://user:pass@host:port")
        return None
    if (username is not None or password is not None) and not (username and password):
        ctx.error(path, "proxy credentials must be user:password, both non-empty")
        return None
    if host != "localhost":
        host = str(ipaddress.ip_address(host))
    return Proxy(scheme=scheme, host=host, port=port, username=username, password=password)


def _network(ctx: _Ctx, path: str, name: str, value: object) -> Network | None:
    if value is None:  # `default:` with nothing, same as `default: {}`
        value = {}
    f = ctx.fields(path, value, _NETWORK_KEYS, "a mapping of network options (or {})")
    if f is None:
        return None
    n = len(ctx.errors)
    source = (
        ctx.ip(_join(path, "source_address"), f["source_address"])
        if "source_address" in f
        else None
    )
    interface: str | None = None
    if "interface" in f:
        p = _join(path, "interface")
        v = ctx.string(p, f["interface"], "an interface name like wg0")
        if v is not None:
            if len(v) > _IFNAMSIZ:
                ctx.error(p, f"{_q(v)} is longer than {_IFNAMSIZ} characters (Linux IFNAMSIZ)")
            elif v in (".", "..") or any(c == "/" or c == ":" or c.isspace() for c in v):
                ctx.error(p, f"{_q(v)} is not a valid interface name")
            else:
                interface = v
    proxy = _proxy(ctx, _join(path, "proxy"), f["proxy"]) if "proxy" in f else None
    netns: str | None = None
    if "netns" in f:
        p = _join(path, "netns")
        v = ctx.string(p, f["netns"], "a network namespace name like vpn")
        if v is not None:
            if not _NETNS.fullmatch(v) or v in (".", ".."):
                ctx.error(p, f"{_q(v)} is not a namespace name (letters, digits, '_', '.', '-')")
            else:
                netns = v
    if (
        source is not None
        and proxy is not None
        and proxy.host != "localhost"
        and ipaddress.ip_address(source).version != ipaddress.ip_address(proxy.host).version
    ):
        ctx.error(
            _join(path, "source_address"),
            f"{source} and the proxy host {proxy.host} are of different IP families: the "
            "connection to the proxy cannot bind this address",
        )
    if len(ctx.errors) != n:
        return None
    return Network(name=name, source_address=source, interface=interface, proxy=proxy, netns=netns)


# --------------------------------------------------------------------------------------------
# Services, endpoints and canaries

_TOP: Final = "<top level>"
_TOP_KEYS: Final = (
    "interval",
    "timeout",
    "concurrency",
    "ip_families",
    "resolvers",
    "networks",
    "services",
    "canaries",
    "control_sni",
    "blockpage_addresses",
    "blockpage_patterns",
    "blockpage_headers",
    "throttling",
    "metrics",
    "localisation",
)
_SERVICE_KEYS: Final = ("endpoints", "resolvers", "networks", "expected_networks", "control_sni")
_ENDPOINT_KEYS: Final = (
    "host",
    "address",
    "port",
    "checks",
    "tls",
    "http",
    "resolvers",
    "networks",
    "ip_families",
    "control_sni",
    "throughput",
    "quic",
)
_CANARY_WHY: Final = "canaries are probed on every network through every resolver"

_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The shipped blockpage patterns, compiled as the loader compiles `blockpage_patterns`.
_DEFAULT_BLOCKPAGE_PATTERNS: Final[tuple[re.Pattern[bytes], ...]] = tuple(
    re.compile(p.encode()) for p in DEFAULT_BLOCKPAGE_PATTERNS
)
_DEFAULT_BLOCKPAGE_HEADERS: Final[Mapping[str, tuple[re.Pattern[bytes], ...]]] = MappingProxyType(
    {
        name: tuple(re.compile(p.encode()) for p in patterns)
        for name, patterns in DEFAULT_BLOCKPAGE_HEADERS.items()
    }
)


@dataclass(frozen=True, slots=True)
class _Defined:
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


def _same_name(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def _checks(ctx: _Ctx, path: str, value: object, *, by_address: bool) -> set[Check] | None:
    items = ctx.nonempty_list(path, value, f"checks among {_CHECKS}")
    if items is None:
        return None
    checks: set[Check] = set()
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        if not isinstance(item, str) or item not in _CHECK_VALUES:
            ctx.error(item_path, f"expected one of {_CHECKS}, got {_describe(item)}")
            ok = False
        elif Check(item) in checks:
            ctx.error(item_path, f"{item} is listed twice")
            ok = False
        elif item == Check.DNS and by_address:
            ctx.error(
                item_path,
                "dns is not possible for an endpoint given by address (it is dialled "
                "directly); remove dns or address",
            )
            ok = False
        else:
            checks.add(Check(item))
    return checks if ok else None


def _expected_networks(ctx: _Ctx, path: str, value: object) -> tuple[_IPNetwork, ...] | None:
    items = ctx.nonempty_list(
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
                    ctx.error(item_path, f"{_q(item)} has host bits set: the network is {loose}")
                    ok = False
                    continue
        if net is None:
            ctx.error(
                item_path,
                f"expected a network like 149.154.160.0/20 or 2001:db8::/32, got {_describe(item)}",
            )
            ok = False
        elif net in nets:
            ctx.error(item_path, f"{net} is listed twice")
            ok = False
        else:
            nets.append(net)
    return tuple(nets) if ok else None


def _endpoint(
    ctx: _Ctx,
    path: str,
    name: str,
    value: object,
    defined: _Defined,
    scope: _Scope,
) -> Endpoint | None:
    f = ctx.fields(path, value, _ENDPOINT_KEYS, "a mapping of endpoint options")
    if f is None:
        return None
    n = len(ctx.errors)
    host = ctx.dns_name(_join(path, "host"), f["host"], allow_ip=False) if "host" in f else None
    address = ctx.ip(_join(path, "address"), f["address"]) if "address" in f else None
    by_address = "address" in f
    if "host" not in f and not by_address:
        ctx.error(path, "needs host (a DNS name) or address (an IP address), or both")
    port: int | None = None
    if "port" not in f:
        ctx.error(_join(path, "port"), "missing required key (1-65535)")
    else:
        port = ctx.port(_join(path, "port"), f["port"])

    checks: set[Check] | None
    if "checks" in f:
        checks = _checks(ctx, _join(path, "checks"), f["checks"], by_address=by_address)
        if checks is not None:
            if not by_address:
                checks.add(Check.DNS)  # a host is resolved before anything else
            for needs_tcp in (Check.TLS, Check.HTTP):
                if needs_tcp in checks and Check.TCP not in checks:
                    ctx.error(_join(path, "checks"), f"{needs_tcp.value} needs tcp (add tcp)")
            if Check.THROUGHPUT in checks and Check.HTTP not in checks:
                ctx.error(_join(path, "checks"), "throughput needs http (add http)")
    elif not by_address:
        checks = set(DEFAULT_CHECKS)
    elif "host" in f:
        checks = {Check.TCP, Check.TLS, Check.HTTP}
    else:
        checks = {Check.TCP}

    # QUIC options given without a checks list turn the check on (as throughput's do).
    quic = QuicOptions()
    if "quic" in f:
        quic = _quic(ctx, _join(path, "quic"), f["quic"]) or quic
        if checks is not None and "checks" not in f:
            checks.add(Check.QUIC)
        elif checks is not None and Check.QUIC not in checks:
            ctx.error(_join(path, "quic"), "QUIC options given but quic is not in checks")
    has_quic = checks is not None and Check.QUIC in checks
    tls = TlsOptions()
    if "tls" in f:
        tls = _tls(ctx, _join(path, "tls"), f["tls"]) or tls
        if checks is not None and Check.TLS not in checks and not has_quic:
            ctx.error(_join(path, "tls"), "TLS options given but neither tls nor quic is in checks")
    http = HttpOptions()
    if "http" in f:
        http = _http(ctx, _join(path, "http"), f["http"]) or http
        if checks is not None and Check.HTTP not in checks and not (has_quic and quic.http3):
            ctx.error(
                _join(path, "http"),
                "HTTP options given but http is not in checks (nor quic with http3: true)",
            )
    throughput = ThroughputOptions(path=http.path)
    if "throughput" in f:
        throughput = (
            _throughput(ctx, _join(path, "throughput"), f["throughput"], http) or throughput
        )
        if checks is not None and "checks" not in f and Check.HTTP in checks:
            checks.add(Check.THROUGHPUT)  # options without a checks list turn the check on
        elif checks is not None and Check.THROUGHPUT not in checks:
            ctx.error(
                _join(path, "throughput"),
                "throughput options given but throughput is not in checks"
                + ("" if Check.HTTP in checks else " (it needs http)"),
            )

    for key in ("resolvers", "networks"):
        if scope.canary and key in f:
            ctx.error(_join(path, key), f"not allowed for a canary ({_CANARY_WHY})")
            del f[key]
    resolvers: tuple[str, ...] | None = ()
    if by_address:
        if "resolvers" in f:
            ctx.error(
                _join(path, "resolvers"),
                "not allowed for an endpoint given by address (it skips DNS)",
            )
    elif "resolvers" in f:
        resolvers = ctx.name_list(
            _join(path, "resolvers"),
            f["resolvers"],
            "resolver",
            defined.resolvers,
            refused=defined.refused_resolvers,
        )
    else:
        resolvers = scope.resolvers if scope.resolvers is not None else defined.dns_resolvers
        if not resolvers and defined.refused_resolvers:
            ctx.error(
                path,
                "no resolver can resolve host: every resolver is silent (silent resolvers "
                "only detect interception); define one that answers DNS",
            )
    if "networks" in f:
        networks = ctx.name_list(
            _join(path, "networks"), f["networks"], "network", defined.networks
        )
    else:
        networks = scope.networks if scope.networks is not None else tuple(defined.networks)

    families: tuple[int, ...] | None = defined.families
    if by_address:
        if "ip_families" in f:
            ctx.error(
                _join(path, "ip_families"),
                "not allowed for an endpoint given by address (its address sets the family)",
            )
        # Probed only where its family is asked for: an IPv6 data centre where ip_families
        # has 6 (the matrix leaves it out otherwise, and `check` says so).
        own = ipaddress.ip_address(address).version if address is not None else None
        families = None if own is None else ((own,) if own in defined.families else ())
    elif "ip_families" in f:
        families = ctx.families(_join(path, "ip_families"), f["ip_families"])

    # The control SNI: the endpoint's own, else the inherited default; only with tls, and
    # never the endpoint's own server name (such a control would control nothing).
    has_tls = checks is not None and Check.TLS in checks
    server_name = tls.server_name or host
    control_sni = scope.control_sni
    if "control_sni" in f:
        control_sni = ctx.sni(_join(path, "control_sni"), f["control_sni"])
    own_name = (
        control_sni is not None and server_name is not None and _same_name(control_sni, server_name)
    )
    if "control_sni" in f and checks is not None:
        if not has_tls:
            ctx.error(_join(path, "control_sni"), "control_sni given but tls is not in checks")
        elif own_name:
            ctx.error(
                _join(path, "control_sni"),
                f"{_q(str(control_sni))} is the endpoint's own server name; a control must be "
                "another, innocuous name",
            )
    if not has_tls or own_name:
        control_sni = None  # an inherited default is dropped silently

    if len(ctx.errors) != n:
        return None
    assert port is not None
    assert checks is not None
    assert resolvers is not None
    assert networks is not None
    assert families is not None
    return Endpoint(
        service=scope.service,
        name=name,
        host=host,
        address=address,
        port=port,
        checks=tuple(c for c in CHECK_ORDER if c in checks),
        tls=tls,
        http=http,
        throughput=throughput,
        quic=quic,
        resolvers=resolvers,
        networks=networks,
        families=families,
        expected_networks=scope.expected_networks,
        control_sni=control_sni,
    )


def _endpoints(
    ctx: _Ctx, path: str, value: object, defined: _Defined, scope: _Scope
) -> dict[str, Endpoint]:
    """The endpoints of a mapping of endpoint names, each checked against the matrix."""
    entries = ctx.named(path, value, "canary endpoint" if scope.canary else "endpoint")
    if not entries and isinstance(value, Mapping):
        if scope.canary:
            ctx.error(path, "must define at least one canary (omit it for none)")
        else:
            ctx.error(path, "must define at least one endpoint")
    endpoints: dict[str, Endpoint] = {}
    for entry_path, ep_name, body in entries:
        endpoint = _endpoint(ctx, entry_path, ep_name or "", body, defined, scope)
        if endpoint is not None and ep_name is not None:
            endpoints[ep_name] = endpoint
            _check_matrix(ctx, entry_path, endpoint, defined, canary=scope.canary)
    return endpoints


def _names(endpoints: Sequence[Endpoint]) -> str:
    shown = ", ".join(e.name for e in endpoints[:3])
    more = f" and {len(endpoints) - 3} more" if len(endpoints) > 3 else ""
    verb = "is" if len(endpoints) == 1 else "are"
    return f"{'endpoint' if len(endpoints) == 1 else 'endpoints'} {shown}{more} {verb}"


def _service(ctx: _Ctx, path: str, name: str, value: object, defined: _Defined) -> Service | None:
    f = ctx.fields(path, value, _SERVICE_KEYS, "a mapping with endpoints")
    if f is None:
        return None
    n = len(ctx.errors)
    resolvers = (
        ctx.name_list(
            _join(path, "resolvers"),
            f["resolvers"],
            "resolver",
            defined.resolvers,
            refused=defined.refused_resolvers,
        )
        if "resolvers" in f
        else None
    )
    networks = (
        ctx.name_list(_join(path, "networks"), f["networks"], "network", defined.networks)
        if "networks" in f
        else None
    )
    expected: tuple[_IPNetwork, ...] | None = ()
    if "expected_networks" in f:
        expected = _expected_networks(ctx, _join(path, "expected_networks"), f["expected_networks"])
    control_sni = defined.control_sni
    if "control_sni" in f:
        control_sni = ctx.sni(_join(path, "control_sni"), f["control_sni"])
    scope = _Scope(
        service=name,
        resolvers=resolvers,
        networks=networks,
        control_sni=control_sni,
        expected_networks=expected or (),
    )
    endpoints: dict[str, Endpoint] = {}
    if "endpoints" not in f:
        ctx.error(_join(path, "endpoints"), "missing required key (a mapping of endpoints)")
    else:
        endpoints = _endpoints(ctx, _join(path, "endpoints"), f["endpoints"], defined, scope)
    if expected:
        # Judged by expected_networks, an answer of a family it has no network for would
        # always be "outside", so every such tuple would read dns_tampered.
        for family, rtype in ((4, "A"), (6, "AAAA")):
            if any(net.version == family for net in expected):
                continue
            hosts = [e for e in endpoints.values() if e.address is None and family in e.families]
            if hosts:
                ctx.error(
                    _join(path, "expected_networks"),
                    f"has no IPv{family} network, but {_names(hosts)} probed over IPv{family}: "
                    f"every {rtype} answer would be judged outside it (dns_tampered); add the "
                    f"service's IPv{family} ranges or narrow ip_families",
                )
    if len(ctx.errors) != n:
        return None
    return Service(name=name, endpoints=MappingProxyType(endpoints))


def _canaries(ctx: _Ctx, value: object, defined: _Defined) -> Service | None:
    n = len(ctx.errors)
    scope = _Scope(
        service=CANARY_SERVICE,
        resolvers=None,
        networks=None,
        control_sni=defined.control_sni,
        canary=True,
    )
    endpoints = _endpoints(ctx, "canaries", value, defined, scope)
    if len(ctx.errors) != n:
        return None
    return Service(name=CANARY_SERVICE, endpoints=MappingProxyType(endpoints))


def _check_matrix(
    ctx: _Ctx, path: str, endpoint: Endpoint, defined: _Defined, *, canary: bool = False
) -> None:
    """An error when nothing of this endpoint could ever be probed: every (network,
    resolver) pair of it is one a network cannot carry (`config.incompatibility`), or its
    only check is quic and every network is a proxy. Single pairs that cannot work are left
    out of the matrix, not refused: a SOCKS network is probed through the resolvers that
    cross it, and `check` lists what is left out."""
    networks = [n for name in endpoint.networks if (n := defined.networks.get(name)) is not None]
    if not networks or (endpoint.address is not None and not endpoint.families):
        return
    if not any(on_network(endpoint, network) for network in networks):
        ctx.error(
            path,
            "the quic check cannot be made through any of its networks (a SOCKS proxy "
            "carries only TCP); add tcp checks or a network without a proxy",
        )
        return
    if endpoint.address is not None:
        return
    resolvers = [r for name in endpoint.resolvers if (r := defined.resolvers.get(name)) is not None]
    whys = {
        f"{_q(r.name)} through {_q(n.name)}: {why}"
        for n in networks
        for r in resolvers
        if (why := incompatibility(n, r)) is not None
    }
    if resolvers and len(whys) == len(networks) * len(resolvers):
        first = sorted(whys)[0]
        more = f" (and {len(whys) - 1} more)" if len(whys) > 1 else ""
        fix = (
            f"{_CANARY_WHY}: define a resolver every network can carry (tcp, dot or doh)"
            if canary
            else "add a resolver its networks can carry (tcp, dot or doh), or another network"
        )
        ctx.error(
            path,
            f"no resolver of it can be asked through any of its networks ({first}{more}); {fix}",
        )


# --------------------------------------------------------------------------------------------
# Blockpage lists


def _blockpage_addresses(ctx: _Ctx, value: object) -> frozenset[str] | None:
    path = "blockpage_addresses"
    items = ctx.optional_list(path, value, "IP addresses")
    if items is None:
        return None
    addresses: list[str] = []
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        address = ctx.ip(item_path, item)
        if address is None:
            ok = False
        elif address in addresses:
            ctx.error(item_path, f"{address} is listed twice")
            ok = False
        else:
            addresses.append(address)
    return frozenset(addresses) if ok else None


def _blockpage_patterns(
    ctx: _Ctx, value: object, path: str = "blockpage_patterns", what: str = "page"
) -> tuple[re.Pattern[bytes], ...] | None:
    """A list of regular expressions, compiled as bytes; `what` they would all match when
    one matches the empty string."""
    items = ctx.optional_list(path, value, "regular expressions")
    if items is None:
        return None
    patterns: list[re.Pattern[bytes]] = []
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        if not isinstance(item, str) or not item:
            ctx.error(item_path, f"expected a regular expression, got {_describe(item)}")
            ok = False
            continue
        try:
            pattern = re.compile(item.encode())
        except re.error as e:
            ctx.error(item_path, f"invalid regular expression {_q(item)}: {e}")
            ok = False
            continue
        if pattern.search(b"") is not None:
            ctx.error(
                item_path,
                f"{_q(item)} matches the empty string, so it would match every {what}",
            )
            ok = False
        elif any(p.pattern == pattern.pattern for p in patterns):
            ctx.error(item_path, f"{_q(item)} is listed twice")
            ok = False
        else:
            patterns.append(pattern)
    return tuple(patterns) if ok else None


def _blockpage_headers(
    ctx: _Ctx, value: object
) -> Mapping[str, tuple[re.Pattern[bytes], ...]] | None:
    """Header name (any case; kept lower-case) -> patterns searched in that header's value.
    `Location` is matched by `blockpage_patterns` already, so it is refused here."""
    path = "blockpage_headers"
    m = ctx.mapping(path, value, "a mapping of header names to lists of regular expressions")
    if m is None:
        return None
    entries, ok = _header_entries(ctx, path, m)
    out: dict[str, tuple[re.Pattern[bytes], ...]] = {}
    for item_path, key, item in entries:
        if key.lower() == "location":
            ctx.error(item_path, "Location is matched by blockpage_patterns; list it there")
            ok = False
            continue
        patterns = _blockpage_patterns(ctx, item, item_path, f"{key} header")
        if patterns is None:
            ok = False
        else:
            out[key.lower()] = patterns
    return MappingProxyType(out) if ok else None


# --------------------------------------------------------------------------------------------
# Entry points


def _parse(data: object, ctx: _Ctx) -> Config | None:
    if data is None:
        ctx.error(_TOP, "the config is empty; it needs at least services:")
        return None
    if not isinstance(data, Mapping):
        ctx.error(
            _TOP, f"expected a mapping of keys like interval, services, got {_describe(data)}"
        )
        return None
    top = ctx.fields("", data, _TOP_KEYS, "a mapping")
    if top is None:
        return None

    interval = ctx.duration("interval", top["interval"]) if "interval" in top else 60.0
    timeout = ctx.duration("timeout", top["timeout"]) if "timeout" in top else 10.0
    if interval is not None and timeout is not None and timeout > interval:
        ctx.error("timeout", f"must not be longer than interval ({timeout:g}s > {interval:g}s)")
    concurrency = 64
    if "concurrency" in top:
        v = top["concurrency"]
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            concurrency = v
        else:
            ctx.error("concurrency", f"expected an integer of at least 1, got {_describe(v)}")
    families: tuple[int, ...] | None = (4,)
    if "ip_families" in top:
        families = ctx.families("ip_families", top["ip_families"])
    control_sni = ctx.sni("control_sni", top["control_sni"]) if "control_sni" in top else None
    blockpage_addresses: frozenset[str] | None = DEFAULT_BLOCKPAGE_ADDRESSES
    if "blockpage_addresses" in top:
        blockpage_addresses = _blockpage_addresses(ctx, top["blockpage_addresses"])
    blockpage_patterns: tuple[re.Pattern[bytes], ...] | None = _DEFAULT_BLOCKPAGE_PATTERNS
    if "blockpage_patterns" in top:
        blockpage_patterns = _blockpage_patterns(ctx, top["blockpage_patterns"])
    blockpage_headers: Mapping[str, tuple[re.Pattern[bytes], ...]] | None = (
        _DEFAULT_BLOCKPAGE_HEADERS
    )
    if "blockpage_headers" in top:
        blockpage_headers = _blockpage_headers(ctx, top["blockpage_headers"])
    throttling: Throttling | None = Throttling()
    if "throttling" in top:
        throttling = _throttling(ctx, top["throttling"])
    metrics: MetricsOptions | None = MetricsOptions()
    if "metrics" in top:
        metrics = _metrics(ctx, top["metrics"])
    localisation: Localisation | None = Localisation()
    if "localisation" in top:
        localisation = _localisation(ctx, top["localisation"], interval)

    resolvers: dict[str, Resolver | None] = {}
    if "resolvers" not in top:
        resolvers["system"] = Resolver(
            name="system", type=ResolverType.SYSTEM, port=DEFAULT_RESOLVER_PORT[ResolverType.SYSTEM]
        )
    else:
        entries = ctx.named(
            "resolvers",
            top["resolvers"],
            "resolver",
            reserved={NO_RESOLVER: "(it labels endpoints given by address, which skip DNS)"},
        )
        if not entries and isinstance(top["resolvers"], Mapping):
            ctx.error("resolvers", "must define at least one resolver (omit it for the system one)")
        for path, name, body in entries:
            resolver = _resolver(ctx, path, name or "", body)
            if name is not None:
                resolvers[name] = resolver

    networks: dict[str, Network | None] = {}
    if "networks" not in top:
        networks["default"] = Network(name="default")
    else:
        entries = ctx.named("networks", top["networks"], "network")
        if not entries and isinstance(top["networks"], Mapping):
            ctx.error("networks", "must define at least one network (omit it for default: {})")
        for path, name, body in entries:
            network = _network(ctx, path, name or "", body)
            if name is not None:
                networks[name] = network

    silent = [name for name, r in resolvers.items() if r is not None and r.silent]
    defined = _Defined(
        resolvers=resolvers,
        networks=networks,
        families=families if families else (4,),
        control_sni=control_sni,
        dns_resolvers=tuple(name for name in resolvers if name not in silent),
        refused_resolvers={
            name: f"resolver {_q(name)} is silent: it runs no DNS server and only detects "
            "interception, so it cannot resolve endpoints"
            for name in silent
        },
    )
    services: dict[str, Service] = {}
    if "services" not in top:
        ctx.error("services", "missing required key (a mapping of services to probe)")
    else:
        entries = ctx.named(
            "services",
            top["services"],
            "service",
            reserved={CANARY_SERVICE: "for canaries:"},
        )
        if not entries and isinstance(top["services"], Mapping):
            ctx.error("services", "must define at least one service")
        for path, name, body in entries:
            service = _service(ctx, path, name or "", body, defined)
            if service is not None and name is not None:
                services[name] = service
    if "canaries" in top:
        canaries = _canaries(ctx, top["canaries"], defined)
        if canaries is not None:
            services[CANARY_SERVICE] = canaries

    if ctx.errors:
        return None
    assert interval is not None
    assert timeout is not None
    assert families is not None
    assert blockpage_addresses is not None
    assert blockpage_patterns is not None
    assert blockpage_headers is not None
    assert localisation is not None
    assert throttling is not None
    assert metrics is not None
    return Config(
        interval=interval,
        timeout=timeout,
        concurrency=concurrency,
        ip_families=families,
        resolvers=MappingProxyType({k: v for k, v in resolvers.items() if v is not None}),
        networks=MappingProxyType({k: v for k, v in networks.items() if v is not None}),
        services=MappingProxyType(services),
        blockpage_addresses=blockpage_addresses,
        blockpage_patterns=blockpage_patterns,
        blockpage_headers=blockpage_headers,
        localisation=localisation,
        throttling=throttling,
        metrics=metrics,
    )


def parse(data: object, *, base_dir: str | os.PathLike[str] | None = None) -> Config:
    """The Config of already-decoded YAML data (plain dicts, lists and scalars).

    Relative ca_file / extra_ca_file paths are taken from `base_dir` (default: the current
    directory). Raises ConfigErrors with every problem found.
    """
    ctx = _Ctx(Path(base_dir) if base_dir is not None else None)
    config = _parse(data, ctx)
    if config is None:
        raise ConfigErrors(ctx.errors)
    return config


# ---- YAML

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load semantics, but a key given twice in one mapping is recorded as an error
    (a merge `<<:` may still be overridden: that is what merges are for)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Hashable, object]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: the base class reports it
                    continue
                if first is None:
                    seen[key] = key_node
                    continue
                mark = key_node.start_mark
                self.duplicates.append(
                    f"line {mark.line + 1}, column {mark.column + 1}: duplicate key "
                    f"{_describe(key)} (first on line {first.start_mark.line + 1})"
                )
        return super().construct_mapping(node, deep)


def _mark(mark: yaml.Mark | None) -> str:
    return "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}"


def _yaml_message(e: yaml.YAMLError) -> str:
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        msg = f"{_mark(e.problem_mark)}: {e.problem or 'invalid YAML'}"
        if e.context:
            where = f" at {_mark(e.context_mark)}" if e.context_mark is not None else ""
            msg += f" ({e.context}{where})"
        return " ".join(msg.split())
    return " ".join(str(e).split())


def parse_yaml(
    text: str | bytes,
    *,
    source: str = "<yaml>",
    base_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """The Config of a YAML document. `source` is the path of YAML and encoding errors.

    Whatever the text, the outcome is a Config or ConfigErrors: a document larger than
    `MAX_CONFIG_BYTES` or nested deeper than the YAML parser's recursion allows is an error
    with the source as its path, never a traceback. Aliases are not expanded (PyYAML shares
    the aliased object), so an alias bomb costs no memory, and the schema never walks deeper
    than its own keys."""
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > MAX_CONFIG_BYTES:
        raise ConfigErrors([ConfigError(source, _too_large(size))])
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw.count(b"\n", 0, e.start) + 1
            column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
            raise ConfigErrors(
                [
                    ConfigError(
                        source,
                        f"not valid UTF-8: byte 0x{raw[e.start]:02x} at line {line}, "
                        f"column {column}",
                    )
                ]
            ) from None
    try:
        # The reader checks the whole text for non-printable characters on construction.
        loader = _StrictLoader(text)
    except yaml.YAMLError as e:
        raise ConfigErrors([ConfigError(source, _yaml_message(e))]) from None
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        raise ConfigErrors([ConfigError(source, _yaml_message(e))]) from None
    except RecursionError:
        # PyYAML composes and constructs recursively: 100,000 "[" or 5,000 nested flow
        # mappings exhaust the interpreter's stack (tests/test_loader_properties.py).
        raise ConfigErrors([ConfigError(source, "YAML nested too deeply")]) from None
    finally:
        loader.dispose()
    errors = [ConfigError(source, d) for d in loader.duplicates]
    try:
        config = parse(data, base_dir=base_dir)
    except ConfigErrors as e:
        raise ConfigErrors([*errors, *e.errors]) from None
    if errors:
        raise ConfigErrors(errors)
    return config


def load(path: str | os.PathLike[str]) -> Config:
    """The Config of a YAML file. Relative CA file paths are relative to the file's directory."""
    source = os.fspath(path)
    p = Path(source)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)  # never more: /dev/zero is a "file" too
    except FileNotFoundError:
        raise ConfigErrors([ConfigError(source, "no such file")]) from None
    except IsADirectoryError:
        raise ConfigErrors([ConfigError(source, "is a directory, not a config file")]) from None
    except PermissionError:
        raise ConfigErrors([ConfigError(source, "cannot read: permission denied")]) from None
    except OSError as e:
        raise ConfigErrors([ConfigError(source, f"cannot read: {e.strerror or e}")]) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigErrors([ConfigError(source, _too_large(len(data), at_least=True))])
    return parse_yaml(data, source=source, base_dir=p.parent)


def _too_large(size: int, *, at_least: bool = False) -> str:
    limit = MAX_CONFIG_BYTES // (1024 * 1024)
    if at_least:
        return f"too large: more than {MAX_CONFIG_BYTES} bytes, the limit is {limit} MiB"
    return f"too large: {size} bytes, the limit is {limit} MiB"
