"""Recent verdict changes per tuple ("blocked on isp-b since 14:02, method tls_blocked"), and
the state timelines behind the status page's 24-hour strips.

A small in-memory ring, owned by the app and passed in (no module globals). It is fed the
findings of each judged round; only a change of verdict is remembered. Bounded twice: at
most `per_tuple` changes per tuple and `total` changes overall (the oldest go first), and
`retain` drops the tuples a reload removed. The current verdict of each tuple is kept apart
from the ring, so that the ring's bound never makes a tuple's next round read as a first
verdict again, and the number of tuples judged stays true however few changes are listed.

The strips: per (service, endpoint, network), the coarse state (`state_of`: blocked, down,
reachable, unknown; the worst over its resolvers and families) each time it changes, over the
last `SEGMENTS` segments of `SEGMENT_SECONDS` (24 h) and the one change before them (the state
the window starts in). Per endpoint rather than per tuple because a row of the page is a set of
endpoints (a service's calls and protocol rows are endpoints with the stun / mtproto check)
and there are far fewer endpoints than tuples. Bounded: past `MAX_SHIFTS` changes (a state
flapping every round), the changes within one segment are merged into its first (with the
worst state of the segment) and its last, which the strip reads the same.

Pure: time is passed in (unix seconds).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from exporter.config.matrix import RESOLVER_CHECK_SERVICE
from exporter.model.judgement import BLOCKED, Finding, Verdict
from exporter.model.observation import TupleKey

#: Coarse states, worst first: what a person reads on the status page and its strips.
STATES: tuple[str, ...] = ("blocked", "down", "reachable", "unknown")

_RANK = {s: i for i, s in enumerate(STATES)}


def state_of(verdict: Verdict | None) -> str:
    """The coarse state of a verdict: blocked, down, reachable or unknown."""
    if verdict is None or verdict is Verdict.SETUP_ERROR:
        return "unknown"  # a network the exporter cannot use says nothing of the service
    if verdict in BLOCKED:
        return "blocked"
    if verdict is Verdict.OK:
        return "reachable"
    return "down"


def worse(a: str, b: str) -> str:
    """The worse of two states (`STATES` order)."""
    return a if _RANK[a] <= _RANK[b] else b


#: Seconds per segment of a strip, and segments per strip: 48 half hours, 24 h.
SEGMENT_SECONDS = 1800.0
SEGMENTS = 48
#: Changes kept per (service, endpoint, network) before merging within segments (at most
#: two per segment remain, so merging always brings it back under).
MAX_SHIFTS = 4 * SEGMENTS

#: (service, endpoint, network): what a strip is kept for.
Group = tuple[str, str, str]
#: (unix seconds, state): the state from then on.
Shift = tuple[float, str]


def window_start(now: float) -> float:
    """The start of the strip's first segment: segments are aligned to whole half hours, the
    last one holds `now`."""
    return (now // SEGMENT_SECONDS - (SEGMENTS - 1)) * SEGMENT_SECONDS


def group_of(key: TupleKey) -> Group:
    return (key.service, key.endpoint, key.network)


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A tuple's verdict became `verdict` at `since` (unix seconds); `previous` is None for
    the first verdict seen."""

    key: TupleKey
    verdict: Verdict
    previous: Verdict | None
    since: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Firsts:
    """The first verdicts of the tuples judged now: how many, and the earliest and latest."""

    count: int
    earliest: float | None
    latest: float | None


class Changes:
    """The ring. Invariant: len(self) <= total, every tuple holds <= per_tuple changes, and
    every group's timeline holds <= MAX_SHIFTS changes."""

    def __init__(self, *, per_tuple: int = 10, total: int = 2000) -> None:
        if per_tuple < 1 or total < 1:
            raise ValueError("per_tuple and total must be >= 1")
        self._per_tuple = per_tuple
        self._total = total
        #: Per tuple, its changes oldest first: lists, not deques (a deque's first block is
        #: ~600 bytes, and up to `total` tuples hold a few changes each).
        self._by_key: dict[TupleKey, list[Change]] = {}
        self._order: deque[Change] = deque()
        #: Per tuple judged: its latest change (never dropped by the ring's bounds).
        self._current: dict[TupleKey, Change] = {}
        #: When the first verdicts of the tuples were seen, the earliest and the latest.
        self._first_seen: tuple[float, float] | None = None
        self._shifts: dict[Group, list[Shift]] = {}

    def record(self, findings: Mapping[TupleKey, Finding], now: float) -> list[Change]:
        """Remember the verdicts that differ from each tuple's last one; returns them."""
        new: list[Change] = []
        for key, finding in findings.items():
            current = self._current.get(key)
            last = current.verdict if current else None
            if last == finding.verdict:
                continue
            change = Change(
                key=key, verdict=finding.verdict, previous=last, since=now, reason=finding.reason
            )
            self._current[key] = change
            if last is None:
                seen = self._first_seen
                self._first_seen = (seen[0], now) if seen else (now, now)
            ring = self._by_key.get(key)
            if ring is None:
                ring = self._by_key[key] = []
            ring.append(change)
            self._order.append(change)
            if len(ring) > self._per_tuple:
                self._forget(ring.pop(0))
            new.append(change)
        while len(self._order) > self._total:
            old = self._order.popleft()
            ring = self._by_key.get(old.key)
            if ring and ring[0] is old:
                del ring[0]
                if not ring:
                    del self._by_key[old.key]
        self._record_states(findings, now)
        return new

    def _record_states(self, findings: Mapping[TupleKey, Finding], now: float) -> None:
        """Append each group's state when it changed; trim every timeline to the window."""
        states: dict[Group, str] = {}
        for key, finding in findings.items():
            if key.service == RESOLVER_CHECK_SERVICE:
                continue  # judged for interception, never shown as a service
            group = group_of(key)
            state = state_of(finding.verdict)
            old = states.get(group)
            states[group] = state if old is None else worse(old, state)
        start = window_start(now)
        for group, state in states.items():
            shifts = self._shifts.setdefault(group, [])
            if not shifts or shifts[-1][1] != state:
                shifts.append((now, state))
        for group, shifts in self._shifts.items():
            cut = 0
            while cut + 1 < len(shifts) and shifts[cut + 1][0] <= start:
                cut += 1  # the next change began before the window: this one is not seen
            if cut:
                del shifts[:cut]
            if len(shifts) > MAX_SHIFTS:
                self._shifts[group] = compact(shifts)

    def _forget(self, change: Change) -> None:
        with contextlib.suppress(ValueError):
            self._order.remove(change)

    def retain(self, keys: Iterable[TupleKey]) -> None:
        """Drop the tuples not in `keys` (a reload removed them)."""
        keep = set(keys)
        for key in [k for k in self._by_key if k not in keep]:
            del self._by_key[key]
        for key in [k for k in self._current if k not in keep]:
            del self._current[key]
        groups = {group_of(k) for k in keep}
        for group in [g for g in self._shifts if g not in groups]:
            del self._shifts[group]
        self._order = deque(c for c in self._order if c.key in keep)

    def of(self, key: TupleKey) -> tuple[Change, ...]:
        """The changes of one tuple, oldest first (as many as the ring still holds)."""
        return tuple(self._by_key.get(key, ()))

    def current(self, key: TupleKey) -> Change | None:
        """The tuple's latest change: its verdict now and since when."""
        return self._current.get(key)

    def recent(self, limit: int = 50) -> tuple[Change, ...]:
        """The latest `limit` changes of all tuples, newest first."""
        return tuple(reversed(list(self._order)[-limit:]))

    def recent_changes(self, limit: int) -> tuple[Change, ...]:
        """The latest `limit` changes from one verdict to another, newest first, without the
        first verdicts (`firsts` counts them) or the resolver checks (no service): what the
        status page lists."""
        found: list[Change] = []
        for change in reversed(self._order):
            if change.previous is not None and change.key.service != RESOLVER_CHECK_SERVICE:
                found.append(change)
                if len(found) == limit:
                    break
        return tuple(found)

    def firsts(self) -> Firsts:
        """How many tuples have been judged (each a first verdict; resolver checks left
        out), whatever the ring kept. The times are the earliest and latest first verdicts
        seen, also of tuples a reload removed since. O(tuples): for a page, not a round."""
        count = sum(1 for k in self._current if k.service != RESOLVER_CHECK_SERVICE)
        seen = self._first_seen
        return Firsts(
            count=count,
            earliest=seen[0] if seen and count else None,
            latest=seen[1] if seen and count else None,
        )

    def timeline(self, group: Group) -> tuple[Shift, ...]:
        """The state changes of one (service, endpoint, network), oldest first: the one before
        the window (the state it starts in), then those within it."""
        return tuple(self._shifts.get(group, ()))

    def __len__(self) -> int:
        return len(self._order)


def compact(shifts: Sequence[Shift]) -> list[Shift]:
    """`shifts` with, per segment, only its first change (made the worst state of the
    segment) and its last: each segment's worst state and the state carried out of it stay
    the same, so the strip does; times within a segment are lost."""
    out: list[Shift] = []
    i = 0
    while i < len(shifts):
        segment = shifts[i][0] // SEGMENT_SECONDS
        j = i
        while j < len(shifts) and shifts[j][0] // SEGMENT_SECONDS == segment:
            j += 1
        run = shifts[i:j]
        worst = run[0][1]
        for _, state in run[1:]:
            worst = worse(worst, state)
        merged = [(run[0][0], worst)]
        if len(run) > 1 and run[-1][1] != worst:
            merged.append(run[-1])
        for shift in merged:
            if not out or out[-1][1] != shift[1]:
                out.append(shift)
        i = j
    return out
