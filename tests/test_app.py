"""The App: signals, reload and stop, with fake probers on a fake clock."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import signal
from pathlib import Path

import aiohttp
import pytest

from exporter.config.loader import load
from exporter.config.matrix import Target
from exporter.config.model import Config
from exporter.model.judgement import Verdict
from exporter.model.observation import ErrorKind
from exporter.runtime.app import App, Settings
from exporter.runtime.garbage import FULL_PASS_INTERVAL
from exporter.runtime.heap import HEAP_TRIM_INTERVAL
from exporter.web.render import iso_time
from tests.conftest import CONFIG_YAML, AppFactory
from tests.fakes.clock import FakeClock
from tests.fakes.prober import FakeProber, factory

TWO_TUPLES = CONFIG_YAML.replace("      dc1: {address: 127.0.0.1, port: 443, checks: [tcp]}\n", "")


async def test_sighup_reloads_and_sigterm_stops(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_YAML)
    loads = asyncio.Queue[str]()

    def load_config(p: str) -> Config:
        # The rest of a reload runs without yielding, so it is done when the queue wakes us.
        try:
            return load(p)
        finally:
            loads.put_nowait(p)

    make, probers = factory(clock=clock, duration=lambda t: 0.5)
    trims: list[float] = []

    def trim() -> bool:
        trims.append(clock.monotonic())
        return True

    app = App(
        settings=Settings(config_file=str(path), listen_host="127.0.0.1", listen_port=0),
        config=load(path),
        prober_factory=make,
        load_config=load_config,
        clock=clock,
        rng=random.Random(3),
        heap_trim=trim,
    )
    thresholds = gc.get_threshold()
    run = asyncio.create_task(app.run(install_signal_handlers=True))
    await app.started.wait()
    loop = asyncio.get_running_loop()
    await clock.advance(60.0)
    assert app.scheduler.ready
    assert len(trims) == 1  # free heap memory given back once a minute (exporter/runtime/heap.py)
    # While running, full passes come from the app's own task (exporter/runtime/garbage.py).
    assert gc.get_threshold()[2] > thresholds[2]
    passes = gc.get_stats()[2]["collections"]
    await clock.advance(FULL_PASS_INTERVAL)
    assert gc.get_stats()[2]["collections"] > passes

    path.write_text(TWO_TUPLES)
    os.kill(os.getpid(), signal.SIGHUP)
    assert await loads.get() == str(path)
    assert len(app.scheduler.targets()) == 2
    assert app.reload_status().successful

    path.write_text("nonsense: [")
    os.kill(os.getpid(), signal.SIGHUP)
    assert await loads.get() == str(path)
    assert not app.reload_status().successful
    assert len(app.scheduler.targets()) == 2

    port = app.addresses[0][1]
    os.kill(os.getpid(), signal.SIGTERM)
    assert await run == 0
    assert gc.get_threshold() == thresholds
    stopped = len(trims)
    await clock.advance(HEAP_TRIM_INTERVAL)
    assert len(trims) == stopped  # the task ended with run()
    assert all(p.closed for p in probers)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        assert not loop.remove_signal_handler(sig)  # run() removed its handlers
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{port}/-/healthy")


async def test_reload_closes_the_old_prober_after_its_probes(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    app, probers = make_app(duration=lambda t: 4.0)
    await app.start()
    try:
        first_slot = min(app.scheduler.offsets().values())
        await clock.advance(first_slot + 1.0)
        old = probers[0]
        assert old.running == 1
        outcome = await app.reload()
        assert outcome.ok
        new = probers[1]
        assert app.scheduler.prober is new
        await clock.advance(2.0)
        assert not old.closed  # its probe is still running
        await clock.advance(1.5)
        assert old.closed
        assert old.cancelled == 0  # the probe in flight was left to finish
        assert not new.closed
    finally:
        await app.stop()
    assert new.closed


async def test_reload_keeps_running_when_the_prober_cannot_be_built(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_YAML)
    built: list[FakeProber] = []

    def make(config: Config) -> FakeProber:
        if built:
            raise OSError("no such CA file")
        built.append(FakeProber(clock=clock))
        return built[0]

    app = App(
        settings=Settings(config_file=str(path)),
        config=load(path),
        prober_factory=make,
        clock=clock,
    )
    outcome = await app.reload()
    assert not outcome.ok
    assert outcome.errors == (f"{path}: cannot build the prober: no such CA file",)
    assert not app.reload_status().successful
    assert app.scheduler.prober is built[0]
    await app.stop()


async def test_reload_errors_are_logged_line_by_line(
    make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app()
    (tmp_path / "config.yaml").write_text("interval: soon\ntimeout: never\nservices: {}\n")
    outcome = await app.reload()
    assert not outcome.ok
    assert len(outcome.errors) == 3
    logged = [
        getattr(r, "fields", {}).get("error") for r in caplog.records if r.msg == "config error"
    ]
    assert logged == list(outcome.errors)
    await app.stop()


async def test_a_reload_naming_a_network_the_host_lacks_keeps_the_running_config(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """The host check is part of loading: a typo in an interface name (or a VPN not up yet)
    is refused with the key path, and the running config stays."""
    app, _ = make_app()
    running = app.config
    (tmp_path / "config.yaml").write_text(
        CONFIG_YAML.replace("  direct: {}\n", "  direct: {}\n  wg0: {interface: mx-nosuch0}\n")
    )
    outcome = await app.reload()
    assert not outcome.ok
    assert outcome.errors == ('networks.wg0.interface: no such interface "mx-nosuch0"',)
    assert app.config is running
    assert not app.reload_status().successful
    await app.stop()


async def test_stop_cancels_probes_and_closes_the_prober(
    make_app: AppFactory, clock: FakeClock
) -> None:
    app, probers = make_app(CONFIG_YAML.replace("timeout: 5s", "timeout: 50s"), hang=lambda t: True)
    await app.start()
    await clock.advance(max(app.scheduler.offsets().values()) + 0.5)
    assert probers[0].running == 3
    await app.stop()
    assert probers[0].running == 0
    assert probers[0].cancelled == 3
    assert probers[0].closed
    await app.stop()  # idempotent


async def test_a_reload_changes_what_the_phase_histograms_cover(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    """`metrics.phase_histograms` from the config, at start and on reload: the scrape's
    histogram series follow it (labels without resolver and family per endpoint)."""
    app, _ = make_app(CONFIG_YAML)  # the default: per endpoint
    await app.start()
    try:
        url = f"http://127.0.0.1:{app.addresses[0][1]}/metrics"

        async def histogram_lines() -> list[str]:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                text = await response.text()
            return [
                line
                for line in text.splitlines()
                if line.startswith("messaging_probe_phase_seconds_count{")
            ]

        await clock.advance(60.0)
        assert app.scheduler.ready
        per_endpoint = await histogram_lines()
        assert 'messaging_probe_phase_seconds_count{endpoint="web",network="direct",' in "".join(
            per_endpoint
        )
        assert not any("resolver=" in line for line in per_endpoint)

        (tmp_path / "config.yaml").write_text(CONFIG_YAML + "metrics: {phase_histograms: tuple}\n")
        assert (await app.reload()).ok
        assert await histogram_lines() == []  # started again, under the new labels
        await clock.advance(60.0)
        per_tuple = await histogram_lines()
        assert per_tuple
        assert all('resolver="' in line and 'family="4"' in line for line in per_tuple)

        (tmp_path / "config.yaml").write_text(
            CONFIG_YAML + "metrics: {phase_histograms: sometimes}\n"
        )
        assert not (await app.reload()).ok  # a bad value keeps the running config
        assert await histogram_lines() == per_tuple
    finally:
        await app.stop()


#: A censor network beside a clean one, with a canary on each: telegram/web can be told
#: blocked (it connects on clean) from down.
BLOCKS_YAML = """\
interval: 60s
timeout: 5s
resolvers:
  local: {type: udp, address: 127.0.0.1, port: 5353}
networks:
  clean: {}
  censor: {}
canaries:
  example: {host: example.example, port: 443}
services:
  telegram:
    endpoints:
      web: {host: web.telegram.example, port: 443, checks: [dns, tcp, tls, http]}
  signal:
    endpoints:
      chat: {host: chat.signal.example, port: 443, checks: [dns, tcp, tls]}
"""


async def test_a_service_blocked_on_a_network_is_logged_exported_and_its_start_kept(
    make_app: AppFactory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Real rounds on the fake clock: telegram becomes blocked on censor (connections reset
    there, fine on clean), stays blocked through a shutdown of censor (which neither ends nor
    restarts the block), then is reachable again. The start is the first round that found
    it blocked; a log line says when it starts (with the method) and when it ends (with how
    long it lasted)."""
    caplog.set_level(logging.INFO, logger="exporter")
    world = {"block": False, "shutdown": False}

    def error(target: Target) -> ErrorKind | None:
        key = target.key
        if key.network != "censor":
            return None
        if world["shutdown"]:
            return ErrorKind.TIMEOUT  # everything, the canary too
        if world["block"] and key.service == "telegram":
            return ErrorKind.RESET
        return None

    app, _ = make_app(BLOCKS_YAML, error=error)
    await app.start()
    telegram = {"service": "telegram", "network": "censor"}

    async def next_round() -> None:
        rounds = app.scheduler.stats().rounds_total
        await clock.run_until(lambda: app.scheduler.stats().rounds_total > rounds, limit=120.0)

    def value(name: str, **labels: str) -> float | None:
        return app.registry.get_sample_value(name, labels)

    try:
        await next_round()
        assert value("messaging_service_blocked", **telegram) == 0.0
        assert value("messaging_service_blocked", service="signal", network="censor") == 0.0
        assert value("messaging_service_blocked", service="canary", network="censor") is None
        assert value("messaging_service_blocked_since_timestamp_seconds", **telegram) is None

        world["block"] = True
        await next_round()  # the round under way may have probed telegram before the block
        await next_round()
        snapshot = app.store.snapshot()
        assert snapshot.services["telegram", "censor"].methods == (Verdict.TCP_BLOCKED,)
        assert value("messaging_service_blocked", **telegram) == 1.0
        assert value("messaging_service_blocked_method", **telegram, method="tcp_blocked") == 1.0
        assert value("messaging_service_blocked_method", **telegram, method="tls_blocked") is None
        assert value("messaging_service_blocked", service="telegram", network="clean") == 0.0
        since = value("messaging_service_blocked_since_timestamp_seconds", **telegram)
        assert since is not None
        assert clock.time() - 120 < since <= clock.time()
        # the status API and page read the same snapshot
        url = f"http://127.0.0.1:{app.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/api/v1/status") as response:
                doc = await response.json()
            async with session.get(f"{url}/") as response:
                page = await response.text()
        [cell] = [c for c in doc["cells"] if (c["service"], c["network"]) == ("telegram", "censor")]
        assert (cell["blocked"], cell["methods"], cell["methods_text"]) == (
            True,
            ["tcp_blocked"],
            "IP blocking",
        )
        assert cell["blocked_since"] == iso_time(since)
        assert f'blocked: IP blocking since <time datetime="{iso_time(since)}">' in page

        await next_round()  # still blocked: the same start
        assert value("messaging_service_blocked_since_timestamp_seconds", **telegram) == since

        world["shutdown"] = True  # censor goes dark: nothing can be said of telegram there
        await next_round()
        await next_round()
        assert app.store.snapshot().judgement.network_up["censor"] is False
        assert value("messaging_service_blocked", **telegram) == 0.0
        assert value("messaging_service_blocked_since_timestamp_seconds", **telegram) is None

        world["shutdown"] = False  # back up, still censored: the block began before
        await next_round()
        await next_round()
        assert value("messaging_service_blocked", **telegram) == 1.0
        assert value("messaging_service_blocked_since_timestamp_seconds", **telegram) == since

        world["block"] = False
        await next_round()
        await next_round()
        ended = clock.time()
        assert value("messaging_service_blocked", **telegram) == 0.0
        assert value("messaging_service_blocked_method", **telegram, method="tcp_blocked") is None
        assert value("messaging_service_blocked_since_timestamp_seconds", **telegram) is None
    finally:
        await app.stop()

    lines = [
        (r.levelno, r.msg, getattr(r, "fields", {}))
        for r in caplog.records
        if r.msg.startswith("service ")
    ]
    assert [(level, msg) for level, msg, _ in lines] == [
        (logging.WARNING, "service blocked"),
        (logging.WARNING, "service no longer blocked"),
    ]
    started, over = (f for _, _, f in lines)
    assert started == {
        "service": "telegram",
        "network": "censor",
        "methods": "tcp_blocked",
        "since": iso_time(since),
    }
    assert over["service"] == "telegram"
    assert over["blocked_since"] == iso_time(since)
    assert 4 * 60 <= over["blocked_seconds"] <= ended - since  # the shutdown included
    judged = [r for r in caplog.records if r.msg == "round judged"]
    assert {getattr(r, "fields", {})["services_blocked"] for r in judged} == {0, 1}


async def test_a_failing_round_is_a_few_lines_at_info_not_one_per_probe(
    make_app: AppFactory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A dead uplink under many tuples: at info the log says what changed (the network went
    down) and the round's counts, a line each, however many tuples failed; each failure is
    at debug. Two rounds of 2 x 3 tuples failing on one network: no line per probe."""
    caplog.set_level(logging.DEBUG, logger="exporter")
    app, _ = make_app(
        BLOCKS_YAML,
        error=lambda t: ErrorKind.TIMEOUT if t.key.network == "censor" else None,
    )
    await app.start()
    try:
        for _ in range(2):
            rounds = app.scheduler.stats().rounds_total
            await clock.run_until(
                lambda rounds=rounds: app.scheduler.stats().rounds_total > rounds, limit=120.0
            )
    finally:
        await app.stop()
    failed = [r for r in caplog.records if r.msg == "probe failed"]
    assert len(failed) >= 6  # every censor tuple, each round: at debug
    assert {r.levelno for r in failed} == {logging.DEBUG}
    info = [r.msg for r in caplog.records if r.levelno >= logging.INFO]
    per_round = [
        m
        for m in info
        if m not in ("starting", "listening", "ready: every tuple was probed", "stopping")
    ]
    assert per_round.count("network down") == 1  # said once, when it happened
    assert per_round.count("round judged") >= 2
    assert set(per_round) <= {"network down", "round judged"}, info
