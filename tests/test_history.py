"""State across rounds (exporter.judge.history) and what the App does with it after each round:
throughput baselines handed to the pure judgement, outages (`network_down` since when,
logged when a network goes down and when it comes back, exported while it lasts) and blocks
(a service blocked on a network since when; the App's side is in tests/test_app.py)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.loader import load
from exporter.judge.history import BlockChange, Blocks, Outages, Pages, ThroughputHistory
from exporter.judge.throttling import throttle_reason
from exporter.model.judgement import Finding, ServiceState, Verdict
from exporter.model.observation import ErrorKind, Observation, Phase
from tests.conftest import AppFactory
from tests.fakes.clock import FakeClock
from tests.fakes.observations import FILTER_PAGE, failed, key, ok, page, with_rate

MIB = 1024.0 * 1024.0
REPO = Path(__file__).resolve().parent.parent


def at(obs: Observation, finished: float) -> Observation:
    return dataclasses.replace(obs, started=finished - 0.1, finished=finished)


# --- ThroughputHistory -----------------------------------------------------------------------


def test_baselines_are_the_earlier_rates_oldest_first() -> None:
    history = ThroughputHistory()
    k = key("censor", "google")
    for i, rate in enumerate((1.0, 2.0, 3.0)):
        history.record([at(with_rate(ok(k), rate), 10.0 + i)], rounds=10)
    current = at(with_rate(ok(k), 4.0), 20.0)
    assert history.baselines([current]) == {k: (1.0, 2.0, 3.0)}


def test_only_tuples_that_measure_a_rate_are_kept() -> None:
    history = ThroughputHistory()
    plain, measured = key("censor", "google"), key("clean", "google")
    history.record([at(ok(plain), 10.0), at(with_rate(ok(measured), 5.0), 10.0)], rounds=10)
    assert len(history) == 1
    assert history.baselines([at(ok(plain), 11.0)]) == {}


def test_a_tuple_judged_again_without_a_new_probe_adds_nothing_nor_counts_itself() -> None:
    history = ThroughputHistory()
    k = key("censor", "google")
    first = at(with_rate(ok(k), 1.0), 10.0)
    second = at(with_rate(ok(k), 2.0), 11.0)
    history.record([first], rounds=10)
    history.record([second], rounds=10)
    history.record([second], rounds=10)  # skipped slot: the same observation again
    # judged once more: its own rate is no part of its baseline
    assert history.baselines([second]) == {k: (1.0,)}


def test_only_the_last_rounds_are_kept_and_failures_add_nothing() -> None:
    history = ThroughputHistory()
    k = key("censor", "google")
    for i in range(6):
        history.record([at(with_rate(ok(k), float(i)), 10.0 + i)], rounds=3)
    history.record([at(failed(k, Phase.CONNECT, ErrorKind.TIMEOUT), 30.0)], rounds=3)
    assert history.baselines([at(ok(k), 40.0)]) == {k: (3.0, 4.0, 5.0)}
    history.record([at(with_rate(ok(k), 9.0), 41.0)], rounds=2)  # a reload shortened it
    assert history.baselines([at(ok(k), 50.0)]) == {k: (5.0, 9.0)}
    history.record([at(with_rate(ok(k), 9.0), 51.0)], rounds=0)  # baselines turned off
    assert history.baselines([at(ok(k), 60.0)]) == {}


def test_a_lasting_throttle_below_the_floor_never_becomes_the_baseline() -> None:
    """One uplink, 2 MiB/s for 10 rounds, then held at 17 KiB/s for 20 (Russia's 2021
    rate): with the floor (config.yaml's 64 KiB/s) the throttle is still judged at the end;
    without one it has become the baseline and reads as nothing."""
    config = load(str(REPO / "config.yaml"))
    k = key("default", "cloudflare-doh", "signal", "updates")
    floors = {"shipped": config.throttling.min_bytes_per_second, "none": 0.0}
    still: dict[str, bool] = {}
    for name, floor in floors.items():
        history = ThroughputHistory()
        rates = [2.0 * 1024 * 1024] * 10 + [17.0 * 1024] * 20
        for i, rate in enumerate(rates):
            history.record([at(with_rate(ok(k), rate), 10.0 + i)], rounds=10, floor=floor)
        now = at(with_rate(ok(k), 17.0 * 1024), 100.0)
        still[name] = throttle_reason(now, [], history.baselines([now]), config) is not None
    assert floors["shipped"] == 64 * 1024
    assert still == {"shipped": True, "none": False}


def test_tuples_no_longer_probed_are_forgotten() -> None:
    history = ThroughputHistory()
    a, b = key("clean", "google"), key("censor", "google")
    history.record([at(with_rate(ok(a), 1.0), 10.0), at(with_rate(ok(b), 1.0), 10.0)], rounds=5)
    history.record([at(with_rate(ok(a), 2.0), 11.0)], rounds=5)
    assert set(history.baselines([at(ok(a), 20.0), at(ok(b), 20.0)])) == {a}


# --- Outages ---------------------------------------------------------------------------------


def test_down_since_is_the_first_round_of_the_outage_and_kept_while_it_lasts() -> None:
    outages = Outages()
    assert outages.update({"clean": True, "censor": True}, 100.0) == []
    [went] = outages.update({"clean": True, "censor": False}, 160.0)
    assert (went.network, went.up, went.at, went.down_since) == ("censor", False, 160.0, 160.0)
    assert outages.update({"clean": True, "censor": False}, 220.0) == []
    assert outages.down_since == {"censor": 160.0}
    [back] = outages.update({"clean": True, "censor": True}, 280.0)
    assert (back.network, back.up, back.down_since, back.down_seconds) == (
        "censor",
        True,
        160.0,
        120.0,
    )
    assert outages.down_since == {}


def test_a_network_removed_while_down_is_dropped_silently() -> None:
    outages = Outages()
    outages.update({"clean": True, "dead": False}, 100.0)
    assert outages.update({"clean": True}, 160.0) == []
    assert outages.down_since == {}


# --- Blocks ----------------------------------------------------------------------------------


def state(service: str, network: str, *methods: Verdict, known: bool = True) -> ServiceState:
    return ServiceState(service=service, network=network, methods=methods, known=known)


def states(*cells: ServiceState) -> dict[tuple[str, str], ServiceState]:
    return {(c.service, c.network): c for c in cells}


def test_a_block_starts_with_the_first_round_that_found_it_and_lasts_while_it_does() -> None:
    blocks = Blocks()
    assert blocks.update(states(state("telegram", "censor"), state("telegram", "clean")), 100) == []
    [went] = blocks.update(
        states(state("telegram", "censor", Verdict.TLS_BLOCKED), state("telegram", "clean")), 160
    )
    assert went == BlockChange(
        service="telegram",
        network="censor",
        blocked=True,
        methods=(Verdict.TLS_BLOCKED,),
        at=160.0,
        since=160.0,
    )
    # the methods may change while it lasts: the same block, nothing to say
    now = states(state("telegram", "censor", Verdict.DNS_TAMPERED, Verdict.TCP_BLOCKED))
    assert blocks.update(now, 220) == []
    assert blocks.since == {("telegram", "censor"): 160.0}
    assert blocks.blocked_since(now) == {("telegram", "censor"): 160.0}
    [over] = blocks.update(states(state("telegram", "censor")), 400)
    assert (over.blocked, over.methods, over.since, over.blocked_seconds) == (False, (), 160, 240)
    assert blocks.since == {}


def test_a_shutdown_neither_ends_nor_restarts_a_block() -> None:
    blocks = Blocks()
    blocks.update(states(state("telegram", "censor", Verdict.TCP_BLOCKED)), 100)
    dark = states(state("telegram", "censor", known=False))
    assert blocks.update(dark, 160) == []
    assert blocks.since == {("telegram", "censor"): 100.0}
    assert blocks.blocked_since(dark) == {}  # not blocked now: nothing exported
    again = states(state("telegram", "censor", Verdict.TCP_BLOCKED))
    assert blocks.update(again, 220) == []
    assert blocks.blocked_since(again) == {("telegram", "censor"): 100.0}
    # nor does a dark network start one
    assert Blocks().update(dark, 100) == []


def test_a_cell_no_longer_judged_is_dropped_silently() -> None:
    blocks = Blocks()
    blocks.update(states(state("telegram", "gone", Verdict.TCP_BLOCKED)), 100)
    assert blocks.update(states(state("telegram", "censor")), 160) == []
    assert blocks.since == {}


# --- the App after each round ----------------------------------------------------------------

CONFIG = """\
interval: 60s
timeout: 5s
resolvers:
  google: {type: udp, address: 127.0.0.1, port: 5353}
networks:
  clean: {}
  censor: {}
canaries:
  example: {host: example.lab, port: 443}
services:
  telegram:
    endpoints:
      web: {host: web.telegram.lab, port: 443, throughput: {path: /large}}
"""


def scrape(app: object) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(app.registry).decode()  # type: ignore[attr-defined]
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def round_of(network_ok: dict[str, bool], rates: dict[str, float], t: float) -> list[Observation]:
    """One round: per network the canary and telegram/web, ok (with a rate) or timing out."""
    out = []
    for network, up in network_ok.items():
        for k in (key(network, "google", "canary", "example"), key(network, "google")):
            obs = ok(k) if up else failed(k, Phase.CONNECT, ErrorKind.TIMEOUT)
            if up and k.service == "telegram":
                obs = with_rate(obs, rates[network])
            out.append(at(obs, t))
    return out


async def test_a_shutdown_is_logged_exported_and_never_blocked(
    make_app: AppFactory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter")
    app, _ = make_app(CONFIG)

    def judge(up: dict[str, bool]) -> None:
        t = clock.time()
        for obs in round_of(up, {"clean": 20 * MIB, "censor": 20 * MIB}, t):
            app.store.record(obs)
        app._judge()

    judge({"clean": True, "censor": True})
    metrics = scrape(app)
    assert "messaging_network_down_since_timestamp_seconds" not in metrics
    start = clock.time()

    await clock.advance(60)
    judge({"clean": True, "censor": False})
    metrics = scrape(app)
    assert metrics["messaging_network_down_since_timestamp_seconds"] == [
        ({"network": "censor"}, start + 60)
    ]
    up = {labels["network"]: value for labels, value in metrics["messaging_network_up"]}
    assert up == {"clean": 1.0, "censor": 0.0}
    blocked = {
        labels["network"]: value
        for labels, value in metrics["messaging_probe_blocked"]
        if labels["service"] == "telegram"
    }
    assert blocked == {"clean": 0.0, "censor": 0.0}
    snapshot = app.store.snapshot()
    assert snapshot.judgement.findings[key("censor", "google")].verdict is Verdict.NETWORK_DOWN

    await clock.advance(60)
    judge({"clean": True, "censor": False})  # still down: the same start
    assert scrape(app)["messaging_network_down_since_timestamp_seconds"] == [
        ({"network": "censor"}, start + 60)
    ]

    await clock.advance(60)
    judge({"clean": True, "censor": True})
    assert "messaging_network_down_since_timestamp_seconds" not in scrape(app)

    changes = [(r.levelno, r.msg, r.fields) for r in caplog.records if r.msg.startswith("network ")]
    assert changes == [
        (
            logging.WARNING,
            "network down",
            {
                "network": "censor",
                "since": "2023-11-14T22:14:20.000Z",
                "reason": "every canary failed (without canaries: every probe)",
            },
        ),
        (
            logging.WARNING,
            "network back up",
            {
                "network": "censor",
                "down_since": "2023-11-14T22:14:20.000Z",
                "down_seconds": 120.0,
            },
        ),
    ]


async def test_the_baseline_comes_from_earlier_rounds(
    make_app: AppFactory, clock: FakeClock
) -> None:
    single = CONFIG.replace("  censor: {}\n", "")
    app, _ = make_app(single)
    verdicts = []
    for rate in (10 * MIB, 11 * MIB, 9 * MIB, 10 * MIB, 100 * 1024.0):
        await clock.advance(60)
        for obs in round_of({"clean": True}, {"clean": rate}, clock.time()):
            app.store.record(obs)
        app._judge()
        finding = app.store.snapshot().judgement.findings[key("clean", "google")]
        verdicts.append(finding.verdict)
    assert verdicts == [Verdict.OK] * 4 + [Verdict.THROTTLED]
    metrics = scrape(app)
    [(_, rate)] = [
        (labels, value)
        for labels, value in metrics["messaging_probe_throughput_bytes_per_second"]
        if labels["service"] == "telegram"
    ]
    assert rate == pytest.approx(100 * 1024.0)
    assert finding.reason.startswith("throughput 100.0 KiB/s is below 0.25 x this tuple's median")


@pytest.mark.parametrize(
    ("network", "verdict"),
    [("clean: {}", Verdict.THROTTLED), ("clean: {source_address: 127.0.0.1}", Verdict.OK)],
    ids=["same-path", "another-path"],
)
async def test_a_reload_that_redefines_a_tuple_drops_its_baseline(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path, network: str, verdict: Verdict
) -> None:
    """One network, four rounds at ~10 MiB/s, then a reload, then a 100 KiB/s round. Where
    the reload left the network as it was, that is `throttled` against its baseline; where
    it moved it onto another path (a source address: a VPN, say), the old path's rates say
    nothing of the new one, and the round is judged afresh."""
    single = CONFIG.replace("  censor: {}\n", "")
    app, _ = make_app(single)
    for rate in (10 * MIB, 11 * MIB, 9 * MIB, 10 * MIB, 100 * 1024.0):
        if rate < MIB:
            (tmp_path / "config.yaml").write_text(single.replace("clean: {}", network))
            assert (await app.reload()).ok
        await clock.advance(60)
        for obs in round_of({"clean": True}, {"clean": rate}, clock.time()):
            app.store.record(obs)
        app._judge()
    assert app.store.snapshot().judgement.findings[key("clean", "google")].verdict is verdict


# --- Pages -----------------------------------------------------------------------------------


def _judged(*pairs: tuple[Observation, Verdict]) -> dict[object, Finding]:
    return {o.key: Finding(verdict=v, reason="r") for o, v in pairs}


def test_a_page_becomes_the_reference_only_once_judged_ok_and_never_its_own() -> None:
    pages = Pages()
    first = at(page(key("a")), 10.0)
    assert pages.references([first]) == {}
    pages.record([first], _judged((first, Verdict.OK)))
    assert pages.references([first]) == {}  # the same observation judged again
    second = at(page(key("a"), FILTER_PAGE), 20.0)
    (reference,) = pages.references([second]).values()
    assert reference.title == "Telegram Datacenter Gateway"
    pages.record([second], _judged((second, Verdict.HTTP_BLOCKPAGE)))  # a blockpage never
    assert pages.references([at(second, 30.0)])[second.key].title == reference.title


def test_pages_over_tls_are_not_kept_and_unprobed_tuples_are_forgotten() -> None:
    pages = Pages()
    over_tls = at(ok(key("a", "google")), 10.0)
    plain = at(page(key("a", "isp")), 10.0)
    pages.record([over_tls, plain], _judged((over_tls, Verdict.OK), (plain, Verdict.OK)))
    assert len(pages) == 1
    pages.record([over_tls], _judged((over_tls, Verdict.OK)))
    assert len(pages) == 0


def test_forgetting_a_tuple_drops_its_page_reference_only() -> None:
    pages = Pages()
    a, b = at(page(key("a")), 10.0), at(page(key("b")), 10.0)
    pages.record([a, b], _judged((a, Verdict.OK), (b, Verdict.OK)))
    pages.forget([a.key], now=15.0)
    assert set(pages.references([at(a, 20.0), at(b, 20.0)])) == {b.key}
    # The store still holds a's last observation from before: judged again, it is not kept.
    pages.record([a, b], _judged((a, Verdict.OK), (b, Verdict.OK)))
    assert set(pages.references([at(a, 20.0), at(b, 20.0)])) == {b.key}
    later = at(page(key("a")), 16.0)
    pages.record([later, b], _judged((later, Verdict.OK), (b, Verdict.OK)))
    assert set(pages.references([at(a, 20.0), at(b, 20.0)])) == {a.key, b.key}


def test_forgetting_a_tuple_drops_its_rates_and_ignores_its_observations_from_before() -> None:
    history = ThroughputHistory()
    k = key("censor", "google")
    old = [at(with_rate(ok(k), 10 * MIB), 10.0 + i) for i in range(4)]
    for obs in old:
        history.record([obs], rounds=10)
    history.forget([k], now=20.0)
    history.record([old[-1]], rounds=10)  # the store's last one, judged again after a reload
    assert history.baselines([at(ok(k), 30.0)]) == {}
    history.record([at(with_rate(ok(k), 1.0), 21.0)], rounds=10)
    assert history.baselines([at(ok(k), 30.0)]) == {k: (1.0,)}
