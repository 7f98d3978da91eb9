"""The running exporter: config, prober, scheduler, store, registry and web server wired up.

Injection points (tests use them; the CLI takes the defaults):
- `prober_factory(config) -> prober`: default builds `exporter.probes.probe.Prober`;
- `load_config(path) -> Config` raising `ConfigErrors`: default `exporter.config.loader.load`;
- `clock` and `rng` for the scheduler.

Reload (SIGHUP or POST /-/reload, one at a time): a bad config keeps the running one, sets
`config_last_reload_successful` to 0 and logs each error line; a good one builds a new
prober, swaps the scheduler's matrix, and closes the old prober once its in-flight probes end.

Stop (SIGTERM/SIGINT): cancel the scheduler and its probes, stop the web server, close the
probers; bounded by `STOP_TIMEOUT` seconds of real time whatever a prober does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import ssl
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from exporter import __version__
from exporter.config.loader import ConfigError, ConfigErrors, load
from exporter.config.matrix import expand
from exporter.config.model import Config
from exporter.config.web import WebConfig, ssl_context
from exporter.config.web import load as load_web_config
from exporter.exposition.collector import Collector, ReloadStatus, metrics_handler
from exporter.exposition.store import Store
from exporter.judge.changes import Changes
from exporter.judge.history import Blocks, Outages, Pages, ThroughputHistory
from exporter.judge.verdict import judge_round
from exporter.model.judgement import Cell, ServiceState
from exporter.model.observation import Observation
from exporter.probes.network import setup_problem
from exporter.runtime import garbage, heap
from exporter.runtime.clock import Clock, SystemClock
from exporter.runtime.logs import fields
from exporter.runtime.scheduler import ProberLike, Scheduler, safety_limit
from exporter.web.render import iso_time
from exporter.web.server import BasicAuth, ReloadOutcome, Site, WebServer, make_app

ProberFactory = Callable[[Config], ProberLike]
ConfigLoader = Callable[[str], Config]

#: Real seconds a stop may take, all steps together (SIGTERM must end the process promptly).
STOP_TIMEOUT = 4.5

#: Environment variable choosing the event loop: `asyncio` (the standard library's, the
#: default) or `uvloop` (when installed).
LOOP_ENV = "MESSAGING_EXPORTER_LOOP"

T = TypeVar("T")


def loop_factory(choice: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop to run on: asyncio's own unless `choice` (default: the
    `MESSAGING_EXPORTER_LOOP` variable) is `uvloop` and uvloop is installed. uvloop is not
    the default: it saved no measurable CPU per probe (docs/benchmarks.md), and the test
    suite runs on asyncio's loop."""
    if (choice or os.environ.get(LOOP_ENV, "asyncio")) == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop `loop_factory()` chooses."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def default_prober_factory(config: Config) -> ProberLike:
    """The real prober (imported here so that tests with a fake never load the probe stack)."""
    from exporter.probes.probe import Prober  # lazy: a fake prober never loads the network stack

    return Prober(config)


def default_load_config(path: str) -> Config:
    """The config at `path`, refused (`ConfigErrors`) when it is invalid or when one of its
    networks cannot be used on this host: a typo in an interface name is an error at once,
    never a shutdown paged at run time."""
    config = load(path)
    problems = setup_errors(config)
    if problems:
        raise ConfigErrors(problems)
    return config


def setup_errors(config: Config) -> list[ConfigError]:
    """One error per network whose namespace, interface or source address does not exist
    (`exporter.probes.network.setup_problem`), keyed as the config names it."""
    errors: list[ConfigError] = []
    for name, network in config.networks.items():
        problem = setup_problem(network)
        if problem is not None:
            errors.append(ConfigError(f"networks.{name}.{problem.key}", problem.message))
    return errors


def setup_problems(config: Config) -> dict[str, str]:
    """Per network that the host cannot provide now, the line saying why: what a round's
    judgement takes as `setup_problems`."""
    return {
        name: problem.line(name)
        for name, network in config.networks.items()
        if (problem := setup_problem(network)) is not None
    }


def error_lines(exc: ConfigErrors) -> tuple[str, ...]:
    """One line per config problem."""
    return tuple(str(e) for e in exc.errors) or (str(exc),)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What the command line decides for a running exporter."""

    config_file: str
    listen_host: str | None = None  # None: every interface
    listen_port: int = 10053
    enable_lifecycle: bool = False
    #: `--web.config.file`: TLS and basic auth (exporter.config.web), re-read on reload.
    web_config_file: str | None = None


def process_registry() -> CollectorRegistry:
    """prometheus_client's collectors of the process (`process_*`: CPU, memory, open files,
    start time), the interpreter (`python_info`) and its garbage collector (`python_gc_*`),
    on a registry of their own: the exporter's collector renders them after its families."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class App:
    """One exporter: build it with a loaded config, `start()`, and `stop()` (or `run()`)."""

    def __init__(
        self,
        *,
        settings: Settings,
        config: Config,
        prober_factory: ProberFactory = default_prober_factory,
        load_config: ConfigLoader = default_load_config,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        logger: logging.Logger | None = None,
        web_config: WebConfig | None = None,
        heap_trim: heap.Trim | None = None,
    ) -> None:
        """`web_config`: the loaded `settings.web_config_file` (default: read it here, which
        raises ConfigErrors on a bad file; no file: plain HTTP without authentication).
        `heap_trim`: what `run()` calls once a minute to give free heap memory back (default:
        glibc's `malloc_trim`, where there is one)."""
        self._settings = settings
        self._heap_trim = heap_trim if heap_trim is not None else heap.trimmer()
        if web_config is None and settings.web_config_file is not None:
            web_config = load_web_config(settings.web_config_file)
        self.web_config = web_config if web_config is not None else WebConfig()
        self.auth = BasicAuth(self.web_config.basic_auth_users)
        self._ssl: ssl.SSLContext | None = (
            ssl_context(self.web_config) if self.web_config.tls is not None else None
        )
        self._prober_factory = prober_factory
        self._load_config = load_config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._log = logger or logging.getLogger("exporter.runtime.app")
        self.store = Store(phase_histograms=config.metrics.phase_histograms)
        #: State across rounds, kept outside the pure judgement (exporter.judge.history).
        self.throughput_history = ThroughputHistory()
        self.pages = Pages()
        #: Recent verdict changes for the status page (trimmed to the store's tuples).
        self.changes = Changes()
        self.outages = Outages()
        #: Since when each service is blocked on each network (logged when it starts and ends).
        self.blocks = Blocks()
        #: Networks judged unusable as configured in the last round, with why.
        self._setup: dict[str, str] = {}
        self.scheduler = Scheduler(
            config=config,
            targets=expand(config),
            prober=prober_factory(config),
            store=self.store,
            clock=self._clock,
            rng=rng if rng is not None else random.Random(),
            on_round=self._judge,
        )
        self._reload_status = ReloadStatus(
            successful=True, last_success_timestamp=self._clock.time()
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = Collector(
            store=self.store,
            scheduler_stats=self.scheduler.stats,
            reload_status=self.reload_status,
            process=(process_registry(),),
        )
        self._collector.expect(target.key for target in self.scheduler.targets())
        self.registry.register(self._collector)
        self.web_app = make_app(self._site())
        self._web = WebServer(self.web_app)
        self._reload_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._reloads: set[asyncio.Task[ReloadOutcome]] = set()
        self._old_probers: list[ProberLike] = []
        self._scheduler_task: asyncio.Task[None] | None = None
        self._stop_requested = asyncio.Event()
        #: Set once `start()` has the web server listening (and `run()` its signal handlers).
        self.started = asyncio.Event()
        self.addresses: list[tuple[str, int]] = []

    def _site(self) -> Site:
        """What the web endpoints serve, read from this app at each request."""
        return Site(
            registry=self.registry,
            store=self.store,
            ready=lambda: self.scheduler.ready,
            target=self.scheduler.target,
            target_count=lambda: len(self.scheduler.targets()),
            reload=self.reload,
            enable_lifecycle=self._settings.enable_lifecycle,
            version=__version__,
            auth=self.auth,
            metrics=metrics_handler(self._collector, self.registry),
            changes=self.changes,
            now=self._clock.time,
        )

    @property
    def config(self) -> Config:
        return self.scheduler.config

    def reload_status(self) -> ReloadStatus:
        return self._reload_status

    # ---- lifecycle

    async def start(self) -> list[tuple[str, int]]:
        """Start probing and serving; returns the addresses the web server listens on."""
        self.addresses = await self._web.start(
            self._settings.listen_host, self._settings.listen_port, ssl_context=self._ssl
        )
        self._scheduler_task = asyncio.create_task(self.scheduler.run(), name="scheduler")
        for host, port in self.addresses:
            self._log.info(
                "listening",
                extra=fields(
                    address=host,
                    port=port,
                    tls=self._ssl is not None,
                    basic_auth=self.auth.enabled,
                ),
            )
        self.started.set()
        return self.addresses

    def request_stop(self) -> None:
        """Make `run()` return (what SIGTERM and SIGINT do)."""
        self._stop_requested.set()

    async def run(self, *, install_signal_handlers: bool = True) -> int:
        """Start, serve until `request_stop()` (SIGTERM/SIGINT), reload on SIGHUP, stop."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
                installed.append(sig)
            loop.add_signal_handler(signal.SIGHUP, self._reload_in_background)
            installed.append(signal.SIGHUP)
        housekeeping: set[asyncio.Task[None]] = set()
        try:
            with garbage.full_passes_off():
                await self.start()
                housekeeping.add(
                    asyncio.create_task(garbage.full_passes(self._clock), name="garbage collection")
                )
                trim = self._heap_trim
                if trim is not None:
                    housekeeping.add(
                        asyncio.create_task(heap.trims(self._clock, trim), name="heap trim")
                    )
                self._log.info(
                    "started",
                    extra=fields(version=__version__, tuples=len(self.scheduler.targets())),
                )
                await self._stop_requested.wait()
                self._log.info("stopping")
        finally:
            for task in housekeeping:
                task.cancel()
            if housekeeping:
                await asyncio.wait(housekeeping)
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.stop()
        return 0

    async def stop(self) -> None:
        """Cancel probing, stop serving, close probers; at most STOP_TIMEOUT real seconds."""
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._stop()
        except TimeoutError:
            self._log.error("stop timed out; some probes did not end when cancelled")

    async def _stop(self) -> None:
        task, self._scheduler_task = self._scheduler_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self._web.stop()
        background: list[asyncio.Task[None] | asyncio.Task[ReloadOutcome]] = [
            *self._reloads,
            *self._retiring,
        ]
        for t in background:
            t.cancel()
        if background:
            await asyncio.wait(background)
        for prober in [*self._old_probers, self.scheduler.prober]:
            await self._close_prober(prober, wait=False)
        self._old_probers.clear()

    # ---- reload

    def _reload_in_background(self) -> None:
        task = asyncio.create_task(self.reload(), name="reload")
        self._reloads.add(task)  # keep a reference until it ends; the outcome is logged
        task.add_done_callback(self._reloads.discard)

    def _judge(self) -> None:
        """After each round: judge every tuple against the others of the round."""
        snapshot = self.store.snapshot()
        lasts = (s.judged for s in snapshot.series.values())  # without log lines
        observations = [obs for obs in lasts if obs is not None]
        config = self.scheduler.config
        history = self.throughput_history
        judgement = judge_round(
            config,
            observations,
            history.baselines(observations),
            setup_problems(config),
            self.pages.references(observations),
        )
        throttling = config.throttling
        history.record(observations, throttling.baseline_rounds, throttling.min_bytes_per_second)
        self.pages.record(observations, judgement.findings)
        self.store.set_judgement(judgement)
        self.changes.retain(snapshot.series.keys())  # a reload removed the others
        self.changes.record(judgement.findings, self._clock.time())
        self._track_outages(judgement.network_up)
        self._track_setup(judgement.network_setup)
        self._track_blocks(self.store.services)
        verdicts = Counter(f.verdict.value for f in judgement.findings.values())
        self._log.info(
            "round judged",
            extra=fields(
                tuples=len(judgement.findings),
                blocked=sum(1 for f in judgement.findings.values() if f.blocked),
                networks_down=sum(1 for up in judgement.network_up.values() if not up),
                networks_setup_error=len(judgement.network_setup),
                services_blocked=sum(1 for s in self.store.services.values() if s.blocked),
                **{f"verdict_{name}": count for name, count in sorted(verdicts.items())},
            ),
        )

    def _track_setup(self, network_setup: Mapping[str, str]) -> None:
        """Say when a network becomes unusable as configured (a VPN interface or namespace
        gone) and when it is usable again, once each, with the cause."""
        for network, why in sorted(network_setup.items()):
            if self._setup.get(network) != why:
                self._log.warning("network set-up error", extra=fields(network=network, error=why))
        for network in sorted(set(self._setup) - set(network_setup)):
            self._log.warning("network set-up error cleared", extra=fields(network=network))
        self._setup = dict(network_setup)

    def _track_outages(self, network_up: Mapping[str, bool]) -> None:
        """Keep since when each network is down, and say so when one goes down or comes
        back: a shutdown is never silent."""
        now = self._clock.time()
        for change in self.outages.update(network_up, now):
            if change.up:
                self._log.warning(
                    "network back up",
                    extra=fields(
                        network=change.network,
                        down_since=iso_time(change.down_since),
                        down_seconds=round(change.down_seconds, 3),
                    ),
                )
            else:
                self._log.warning(
                    "network down",
                    extra=fields(
                        network=change.network,
                        since=iso_time(change.down_since),
                        reason="every canary failed (without canaries: every probe)",
                    ),
                )
        self.store.set_network_down_since(self.outages.down_since)

    def _track_blocks(self, states: Mapping[Cell, ServiceState]) -> None:
        """Keep since when each service is blocked on each network, and say so when a block
        starts (with its methods) and when it ends (with how long it lasted): a censorship
        event is never silent. A round that can say nothing of the service (its network is
        down or unusable) neither starts nor ends one (exporter.judge.history.Blocks)."""
        for change in self.blocks.update(states, self._clock.time()):
            if change.blocked:
                self._log.warning(
                    "service blocked",
                    extra=fields(
                        service=change.service,
                        network=change.network,
                        methods=",".join(m.value for m in change.methods),
                        since=iso_time(change.since),
                    ),
                )
            else:
                self._log.warning(
                    "service no longer blocked",
                    extra=fields(
                        service=change.service,
                        network=change.network,
                        blocked_since=iso_time(change.since),
                        blocked_seconds=round(change.blocked_seconds, 3),
                    ),
                )
        self.store.set_service_blocked_since(self.blocks.blocked_since(states))

    async def reload(self) -> ReloadOutcome:
        """Load the config file again and apply it, or keep the running one."""
        async with self._reload_lock:
            path = self._settings.config_file
            web_config, web_errors = self._reload_web_config()
            try:
                config = self._load_config(path)
                if web_errors:
                    return self._reload_failed(web_errors)
                prober = self._prober_factory(config)
            except ConfigErrors as exc:
                return self._reload_failed(error_lines(exc) + web_errors)
            except Exception as exc:  # a prober that cannot be built: keep the running one
                return self._reload_failed((f"{path}: cannot build the prober: {exc}",))
            if web_config is not None:
                self._apply_web_config(web_config)
            old = self.scheduler.prober
            self.store.set_phase_histograms(config.metrics.phase_histograms)
            before = {t.key: t for t in self.scheduler.targets()}
            targets = expand(config)
            changed = [t.key for t in targets if before.get(t.key, t) != t]
            self.throughput_history.forget(changed, self._clock.time())
            self.pages.forget(changed, self._clock.time())
            self.scheduler.update(config, targets, prober=prober)
            self._collector.expect(target.key for target in self.scheduler.targets())
            self._old_probers.append(old)
            task = asyncio.create_task(self._retire(old), name="retire prober")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            self._reload_status = ReloadStatus(
                successful=True, last_success_timestamp=self._clock.time()
            )
            self._log.info(
                "config reloaded",
                extra=fields(file=path, tuples=len(self.scheduler.targets())),
            )
            return ReloadOutcome(ok=True)

    def _reload_web_config(self) -> tuple[WebConfig | None, tuple[str, ...]]:
        """The web config file read again (None without one), or its error lines."""
        path = self._settings.web_config_file
        if path is None:
            return None, ()
        try:
            web_config = load_web_config(path)
        except ConfigErrors as exc:
            return None, error_lines(exc)
        if (web_config.tls is None) != (self._ssl is None):
            return None, (
                f"{path}: tls_server_config cannot be "
                f"{'added' if self._ssl is None else 'removed'} on reload (the listener "
                "stays as it started): restart the exporter",
            )
        return web_config, ()

    def _apply_web_config(self, web_config: WebConfig) -> None:
        """New users at once; a new certificate for the next TLS handshakes (the context is
        updated in place: a client CA once loaded stays trusted until a restart)."""
        if self._ssl is not None:
            ssl_context(web_config, self._ssl)  # loaded once already by load(): cannot fail
        self.auth.users = web_config.basic_auth_users
        self.web_config = web_config

    def _reload_failed(self, lines: tuple[str, ...]) -> ReloadOutcome:
        self._reload_status = ReloadStatus(
            successful=False, last_success_timestamp=self._reload_status.last_success_timestamp
        )
        self._log.error(
            "config reload failed, keeping the running config",
            extra=fields(file=self._settings.config_file, errors=len(lines)),
        )
        for line in lines:
            self._log.error("config error", extra=fields(error=line))
        return ReloadOutcome(ok=False, errors=lines)

    async def _retire(self, prober: ProberLike) -> None:
        """Close a replaced prober once its probes ended (at most the scheduler's safety limit
        later: the timeout, a localisation after it, and the margin)."""
        await self._close_prober(prober, wait=True)
        with contextlib.suppress(ValueError):
            self._old_probers.remove(prober)

    async def _close_prober(self, prober: ProberLike, *, wait: bool) -> None:
        if wait:
            released = asyncio.create_task(self.scheduler.released(prober))
            timer = asyncio.create_task(self._clock.sleep(safety_limit(self.scheduler.config)))
            try:
                await asyncio.wait({released, timer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                released.cancel()
                timer.cancel()
                await asyncio.wait({released, timer})
        try:
            await prober.aclose()
        except Exception:
            self._log.exception("closing a prober failed")


async def probe_once(
    config: Config,
    *,
    prober_factory: ProberFactory = default_prober_factory,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> tuple[Observation, ...]:
    """Probe every tuple of `config` once, all at once under the concurrency limit (`once`)."""
    prober = prober_factory(config)
    scheduler = Scheduler(
        config=config,
        targets=expand(config),
        prober=prober,
        store=Store(),
        clock=clock if clock is not None else SystemClock(),
        rng=rng if rng is not None else random.Random(),
    )
    try:
        return await scheduler.probe_all()
    finally:
        await prober.aclose()
