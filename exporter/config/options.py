"""The option mappings of an endpoint (and of a resolver, for `tls`): `tls`, `http`,
`throughput`, `quic` and `mtproto`.

Each table's keys are the fields of the dataclass it builds (`TlsOptions(**decoded)`): a key
left out keeps the dataclass's default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from exporter.config import scalars
from exporter.config.decoding import Decoder, Fields
from exporter.config.errors import describe, quote
from exporter.config.model import (
    MAX_THROUGHPUT_BYTES,
    HttpOptions,
    MtprotoOptions,
    QuicOptions,
    StatusRange,
    TlsOptions,
)
from exporter.model.observation import MtprotoTransport

__all__ = [
    "HTTP_FIELDS",
    "HTTP_METHODS",
    "MTPROTO_FIELDS",
    "QUIC_FIELDS",
    "THROUGHPUT_FIELDS",
    "TLS_FIELDS",
    "http",
    "mtproto",
    "quic",
    "throughput",
    "tls",
]

HTTP_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "OPTIONS")


def _expect_status(d: Decoder, path: str, value: object) -> tuple[StatusRange, ...] | None:
    items = d.nonempty_list(path, value, "status codes or classes like 2xx")
    if items is None:
        return None
    ranges = [scalars.status(d, f"{path}[{i}]", item) for i, item in enumerate(items)]
    return tuple(r for r in ranges if r is not None)


def _body_patterns(d: Decoder, path: str, value: object) -> tuple[re.Pattern[bytes], ...]:
    items = d.nonempty_list(path, value, "regular expressions")
    patterns: list[re.Pattern[bytes]] = []
    for i, item in enumerate(items or ()):
        item_path = f"{path}[{i}]"
        pattern = scalars.byte_pattern(d, item_path, item)
        if pattern is None:
            continue
        # A pattern that matches nothing matches every body: each response, honest or
        # not, would fail as a blockpage (a false `http_blockpage` on every network).
        if pattern.search(b"") is not None:
            d.error(
                item_path,
                f"{quote(str(item))} matches an empty body, so every response would match "
                "(expected a pattern that needs at least one character)",
            )
            continue
        patterns.append(pattern)
    return tuple(patterns)


def _throughput_bytes(d: Decoder, path: str, value: object) -> int | None:
    given = scalars.parse_size(value)
    if given is None or given < 0:
        d.error(path, f"expected {scalars.SIZE_HINT}, got {describe(value)}")
    elif given == 0:
        d.error(path, "must be more than 0 (nothing to measure)")
    elif given > MAX_THROUGHPUT_BYTES:
        d.error(path, f"{describe(value)} is more than the maximum of 16MiB")
    else:
        return given
    return None


TLS_FIELDS: Final[Fields] = MappingProxyType(
    {
        "ca_file": scalars.ca_file,
        "extra_ca_file": scalars.ca_file,
        "server_name": scalars.server_name,
        "insecure_skip_verify": scalars.boolean,
    }
)
HTTP_FIELDS: Final[Fields] = MappingProxyType(
    {
        "method": scalars.one_of(HTTP_METHODS),
        "path": scalars.request_path,
        "expect_status": _expect_status,
        "fail_if_body_matches": _body_patterns,
        "headers": scalars.headers,
        "body_limit": scalars.body_limit,
    }
)
#: `path` defaults to the endpoint's `http.path`, known only with the endpoint.
THROUGHPUT_FIELDS: Final[Fields] = MappingProxyType(
    {
        "path": scalars.request_path,
        "bytes": _throughput_bytes,
    }
)
QUIC_FIELDS: Final[Fields] = MappingProxyType(
    {
        "port": scalars.port,
        "http3": scalars.boolean,
    }
)


MTPROTO_FIELDS: Final[Fields] = MappingProxyType(
    {
        "transport": scalars.one_of(tuple(t.value for t in MtprotoTransport)),
        "dc": scalars.int_range(-32768, 32767),
    }
)


def tls(d: Decoder, path: str, value: object) -> TlsOptions | None:
    decoded = d.section(path, value, TLS_FIELDS, "a mapping of TLS options")
    return None if decoded is None else TlsOptions(**decoded)


def http(d: Decoder, path: str, value: object) -> HttpOptions | None:
    decoded = d.section(path, value, HTTP_FIELDS, "a mapping of HTTP options")
    return None if decoded is None else HttpOptions(**decoded)


def throughput(d: Decoder, path: str, value: object) -> Mapping[str, Any] | None:
    """The throughput options given, for `ThroughputOptions(path=http.path, **given)`."""
    return d.section(
        path, value, THROUGHPUT_FIELDS, "a mapping of throughput options (path, bytes)"
    )


def quic(d: Decoder, path: str, value: object) -> QuicOptions | None:
    decoded = d.section(path, value, QUIC_FIELDS, "a mapping of QUIC options (port, http3)")
    return None if decoded is None else QuicOptions(**decoded)


def mtproto(d: Decoder, path: str, value: object) -> MtprotoOptions | None:
    decoded = d.section(path, value, MTPROTO_FIELDS, "a mapping of MTProto options (transport, dc)")
    if decoded is None:
        return None
    if "transport" in decoded:
        decoded["transport"] = MtprotoTransport(decoded["transport"])
    return MtprotoOptions(**decoded)
