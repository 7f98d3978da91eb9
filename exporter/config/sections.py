"""The top-level option sections: `throttling`, `metrics`, `localisation`, and the blockpage
lists (`blockpage_addresses`, `blockpage_patterns`, `blockpage_headers`).

Each table's keys are the fields of the dataclass it builds; a key left out keeps the
dataclass's default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from exporter.config import rules, scalars
from exporter.config.blocklists.pages import DEFAULT_BLOCKPAGE_HEADERS, DEFAULT_BLOCKPAGE_PATTERNS
from exporter.config.decoding import Decoder, Fields
from exporter.config.errors import describe, join, quote
from exporter.config.model import (
    MAX_LOCALISATION_HOPS,
    Localisation,
    MetricsOptions,
    PhaseHistograms,
    Throttling,
)

__all__ = [
    "DEFAULT_BLOCKPAGE_HEADER_PATTERNS",
    "DEFAULT_BLOCKPAGE_PAGE_PATTERNS",
    "LOCALISATION_FIELDS",
    "METRICS_FIELDS",
    "THROTTLING_FIELDS",
    "blockpage_addresses",
    "blockpage_headers",
    "blockpage_patterns",
    "localisation",
    "metrics",
    "throttling",
]

_MAX_BASELINE_ROUNDS: Final = 1000

#: The shipped blockpage patterns, compiled as the loader compiles `blockpage_patterns`.
DEFAULT_BLOCKPAGE_PAGE_PATTERNS: Final[tuple[re.Pattern[bytes], ...]] = tuple(
    re.compile(p.encode()) for p in DEFAULT_BLOCKPAGE_PATTERNS
)
DEFAULT_BLOCKPAGE_HEADER_PATTERNS: Final[Mapping[str, tuple[re.Pattern[bytes], ...]]] = (
    MappingProxyType(
        {
            name: tuple(re.compile(p.encode()) for p in patterns)
            for name, patterns in DEFAULT_BLOCKPAGE_HEADERS.items()
        }
    )
)


# ---- throttling


def _ratio(d: Decoder, path: str, value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1:
        return float(value)
    d.error(
        path,
        f"expected a number between 0 and 1 (both excluded) like 0.25, got {describe(value)}",
    )
    return None


def _baseline_rounds(d: Decoder, path: str, value: object) -> int | None:
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= _MAX_BASELINE_ROUNDS
    ):
        return value
    d.error(
        path,
        f"expected an integer from 0 (no baseline) to {_MAX_BASELINE_ROUNDS}, "
        f"got {describe(value)}",
    )
    return None


def _bytes_per_second(d: Decoder, path: str, value: object) -> float | None:
    given = scalars.parse_size(value)
    if given is not None and given >= 0:
        return float(given)
    d.error(
        path,
        "expected bytes per second as a number or like 256KiB, 1MiB (units B, KiB, MiB), "
        f"got {describe(value)}",
    )
    return None


THROTTLING_FIELDS: Final[Fields] = MappingProxyType(
    {
        "ratio": _ratio,
        "baseline_rounds": _baseline_rounds,
        "min_bytes_per_second": _bytes_per_second,
    }
)


def throttling(d: Decoder, path: str, value: object) -> Throttling | None:
    decoded = d.section(
        path, value, THROTTLING_FIELDS, "a mapping of throttling options (ratio, baseline_rounds)"
    )
    return None if decoded is None else Throttling(**decoded)


# ---- metrics

METRICS_FIELDS: Final[Fields] = MappingProxyType(
    {"phase_histograms": scalars.one_of(tuple(m.value for m in PhaseHistograms))}
)


def metrics(d: Decoder, path: str, value: object) -> MetricsOptions | None:
    decoded = d.section(
        path, value, METRICS_FIELDS, "a mapping of metrics options (phase_histograms)"
    )
    if decoded is None:
        return None
    if "phase_histograms" in decoded:
        return MetricsOptions(phase_histograms=PhaseHistograms(decoded["phase_histograms"]))
    return MetricsOptions()


# ---- localisation

#: `interval` may not be shorter than the probe interval (`rules.localisation_interval`).
LOCALISATION_FIELDS: Final[Fields] = MappingProxyType(
    {
        "enabled": scalars.boolean,
        "max_hops": scalars.int_range(1, MAX_LOCALISATION_HOPS),
        "concurrency": scalars.int_range(1, 64),
        "interval": scalars.duration,
        "timeout": scalars.duration,
    }
)


def localisation(
    d: Decoder, path: str, value: object, probe_interval: float | None
) -> Localisation | None:
    given = d.fields(path, value, LOCALISATION_FIELDS, "a mapping of localisation options")
    if given is None:
        return None
    n = len(d.errors)
    decoded = d.decode(path, given, LOCALISATION_FIELDS)
    rules.localisation_interval(d, join(path, "interval"), decoded.get("interval"), probe_interval)
    return Localisation(**decoded) if len(d.errors) == n else None


# ---- blockpage lists


def blockpage_addresses(d: Decoder, path: str, value: object) -> frozenset[str] | None:
    items = d.optional_list(path, value, "IP addresses")
    if items is None:
        return None
    addresses: list[str] = []
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        address = scalars.ip(d, item_path, item)
        if address is None:
            ok = False
        elif address in addresses:
            d.error(item_path, f"{address} is listed twice")
            ok = False
        else:
            addresses.append(address)
    return frozenset(addresses) if ok else None


def blockpage_patterns(
    d: Decoder, path: str, value: object, what: str = "page"
) -> tuple[re.Pattern[bytes], ...] | None:
    """A list of regular expressions, compiled as bytes; `what` they would all match when
    one matches the empty string."""
    items = d.optional_list(path, value, "regular expressions")
    if items is None:
        return None
    patterns: list[re.Pattern[bytes]] = []
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        pattern = scalars.byte_pattern(d, item_path, item)
        if pattern is None:
            ok = False
        elif pattern.search(b"") is not None:
            d.error(
                item_path,
                f"{quote(str(item))} matches the empty string, so it would match every {what}",
            )
            ok = False
        elif any(p.pattern == pattern.pattern for p in patterns):
            d.error(item_path, f"{quote(str(item))} is listed twice")
            ok = False
        else:
            patterns.append(pattern)
    return tuple(patterns) if ok else None


def blockpage_headers(
    d: Decoder, path: str, value: object
) -> Mapping[str, tuple[re.Pattern[bytes], ...]] | None:
    """Header name (any case; kept lower-case) -> patterns searched in that header's value.
    `Location` is matched by `blockpage_patterns` already, so it is refused here."""
    m = d.mapping(path, value, "a mapping of header names to lists of regular expressions")
    if m is None:
        return None
    entries, ok = scalars.header_entries(d, path, m)
    out: dict[str, tuple[re.Pattern[bytes], ...]] = {}
    for item_path, key, item in entries:
        if key.lower() == "location":
            d.error(item_path, "Location is matched by blockpage_patterns; list it there")
            ok = False
            continue
        patterns = blockpage_patterns(d, item_path, item, f"{key} header")
        if patterns is None:
            ok = False
        else:
            out[key.lower()] = patterns
    return MappingProxyType(out) if ok else None
