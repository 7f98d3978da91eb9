"""Figures and text for people (log lines, verdict evidence, error details). Pure."""

from __future__ import annotations


def format_rate(bytes_per_second: float) -> str:
    """A rate: `512 B/s`, `96.0 KiB/s`, `12.3 MiB/s`."""
    if bytes_per_second < 1024:
        return f"{bytes_per_second:.0f} B/s"
    if bytes_per_second < 1024 * 1024:
        return f"{bytes_per_second / 1024:.1f} KiB/s"
    return f"{bytes_per_second / (1024 * 1024):.1f} MiB/s"


def format_ms(seconds: float) -> str:
    """A duration for a log line: `12.3ms`."""
    return f"{seconds * 1000:.1f}ms"


def cut(text: str, limit: int) -> str:
    """`text` at most `limit` characters long, an ellipsis marking what was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
