"""The Prometheus view of the store and the scheduler: the custom collector registered on the
exporter's registry, and the /metrics handler.

`Collector` fetches a store snapshot, the scheduler's stats and the reload status per scrape
and renders them (`families.families()` for prometheus_client, `text.Exposition` for the
formats it renders itself), so a tuple dropped from the store vanishes from /metrics at the
next scrape, and a scrape never waits on a probe. Names, types and labels: docs/metrics.md.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from aiohttp import hdrs, web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.metrics_core import Metric

from exporter import __version__
from exporter.exposition.deflate import (
    Run,
    gzip_chunks,
    gzip_size,
    inflate,
    inflated,
    text_size,
)
from exporter.exposition.families import ReloadStatus, families
from exporter.exposition.store import Series, Store
from exporter.exposition.text import TEXT, Exposition, Format, negotiate
from exporter.model.observation import TupleKey
from exporter.model.stats import SchedulerStats

__all__ = ["Collector", "Exposition", "ReloadStatus", "metrics_handler", "negotiate"]


class ProcessLike(Protocol):
    """A prometheus_client collector of the process (`ProcessCollector`, ...)."""

    def collect(self) -> Iterable[Metric]: ...


class Collector:
    """A prometheus_client collector over a store, the scheduler's stats and reload status.

    Register it on your own `CollectorRegistry` (never the global one).
    """

    def __init__(
        self,
        *,
        store: Store,
        scheduler_stats: Callable[[], SchedulerStats],
        reload_status: Callable[[], ReloadStatus],
        version: str = __version__,
        logger: logging.Logger | None = None,
        process: Sequence[ProcessLike] = (),
    ) -> None:
        """`process`: collectors of the process itself (prometheus_client's process,
        platform and GC collectors, as every exporter built on it has), rendered after the
        exporter's own families by both renderers."""
        self._store = store
        self._process = tuple(process)
        self._log = logger or logging.getLogger("exporter.exposition.collector")
        self._stats = scheduler_stats
        self._reload = reload_status
        self._version = version
        self._exposition = Exposition()
        store.subscribe(self._recorded)

    def _recorded(self, series: Series) -> None:
        """Render the tuple's text as its probe finishes (~0.1 ms), so a scrape rebuilds
        nothing of the tuples probed since the last (at 10,000 tuples per minute and a scrape
        every 15 s, 2,500 of them: ~0.3 s on the loop, at once)."""
        try:
            self._exposition.note(series, self._store.endpoint_phases(series.key))
        except Exception:  # a rendering bug must not fail the probe that was recorded
            self._log.exception("rendering the metrics of %s failed", series.key)
            self._exposition.forget(series.key)

    def expect(self, keys: Iterable[TupleKey]) -> None:
        """The tuples of the loaded matrix, at each load: see `Exposition.expect`."""
        self._exposition.expect(keys)

    def runs(self, exposition_format: Format = TEXT) -> list[Run]:
        """A scrape as runs of deflated text, as the format's encoder would render
        `collect()` but without per-sample objects (see `Exposition`)."""
        return self._exposition.runs(
            self._store.snapshot(),
            self._stats(),
            self._reload(),
            exposition_format=exposition_format,
            version=self._version,
            process=self._process_families(),
        )

    def text(self, exposition_format: Format = TEXT) -> bytes:
        """The text of `runs()`."""
        return inflate(self.runs(exposition_format))

    def collect(self) -> Iterable[Metric]:
        return [
            *families(self._store.snapshot(), self._stats(), self._reload(), version=self._version),
            *self._process_families(),
        ]

    def _process_families(self) -> list[Metric]:
        return [family for collector in self._process for family in collector.collect()]

    def describe(self) -> Iterable[Metric]:
        """The families without samples: lets the registry know our names (`name[]=`)."""
        described: list[Metric] = []
        for family in self.collect():
            # A copy: the process collectors hand out the same family objects every time.
            empty = Metric(family.name, family.documentation, family.type, family.unit)
            described.append(empty)
        return described


# ---- the text exposition, fast


def metrics_handler(
    collector: Collector, registry: CollectorRegistry
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The /metrics handler: the text format or OpenMetrics, as the Accept header asks
    (`negotiate`), from `collector.runs()`.

    With gzip (what Prometheus asks for) the response is the kept deflated text, joined and
    written a chunk (~1 MiB) at a time: the loop spends on a scrape the time to rebuild the
    text of changed tuples and to join the rest, and runs probes between chunks. Without, the
    text is inflated a batch at a time as it is written. Requests it does not cover go to
    prometheus_client's own handler over `registry` (which must hold `collector`): formats
    `negotiate` leaves to prometheus_client and name filters (`name[]=`).
    """
    fallback = make_aiohttp_handler(registry)

    async def handler(request: web.Request) -> web.StreamResponse:
        accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
        chosen, fast = negotiate(accept)
        if request.query or not fast:
            return await fallback(request)
        runs = collector.runs(chosen)
        headers = {hdrs.CONTENT_TYPE: chosen.content_type, hdrs.VARY: "Accept, Accept-Encoding"}
        response = web.StreamResponse(headers=headers)
        if "gzip" in request.headers.get(hdrs.ACCEPT_ENCODING, "").lower():
            response.headers[hdrs.CONTENT_ENCODING] = "gzip"
            response.content_length = gzip_size(runs)
            await response.prepare(request)
            for chunk in gzip_chunks(runs):
                await response.write(chunk)
        else:
            response.content_length = text_size(runs)
            await response.prepare(request)
            for text in inflated(runs):
                await response.write(text)
        await response.write_eof()
        return response

    return handler
