"""The ring of verdict changes: only changes are kept, bounded per tuple and in total."""

from __future__ import annotations

from exporter.judge.changes import Changes
from exporter.model.judgement import Finding, Verdict
from exporter.model.observation import TupleKey


def _key(service: str = "telegram", network: str = "isp-b") -> TupleKey:
    return TupleKey(service=service, endpoint="web", network=network, resolver="local", family=4)


def _f(v: Verdict) -> Finding:
    return Finding(verdict=v, reason=f"because {v.value}")


def test_only_changes_are_recorded() -> None:
    ring = Changes()
    k = _key()
    assert len(ring.record({k: _f(Verdict.OK)}, 100.0)) == 1
    assert ring.record({k: _f(Verdict.OK)}, 110.0) == []
    [change] = ring.record({k: _f(Verdict.TLS_BLOCKED)}, 120.0)
    assert (change.previous, change.verdict, change.since) == (
        Verdict.OK,
        Verdict.TLS_BLOCKED,
        120.0,
    )
    assert ring.current(k) == change
    assert [c.verdict for c in ring.recent()] == [Verdict.TLS_BLOCKED, Verdict.OK]


def test_bounded_per_tuple_and_in_total() -> None:
    ring = Changes(per_tuple=3, total=5)
    a, b = _key("a"), _key("b")
    flip = (Verdict.OK, Verdict.DOWN)
    for i in range(10):
        ring.record({a: _f(flip[i % 2]), b: _f(flip[i % 2])}, float(i))
        assert len(ring) <= 5
        assert len(ring.of(a)) <= 3
        assert len(ring.of(b)) <= 3
    assert len(ring) == 5
    assert ring.recent(1)[0].since == 9.0


def test_retain_drops_removed_tuples() -> None:
    ring = Changes()
    a, b = _key("a"), _key("b")
    ring.record({a: _f(Verdict.OK), b: _f(Verdict.DOWN)}, 1.0)
    ring.retain([a])
    assert ring.of(b) == ()
    assert [c.key for c in ring.recent()] == [a]
