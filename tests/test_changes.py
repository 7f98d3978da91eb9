"""The ring of verdict changes: only changes are kept, bounded per tuple and in total; the
count of first verdicts stays true; the per-endpoint timelines of the status page's strips
keep a day, capped."""

from __future__ import annotations

from exporter.judge.changes import (
    MAX_SHIFTS,
    SEGMENT_SECONDS,
    SEGMENTS,
    Changes,
    compact,
    group_of,
    window_start,
)
from exporter.model.judgement import Finding, Verdict
from exporter.model.observation import TupleKey
from exporter.web import glance


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


def test_the_ring_bound_never_makes_a_verdict_first_again() -> None:
    """More tuples than the ring holds: a tuple whose first verdict left the ring is not
    judged "first" again next round, and the count of first verdicts stays true."""
    ring = Changes(total=50)
    keys = [_key(f"s{i}") for i in range(262)]
    ok = {k: _f(Verdict.OK) for k in keys}
    assert len(ring.record(ok, 100.0)) == 262
    assert len(ring) == 50
    assert ring.record(ok, 110.0) == []  # no verdict changed
    assert all(ring.current(k) is not None for k in keys)
    firsts = ring.firsts()
    assert (firsts.count, firsts.earliest, firsts.latest) == (262, 100.0, 100.0)
    [change] = ring.record({keys[0]: _f(Verdict.DOWN)}, 120.0)
    assert change.previous is Verdict.OK
    assert ring.recent_changes(10) == (change,)  # first verdicts are counted, not listed
    ring.retain(keys[:100])
    assert ring.firsts().count == 100


def test_a_timeline_per_endpoint_keeps_the_worst_state_of_its_tuples() -> None:
    ring = Changes()
    web, other = (
        _key(),
        TupleKey(service="telegram", endpoint="web", network="isp-b", resolver="google", family=4),
    )
    group = ("telegram", "web", "isp-b")
    ring.record({web: _f(Verdict.OK), other: _f(Verdict.OK)}, 1000.0)
    ring.record({web: _f(Verdict.TLS_BLOCKED), other: _f(Verdict.OK)}, 2000.0)
    ring.record({web: _f(Verdict.TCP_BLOCKED), other: _f(Verdict.OK)}, 3000.0)  # still blocked
    ring.record({web: _f(Verdict.OK), other: _f(Verdict.DOWN)}, 4000.0)
    assert ring.timeline(group) == ((1000.0, "reachable"), (2000.0, "blocked"), (4000.0, "down"))
    ring.retain([_key("other")])
    assert ring.timeline(group) == ()


def test_timelines_keep_the_last_day_and_the_state_it_starts_in() -> None:
    ring = Changes()
    k = _key()
    day = SEGMENT_SECONDS * SEGMENTS
    ring.record({k: _f(Verdict.OK)}, 0.0)
    ring.record({k: _f(Verdict.DOWN)}, 3600.0)
    ring.record({k: _f(Verdict.OK)}, 7200.0)
    now = 7200.0 + day
    ring.record({k: _f(Verdict.OK)}, now)
    assert window_start(now) <= now - day + SEGMENT_SECONDS
    # the down hour left the window; the change back to ok is the state it starts in
    assert ring.timeline(group_of(k)) == ((7200.0, "reachable"),)


def test_a_flapping_state_is_capped_and_its_segments_read_the_same() -> None:
    """A state flapping every 10 s for a day: the timeline stays under MAX_SHIFTS, and each
    segment's worst state and the state carried out of it are those of the full record."""
    ring = Changes()
    k = _key()
    full: list[tuple[float, str]] = []
    states = ("reachable", "blocked", "reachable", "down")
    verdicts = {"reachable": Verdict.OK, "blocked": Verdict.TLS_BLOCKED, "down": Verdict.DOWN}
    now = 0.0
    for i in range(8640):
        now = 10.0 * i
        state = states[i % 4] if (i // 500) % 2 else "reachable"  # flapping, then calm
        ring.record({k: _f(verdicts[state])}, now)
        if not full or full[-1][1] != state:
            full.append((now, state))
        assert len(ring.timeline(group_of(k))) <= MAX_SHIFTS
    kept = ring.timeline(group_of(k))
    assert kept[-1] == full[-1]
    assert glance.segments(kept, now) == glance.segments(full, now)
    assert compact(full) == compact(compact(full))
