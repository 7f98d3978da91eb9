"""Whether a throughput that passed is throttled (rules 8a and 8b of docs/verdicts.md):
far below another network's in the same round, or below the tuple's own baseline. Pure; the
earlier rates are handed in (`Baselines`, kept by exporter.judge.history)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from exporter.config.model import Config
from exporter.model.observation import Observation, TupleKey
from exporter.units import format_rate

#: Earlier rates a tuple needs before its median counts as a baseline (fewer when
#: `throttling.baseline_rounds` is smaller).
MIN_BASELINE_SAMPLES = 3

#: Per tuple, the throughput rates (bytes/s) of its earlier rounds, oldest first: the state
#: the baseline rule needs across rounds, kept by the caller (exporter.judge.history) and passed in.
Baselines = Mapping[TupleKey, Sequence[float]]


def _rate(obs: Observation) -> float | None:
    """The throughput a probe measured, bytes/s; None without a measurement."""
    return None if obs.throughput is None else obs.throughput.bytes_per_second


def _baseline(samples: Sequence[float] | None, rounds: int) -> float | None:
    """The median of the last `rounds` rates, once there are enough of them."""
    if rounds <= 0 or not samples:
        return None
    recent = samples[-rounds:]
    if len(recent) < min(MIN_BASELINE_SAMPLES, rounds):
        return None
    return float(statistics.median(recent))


def throttle_reason(
    obs: Observation, others: list[Observation], baselines: Baselines, config: Config
) -> str | None:
    """Why `obs`'s throughput counts as throttled (rules 8a and 8b of docs/verdicts.md), or
    None. `others` are the other tuples of the same endpoint and family on networks that are
    up; only those on *other* networks are controls (the same network shares the path)."""
    rate = _rate(obs)
    rule = config.throttling
    if rate is None:
        return None
    if rule.min_bytes_per_second > 0 and rate >= rule.min_bytes_per_second:
        return None  # enough for the service, whatever the others do
    elsewhere = [
        (p, r)
        for p in others
        if p.key.network != obs.key.network and p.success and (r := _rate(p)) is not None
    ]
    if elsewhere:
        best, best_rate = max(elsewhere, key=lambda pr: pr[1])
        if rate < rule.ratio * best_rate:
            return (
                f"throughput {format_rate(rate)} is below {rule.ratio:g} x the "
                f"{format_rate(best_rate)} measured on network {best.key.network!r} in the "
                f"same round"
            )
    base = _baseline(baselines.get(obs.key), rule.baseline_rounds)
    if base is None or rate >= rule.ratio * base:
        return None
    if elsewhere:
        # Comparable rates elsewhere now: the drop is local only if another network kept
        # its own baseline (a drop seen everywhere is the service's, not this network's).
        steady = [
            (p, r)
            for p, r in elsewhere
            if (b := _baseline(baselines.get(p.key), rule.baseline_rounds)) is not None
            and r >= rule.ratio * b
        ]
        if not steady:
            return None
        evidence = f", while network {steady[0][0].key.network!r} kept its own"
    else:
        evidence = " (no other network measured it this round)"
    count = min(len(baselines.get(obs.key) or ()), rule.baseline_rounds)
    return (
        f"throughput {format_rate(rate)} is below {rule.ratio:g} x this tuple's median of "
        f"{format_rate(base)} over its last {count} rounds{evidence}"
    )
