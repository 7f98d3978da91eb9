"""/metrics in the text format 0.0.4 and OpenMetrics 1.0.0, byte for byte what
prometheus_client renders from `families.families()`, made without its per-sample objects:
each tuple's text kept deflated between scrapes and rebuilt only where its inputs changed
(`Exposition`; docs/exposition.md says why it exists and what it holds)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    choose_encoder,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from exporter import __version__
from exporter.config.matrix import RESOLVER_CHECK_SERVICE
from exporter.config.model import PhaseHistograms
from exporter.exposition.deflate import Column, Deflated, Row, Run, deflate
from exporter.exposition.families import (
    ReloadStatus,
    global_families,
    interference_hop,
    le_text,
    tuple_families,
)
from exporter.exposition.store import Series, Snapshot
from exporter.model.judgement import VERDICTS, Finding
from exporter.model.observation import RESULT_SUCCESS, EndpointKey, Phase, TupleKey
from exporter.model.stats import Histogram, SchedulerStats

Encoder = Callable[[Any], bytes]


@dataclass(frozen=True, slots=True)
class Format:
    """An exposition format as prometheus_client chooses it from an Accept header: its
    renderer and the Content-Type it is served with."""

    encoder: Encoder
    content_type: str

    @property
    def openmetrics(self) -> bool:
        return self.content_type.startswith("application/openmetrics-text")


TEXT = Format(generate_latest, CONTENT_TYPE_PLAIN_0_0_4)
_OPENMETRICS_1 = "application/openmetrics-text; version=1.0.0;"


def negotiate(accept: str) -> tuple[Format, bool]:
    """prometheus_client's choice of format for an Accept header, and whether `Exposition`
    renders that format itself: the text format 0.0.4 and OpenMetrics 1.0.0, the one a
    Prometheus server asks for first. Their lines per sample are the same for this exporter's
    names; only the family headers differ, and OpenMetrics ends with `# EOF`."""
    encoder, content_type = choose_encoder(accept)
    chosen = Format(encoder, content_type)
    return chosen, content_type == CONTENT_TYPE_PLAIN_0_0_4 or content_type.startswith(
        _OPENMETRICS_1
    )


class _Fixed:
    """A collector over given families, for prometheus_client's `generate_latest`."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def _escape(value: str) -> str:
    """A label value as the text format writes it (prometheus_client's escaping)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class _KeyText:
    """The label text of one tuple, in the pieces that the lines of every per-tuple family are
    composed from. Labels are written sorted by name, and the names a family adds (`le`,
    `phase`, `result`, `verdict`) fall between fixed ones: endpoint, family, [le], network,
    [phase], resolver, [result], service, [verdict]. Kept small (a few hundred bytes per
    tuple): at 10,000 tuples every kept string counts."""

    __slots__ = ("base", "ef", "n", "r", "s")

    def __init__(self, key: TupleKey) -> None:
        # Interned: the same endpoint, network, resolver or service is in many tuples.
        self.ef = sys.intern(f'endpoint="{_escape(key.endpoint)}",family="{key.family}"')
        self.n = sys.intern(f'network="{_escape(key.network)}"')
        self.r = sys.intern(f'resolver="{_escape(key.resolver)}"')
        self.s = sys.intern(f'service="{_escape(key.service)}"')
        self.base = f"{{{self.ef},{self.n},{self.r},{self.s}}} "

    def with_phase(self, phase: Phase) -> str:
        return f'{{{self.ef},{self.n},phase="{phase.value}",{self.r},{self.s}}} '

    def with_result(self, result: str) -> str:
        return f'{{{self.ef},{self.n},{self.r},result="{_escape(result)}",{self.s}}} '

    def with_verdict(self, verdict: str) -> str:
        return f'{{{self.ef},{self.n},{self.r},{self.s},verdict="{verdict}"}} '


_TUPLE_FAMILIES = 11  # len(tuple_families().all())
_PHASE_HIST_COLUMN = 2  # tuple_families().all().index(phase_hist)
#: A tuple's text in one family: kept deflated (exposition/deflate.py); None when it has none.
_Piece = Deflated | None


def _piece(text: str) -> _Piece:
    return deflate(text.encode()) if text else None


#: The columns (per-tuple families, `tuple_families().all()` order) of each part of a
#: tuple's text: from the last observation, from the histograms and counts, from the finding.
_OBS_COLUMNS = (0, 1, 4, 5, 8, 9, 10)
_SERIES_COLUMNS = (2, 3)
_FINDING_COLUMNS = (6, 7)
#: A part of a tuple's text that changed: (its column, its new piece).
_Change = tuple[int, _Piece]
#: The pieces of a tuple with no text yet.
_NO_ROW = Row([None] * _TUPLE_FAMILIES)


class _TupleText:
    """What one tuple's text was last rendered from, part by part (the last observation, the
    histograms and counters, the finding's verdict): each `update_*` renders only the parts
    whose input changed and returns them, for the columns to store (the text itself is kept
    there, not here). `unplaced`: its pieces while it has no place in the columns yet (a key
    they were not laid out for: not in the loaded matrix, or new since)."""

    __slots__ = ("finding", "key", "obs", "phases", "results", "unplaced")

    def __init__(self, key: _KeyText) -> None:
        self.key = key
        self.obs: object = _NOTHING
        self.phases: object = _NOTHING
        self.results: object = _NOTHING
        self.finding: object = _NOTHING
        self.unplaced: Row | None = None

    def update(self, series: Series, finding: Finding | None) -> list[_Change]:
        return self.update_counts(series) + self.update_finding(finding)

    def update_counts(self, series: Series) -> list[_Change]:
        """The parts from the last observation and the counts that changed."""
        k = self.key
        obs = None if series.kept is None else series.kept.bare
        changes: list[_Change] = []
        if obs is not self.obs:
            self.obs = obs
            if obs is None:
                changes += [(column, None) for column in _OBS_COLUMNS]
            else:
                cert = obs.cert_not_after
                rate = obs.throughput.bytes_per_second if obs.throughput is not None else None
                rtt = obs.tcp_rtt
                hop = interference_hop(obs)
                pieces = (
                    _piece(f"messaging_probe_success{k.base}{_go(1.0 if obs.success else 0.0)}\n"),
                    _piece(
                        "".join(
                            f"messaging_probe_duration_seconds{k.with_phase(phase)}{_go(seconds)}\n"
                            for phase, seconds in obs.phases.items()
                        )
                    ),
                    _piece(f"messaging_probe_timestamp_seconds{k.base}{_go(obs.finished)}\n"),
                    None
                    if cert is None
                    else _piece(
                        f"messaging_tls_cert_not_after_timestamp_seconds{k.base}{_go(cert)}\n"
                    ),
                    None
                    if rate is None
                    else _piece(
                        f"messaging_probe_throughput_bytes_per_second{k.base}{_go(rate)}\n"
                    ),
                    None
                    if rtt is None
                    else _piece(f"messaging_probe_tcp_rtt_seconds{k.base}{_go(rtt)}\n"),
                    None
                    if hop is None
                    else _piece(f"messaging_probe_interference_hops{k.base}{_go(float(hop))}\n"),
                )
                changes += zip(_OBS_COLUMNS, pieces, strict=True)
        # Replaced by each probe; not by an annotation, which replaces the series.
        if series.phases is not self.phases or series.results is not self.results:
            self.phases, self.results = series.phases, series.results
            hist_text = _histogram_text(series.phases, k.ef, k.n, f"{k.r},{k.s}")
            probe_lines: list[str] = []
            if series.results or obs is not None:
                results = dict(series.results)
                results.setdefault(RESULT_SUCCESS, 0)
                for result in sorted(results, key=lambda r: (r != RESULT_SUCCESS, r)):
                    labels = k.with_result(result)
                    probe_lines.append(f"messaging_probes_total{labels}{_count(results[result])}\n")
            pair = (_piece(hist_text), _piece("".join(probe_lines)))
            changes += zip(_SERIES_COLUMNS, pair, strict=True)
        return changes

    def update_finding(self, finding: Finding | None) -> list[_Change]:
        """The parts from the round's finding, if they changed."""
        k = self.key
        # A round makes a new finding for every tuple: its text changes only with these two.
        shown = None if finding is None else (finding.verdict, finding.blocked)
        if shown == self.finding:
            return []
        self.finding = shown
        if finding is None:
            return [(column, None) for column in _FINDING_COLUMNS]
        pair = (
            _piece(
                "".join(
                    f"messaging_probe_verdict{k.with_verdict(value.value)}"
                    f"{'1.0' if value is finding.verdict else '0.0'}\n"
                    for value in VERDICTS
                )
            ),
            _piece(f"messaging_probe_blocked{k.base}{'1.0' if finding.blocked else '0.0'}\n"),
        )
        return list(zip(_FINDING_COLUMNS, pair, strict=True))


class _EndpointText:
    """The text of the phase histograms of one endpoint and network, kept deflated until its
    histograms change (`PhaseHistograms.ENDPOINT`). Labels sorted by name: endpoint, [le],
    network, [phase], service."""

    __slots__ = ("e", "n", "phases", "piece", "s")

    def __init__(self, key: EndpointKey) -> None:
        self.e = f'endpoint="{_escape(key.endpoint)}"'
        self.n = f'network="{_escape(key.network)}"'
        self.s = f'service="{_escape(key.service)}"'
        self.phases: object = _NOTHING
        self.piece: _Piece = None

    def update(self, phases: Mapping[Phase, Histogram]) -> None:
        if phases is not self.phases:  # replaced by each probe of its tuples
            self.phases = phases
            self.piece = _piece(_histogram_text(phases, self.e, self.n, self.s))


def _histogram_text(
    phases: Mapping[Phase, Histogram], before_le: str, before_phase: str, after_phase: str
) -> str:
    """The lines of `messaging_probe_phase_seconds` for one set of labels, given as the label
    text that sorts before `le`, between `le` and `phase`, and after `phase`."""
    lines: list[str] = []
    for phase, hist in phases.items():
        head = f'messaging_probe_phase_seconds_bucket{{{before_le},le="'
        tail = f'",{before_phase},phase="{phase.value}",{after_phase}}} '
        running = 0
        for le, n in zip(_les(hist.bounds), hist.counts, strict=True):
            running += n
            lines.append(f"{head}{le}{tail}{_count(running)}\n")
        labels = f'{{{before_le},{before_phase},phase="{phase.value}",{after_phase}}} '
        lines.append(f"messaging_probe_phase_seconds_count{labels}{_count(running)}\n")
        lines.append(f"messaging_probe_phase_seconds_sum{labels}{_go(hist.sum)}\n")
    return "".join(lines)


_NOTHING = object()


def _go(value: float) -> str:
    """A sample value as prometheus_client writes it (Go's float formatting)."""
    return str(floatToGoString(float(value)))  # type: ignore[no-untyped-call]  # untyped upstream


def _count(n: int) -> str:
    """An integer count as `_go(float(n))` writes it, without the call below a million
    (where Go's formatting switches to an exponent)."""
    return f"{n}.0" if 0 <= n < 1_000_000 else _go(n)


_LES: dict[tuple[float, ...], tuple[str, ...]] = {}


def _les(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """The `le` texts of the bounds and +Inf (a cache of constants: bounds are few)."""
    les = _LES.get(bounds)
    if les is None:
        les = _LES[bounds] = tuple(le_text(b) for b in (*bounds, math.inf))
    return les


class Exposition:
    """A scrape in the text format (0.0.4) or OpenMetrics 1.0.0, byte for byte what
    prometheus_client renders from `families()`, made without its per-sample objects: the text
    of each tuple is kept between scrapes, deflated (exposition/deflate.py), and rebuilt only from
    the parts whose inputs changed (a new observation and counts, when the probe is recorded:
    `note`; a changed verdict, when a scrape sees a new round's judgement). Those inputs are
    immutable and replaced on change, so identity tells a change. Memory: about a seventh of
    what one scrape's text weighs.

    The pieces are kept by family, in key order (`_columns`, `deflate.Column`, which keeps
    them without a tuple each), so a scrape joins each family's blocks of pieces without
    visiting the tuples one by one, and combines again only the blocks with a tuple probed
    since the last scrape. The columns have a place for every key of the loaded matrix
    (`expect`) and of the store; a place with no text shows nothing. When the store's keys
    change (`Snapshot.generation`), the scrape brings every text up to date and, only if a
    key has no place, lays the columns out again. Not thread-safe; one per collector, used on
    the event loop."""

    def __init__(self) -> None:
        self._tuples: dict[TupleKey, _TupleText] = {}
        #: The endpoint histograms' texts, in key order likewise (a few hundred, not per tuple).
        self._endpoints: dict[EndpointKey, _EndpointText] = {}
        #: Each tuple's place in the columns, in key order (the store's): the keys `expect()`
        #: was given and the store's, as of the last scrape that made room for them.
        self._index: dict[TupleKey, int] = {}
        self._expected: frozenset[TupleKey] = frozenset()
        #: Per per-tuple family (`tuple_families().all()` order): each tuple's piece at its
        #: place (None when it has no lines there now, or no text).
        self._columns: list[Column] = [Column(()) for _ in range(_TUPLE_FAMILIES)]
        #: The store generation the texts were brought up to date with; -1: at the next scrape.
        self._generation = -1
        #: The judgement whose findings the kept text shows.
        self._judgement: object = _NOTHING
        self._networks: set[str] = set()
        #: (content type, phase histograms) -> the header lines of each per-tuple family.
        self._headers: dict[tuple[str, PhaseHistograms], list[Run]] = {}

    def expect(self, keys: Iterable[TupleKey]) -> None:
        """Make a place in the columns for each of `keys` (the loaded matrix's tuples) before
        their first probe, so each probe's pieces go straight to it. Otherwise every tuple
        new since a start would wait with its pieces until a scrape laid the columns out again,
        holding the text twice then (~15 MB at 10,000 tuples, kept by the heap as its
        high-water mark) and taking ~0.3 s of that scrape."""
        self._expected = frozenset(k for k in keys if k.service != RESOLVER_CHECK_SERVICE)
        self._lay_out(self._expected | self._tuples.keys())

    def note(
        self, series: Series, endpoint_phases: Mapping[Phase, Histogram] | None = None
    ) -> None:
        """Bring the tuple's text up to date with its series, and the text of its endpoint's
        histograms with `endpoint_phases` when they are kept per endpoint, now rather than at
        the next scrape (the finding's part waits for the scrape: a round changes few
        verdicts)."""
        key = series.key
        if key.service == RESOLVER_CHECK_SERVICE:
            return
        text = self._tuples.get(key)
        if text is None:
            text = self._tuples[key] = _TupleText(_KeyText(key))
            if key not in self._index:  # not expected: the next scrape makes it a place
                text.unplaced = _NO_ROW
        self._store(key, text, text.update_counts(series))
        if endpoint_phases is not None:
            endpoint = EndpointKey.of(key)
            kept = self._endpoints.get(endpoint)
            if kept is None:  # put in key order by the next scrape (the generation changed)
                kept = self._endpoints[endpoint] = _EndpointText(endpoint)
            kept.update(endpoint_phases)

    def forget(self, key: TupleKey) -> None:
        """Drop the tuple's kept text and clear its place: the next scrape renders it again."""
        text = self._tuples.pop(key, None)
        if text is not None and text.unplaced is None:
            at = self._index[key]
            for column in self._columns:
                column[at] = None
        self._generation = -1

    def _store(self, key: TupleKey, text: _TupleText, changes: list[_Change]) -> None:
        """Store the tuple's changed pieces at its place in the columns, or with the tuple
        while it has none."""
        if text.unplaced is not None:
            text.unplaced = text.unplaced.replaced(changes)
            return
        index = self._index[key]
        for column, piece in changes:
            self._columns[column][index] = piece

    def runs(
        self,
        snapshot: Snapshot,
        stats: SchedulerStats,
        reload: ReloadStatus,
        *,
        exposition_format: Format = TEXT,
        version: str = __version__,
        process: Sequence[Metric] = (),
    ) -> list[Run]:
        """The scrape's text as runs of deflated pieces, in order (`deflate.gzip_member` makes
        the response of them, `deflate.inflate` the text)."""
        if snapshot.generation != self._generation:
            self._refresh(snapshot)
        elif snapshot.judgement is not self._judgement:
            findings = snapshot.judgement.findings
            for key, text in self._tuples.items():
                changes = text.update_finding(findings.get(key))
                if changes:
                    self._store(key, text, changes)
            self._judgement = snapshot.judgement
        runs: list[Run] = []
        headers = self._header_lines(exposition_format, snapshot.phase_histograms)
        for i, (header, column) in enumerate(zip(headers, self._columns, strict=True)):
            runs.append(header)
            runs += column.runs()
            if i == _PHASE_HIST_COLUMN and self._endpoints:
                runs.append(Run.of(text.piece for text in self._endpoints.values()))
        rest = [
            *global_families(snapshot, stats, reload, self._networks, version=version),
            *process,
        ]
        runs.append(Run.of([deflate(exposition_format.encoder(_Fixed(rest)))]))
        return runs

    def _refresh(self, snapshot: Snapshot) -> None:
        """Every kept text brought up to date with the snapshot (each part only where its
        input changed), a place made for the store's keys that have none (the columns laid
        out again), the texts of tuples and endpoints gone from the store forgotten."""
        findings = snapshot.judgement.findings
        series = {k: s for k, s in snapshot.series.items() if k.service != RESOLVER_CHECK_SERVICE}
        for key in [key for key in self._tuples if key not in series]:
            self.forget(key)
        if any(key not in self._index for key in series):
            self._lay_out(series.keys() | self._expected)
        for key, kept in series.items():
            text = self._tuples.get(key)
            if text is None:  # rendered whole by its first update
                text = self._tuples[key] = _TupleText(_KeyText(key))
            self._store(key, text, text.update(kept, findings.get(key)))
        endpoints: dict[EndpointKey, _EndpointText] = {}
        for endpoint, phases in snapshot.endpoint_phases.items():
            if endpoint.service == RESOLVER_CHECK_SERVICE:
                continue
            kept_endpoint = self._endpoints.get(endpoint) or _EndpointText(endpoint)
            kept_endpoint.update(phases)
            endpoints[endpoint] = kept_endpoint
        self._endpoints = endpoints
        self._networks = {key.network for key in series}
        self._generation = snapshot.generation
        self._judgement = snapshot.judgement

    def _lay_out(self, keys: Iterable[TupleKey]) -> None:
        """Columns with a place for each of `keys`, in key order, each kept text's pieces
        moved to its place (taken a block at a time: never a piece object for every tuple);
        the texts of other keys are forgotten."""
        order = sorted(keys)
        tuples, index, columns = self._tuples, self._index, self._columns

        def pieces(column: int) -> Iterator[_Piece]:
            for key in order:
                text = tuples.get(key)
                if text is None:
                    yield None
                elif text.unplaced is not None:
                    yield text.unplaced.piece(column)
                else:
                    yield columns[column].piece(index[key])

        self._columns = [Column(pieces(column)) for column in range(_TUPLE_FAMILIES)]
        self._index = {key: i for i, key in enumerate(order)}
        self._tuples = {key: text for key in order if (text := tuples.get(key)) is not None}
        for text in self._tuples.values():
            text.unplaced = None

    def _header_lines(
        self, exposition_format: Format, phase_histograms: PhaseHistograms
    ) -> list[Run]:
        cache_key = (exposition_format.content_type, phase_histograms)
        headers = self._headers.get(cache_key)
        if headers is None:
            encode = exposition_format.encoder
            texts = [encode(_Fixed([f])) for f in tuple_families(phase_histograms).all()]
            if exposition_format.openmetrics:  # one `# EOF`: the one after the global families
                texts = [h.removesuffix(_EOF) for h in texts]
            headers = self._headers[cache_key] = [Run.of([deflate(t)]) for t in texts]
        return headers


_EOF = b"# EOF\n"
