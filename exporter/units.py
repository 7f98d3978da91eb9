"""Figures for people (log lines, verdict evidence). Pure."""

from __future__ import annotations


def format_rate(bytes_per_second: float) -> str:
    """A rate: `512 B/s`, `96.0 KiB/s`, `12.3 MiB/s`."""
    if bytes_per_second < 1024:
        return f"{bytes_per_second:.0f} B/s"
    if bytes_per_second < 1024 * 1024:
        return f"{bytes_per_second / 1024:.1f} KiB/s"
    return f"{bytes_per_second / (1024 * 1024):.1f} MiB/s"
