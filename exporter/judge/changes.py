"""Recent verdict changes per tuple ("blocked on isp-b since 14:02, method tls_blocked").

A small in-memory ring, owned by the app and passed in (no module globals). It is fed the
findings of each judged round; only a change of verdict is remembered. Bounded twice: at
most `per_tuple` changes per tuple and `total` changes overall (the oldest go first), and
`retain` drops the tuples a reload removed. Pure: time is passed in (unix seconds).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from exporter.model.judgement import Finding, Verdict
from exporter.model.observation import TupleKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A tuple's verdict became `verdict` at `since` (unix seconds); `previous` is None for
    the first verdict seen."""

    key: TupleKey
    verdict: Verdict
    previous: Verdict | None
    since: float
    reason: str


class Changes:
    """The ring. Invariant: len(self) <= total and every tuple holds <= per_tuple changes."""

    def __init__(self, *, per_tuple: int = 10, total: int = 2000) -> None:
        if per_tuple < 1 or total < 1:
            raise ValueError("per_tuple and total must be >= 1")
        self._per_tuple = per_tuple
        self._total = total
        self._by_key: dict[TupleKey, deque[Change]] = {}
        self._order: deque[Change] = deque()

    def record(self, findings: Mapping[TupleKey, Finding], now: float) -> list[Change]:
        """Remember the verdicts that differ from each tuple's last one; returns them."""
        new: list[Change] = []
        for key, finding in findings.items():
            ring = self._by_key.get(key)
            last = ring[-1].verdict if ring else None
            if last == finding.verdict:
                continue
            change = Change(
                key=key, verdict=finding.verdict, previous=last, since=now, reason=finding.reason
            )
            if ring is None:
                ring = self._by_key[key] = deque()
            ring.append(change)
            self._order.append(change)
            if len(ring) > self._per_tuple:
                self._forget(ring.popleft())
            new.append(change)
        while len(self._order) > self._total:
            old = self._order.popleft()
            ring = self._by_key.get(old.key)
            if ring and ring[0] is old:
                ring.popleft()
                if not ring:
                    del self._by_key[old.key]
        return new

    def _forget(self, change: Change) -> None:
        with contextlib.suppress(ValueError):
            self._order.remove(change)

    def retain(self, keys: Iterable[TupleKey]) -> None:
        """Drop the tuples not in `keys` (a reload removed them)."""
        keep = set(keys)
        for key in [k for k in self._by_key if k not in keep]:
            del self._by_key[key]
        self._order = deque(c for c in self._order if c.key in keep)

    def of(self, key: TupleKey) -> tuple[Change, ...]:
        """The changes of one tuple, oldest first."""
        return tuple(self._by_key.get(key, ()))

    def current(self, key: TupleKey) -> Change | None:
        ring = self._by_key.get(key)
        return ring[-1] if ring else None

    def recent(self, limit: int = 50) -> tuple[Change, ...]:
        """The latest `limit` changes of all tuples, newest first."""
        return tuple(reversed(list(self._order)[-limit:]))

    def __len__(self) -> int:
        return len(self._order)
