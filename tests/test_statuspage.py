"""The status page, /api/v1/status and the badges, against a site with a known snapshot."""

from __future__ import annotations

import calendar
import html
import re
import time
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from exporter.config.loader import load
from exporter.config.matrix import RESOLVER_CHECK_SERVICE, Target, expand
from exporter.config.model import CANARY_SERVICE
from exporter.exposition.store import Store
from exporter.judge.changes import Changes
from exporter.model.judgement import BLOCKED, Finding, Judgement, Verdict
from exporter.model.observation import TupleKey
from exporter.web import glance, render
from exporter.web.server import ReloadOutcome, Site, make_app
from exporter.web.statuspage import (
    ICONS,
    METHOD_WORDS,
    SCHEMA_VERSION,
    STATES,
    aspect_of,
    badge_svg,
    label,
    methods_text,
    status_html,
    status_json,
)
from tests.fakes.observations import judged
from tests.fakes.prober import make_observation

NOW = 1_700_000_100.0
EVIL = '<script>alert("x")</script>'


def _key(service: str, network: str, resolver: str = "local") -> TupleKey:
    return TupleKey(service=service, endpoint="web", network=network, resolver=resolver, family=4)


FINDINGS = {
    _key("telegram", "direct"): Verdict.OK,
    _key("telegram", "isp-b"): Verdict.TLS_BLOCKED,
    _key("telegram", "isp-b", "cloudflare"): Verdict.OK,
    _key("signal", "direct"): Verdict.NETWORK_DOWN,
    _key(EVIL, "direct"): Verdict.DNS_TAMPERED,
}


#: A resolver check: probed, never judged for reachability, left out of the page and API.
RESOLVER_CHECK = TupleKey(
    service=RESOLVER_CHECK_SERVICE, endpoint="nobody", network="direct", resolver="local", family=4
)


async def _reload() -> ReloadOutcome:
    return ReloadOutcome(ok=True)


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    store = Store()
    for key in FINDINGS:
        store.record(make_observation(key))
    store.record(make_observation(RESOLVER_CHECK))  # judged for interception, never shown
    findings = {k: Finding(verdict=v, reason=f"r {v.value}") for k, v in FINDINGS.items()}
    store.set_judgement(judged(findings))
    store.set_service_blocked_since({("telegram", "isp-b"): NOW - 120, (EVIL, "direct"): NOW})
    changes = Changes()
    changes.record({k: Finding(verdict=Verdict.OK, reason="") for k in FINDINGS}, NOW - 60)
    changes.record(findings, NOW)
    site = Site(
        registry=CollectorRegistry(),
        store=store,
        ready=lambda: True,
        target=lambda _: None,
        target_count=lambda: len(FINDINGS),
        reload=_reload,
        changes=changes,
        now=lambda: NOW,
    )
    async with TestClient(TestServer(make_app(site), host="127.0.0.1")) as c:
        yield c


def _cell(body: str, service: str, network: str) -> str:
    m = re.search(
        rf'<td class="cell (\w+)" data-service="{re.escape(service)}" '
        rf'data-network="{re.escape(network)}"[^>]*>(.*?)</td>',
        body,
    )
    assert m is not None, (service, network)
    return f"{m.group(1)}|{m.group(2)}"


async def test_page_shows_worst_verdict_per_cell(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    body = await resp.text()
    assert _cell(body, "telegram", "direct").startswith("reachable|")
    isp_b = _cell(body, "telegram", "isp-b")
    assert isp_b.startswith("blocked|")
    assert ">\u2717 blocked: SNI/TLS filtering since " in isp_b  # the service-level answer
    assert "local web v4: \u2717 blocked: tls_blocked" in isp_b  # the tuples, folded within
    assert "cloudflare web v4: \u2713 ok" in isp_b
    assert "\u2193 down: network_down" in _cell(body, "signal", "direct")
    assert '<meta http-equiv="refresh"' in body
    assert 'name="viewport"' in body
    for link in ("/metrics", "/probes", "/api/v1/status"):
        assert f'href="{link}"' in body
    assert 'href="/probes?service=telegram&amp;endpoint=web&amp;network=isp-b' in body
    assert 'since <time datetime="2023-11-14T22:15:00.000Z">' in body  # the change ring


async def test_page_escapes_names(client: TestClient[web.Request, web.Application]) -> None:
    body = await (await client.get("/")).text()
    assert EVIL not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


async def test_status_api_schema(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/api/v1/status")
    assert resp.status == 200
    doc = await resp.json()
    assert set(doc) == {
        "schema_version", "generated", "services", "networks", "cells", "changes",
        "network_health", "resolvers", "first_verdicts",
    }  # fmt: skip
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["generated"] == "2023-11-14T22:15:00.000Z"
    assert doc["networks"] == ["direct", "isp-b"]
    states = {s["service"]: s["state"] for s in doc["services"]}
    assert states == {"signal": "down", "telegram": "blocked", EVIL: "blocked"}
    for cell in doc["cells"]:
        assert set(cell) == {
            "service", "aspect", "network", "verdict", "state", "tuples",
            "blocked", "methods", "methods_text", "blocked_since", "since", "history",
        }  # fmt: skip
        for segment in cell["history"]:
            assert set(segment) == {"start", "state"}
            assert segment["state"] in STATES
        assert cell["state"] in STATES
        for t in cell["tuples"]:
            assert set(t) == {
                "service", "endpoint", "network", "resolver", "family",
                "verdict", "state", "reason", "last_probe", "since", "detail",
            }  # fmt: skip
            assert t["detail"].startswith("/probes?")
            assert t["verdict"] in {v.value for v in Verdict}
    blocked = [c for c in doc["changes"] if c["verdict"] == "tls_blocked"]
    assert blocked == [
        {
            "service": "telegram",
            "endpoint": "web",
            "network": "isp-b",
            "resolver": "local",
            "family": "4",
            "verdict": "tls_blocked",
            "previous": "ok",
            "since": "2023-11-14T22:15:00.000Z",
            "reason": "r tls_blocked",
        }
    ]


async def test_badge(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/api/v1/badge/telegram.svg")
    assert resp.status == 200
    assert resp.content_type == "image/svg+xml"
    assert resp.headers["Cache-Control"] == "max-age=30"
    svg = await resp.text()
    assert ">blocked</text>" in svg
    assert "#c62828" in svg
    assert ">down</text>" in await (await client.get("/api/v1/badge/signal.svg")).text()
    missing = await client.get("/api/v1/badge/nope.svg")
    assert missing.status == 404
    assert "unknown service 'nope'" in await missing.text()


def test_badge_escapes_and_labels() -> None:
    svg = badge_svg(EVIL, "reachable")
    assert "<script>" not in svg
    assert label(None) == "? unknown"
    assert label(Verdict.OK) == "\u2713 ok"
    assert label(Verdict.DNS_TAMPERED) == "\u2717 blocked: dns_tampered"


async def test_every_cell_reads_without_color(
    client: TestClient[web.Request, web.Application],
) -> None:
    """Colour-blind readers: every cell and every tuple row has an icon and a word."""
    body = await (await client.get("/")).text()
    cells = re.findall(r'<td class="([\w ]+)" data-service="[^"]*" data-network="[^"]*"', body)
    assert len(cells) == 6  # 3 services x 2 networks: signal and EVIL not probed on isp-b
    labels = re.findall(r'<a class="verdict" href="[^"]*">([^<]+)', body)
    rows = re.findall(r'<li class="\w+"><a href="/probes\?[^"]*">[^<]*?: ([^<]+)</a>', body)
    assert len(labels) == 4
    assert len(rows) == len(FINDINGS)
    for text in [*labels, *rows]:
        icon, _, word = text.partition(" ")
        assert icon in ICONS.values(), text
        assert word.split(":")[0].removesuffix(" since ") in ("ok", *STATES), text
    assert (
        '<td class="unknown" data-service="signal" data-network="isp-b">\u2013 not probed</td>'
        in body
    )


async def test_page_times_history_and_phone_layout(
    client: TestClient[web.Request, web.Application],
) -> None:
    body = await (await client.get("/")).text()
    # the time of the last probe in each tuple row
    assert body.count('<small>probed <time datetime="2023-11-14T22:13:20.100Z">') == len(FINDINGS)
    # the history: what each change was from
    changes = re.search(r'<ul id="changes">(.*?)</ul>', body)
    assert changes is not None
    items = re.findall(r"<li[^>]*>(.*?)</li>", changes.group(1))
    assert len(items) == len(FINDINGS) - 2 + 1  # two tuples stayed ok; first verdicts in one
    assert items[0].endswith("(was \u2713 ok)")
    assert items[-1] == (
        f"{len(FINDINGS)} first verdicts (a tuple judged for the first time), the earliest at "
        '<time datetime="2023-11-14T22:14:00.000Z">22:14 UTC</time>'
    )
    # the phone layout: the matrix becomes one block per cell, each named by its network
    assert "@media (max-width:600px)" in body
    assert "#matrix td::before{content:attr(data-network)" in body
    assert "<thead>" in body


async def test_resolver_checks_are_left_out(
    client: TestClient[web.Request, web.Application],
) -> None:
    body = await (await client.get("/")).text()
    assert RESOLVER_CHECK_SERVICE not in body
    doc = await (await client.get("/api/v1/status")).json()
    assert RESOLVER_CHECK_SERVICE not in {s["service"] for s in doc["services"]}
    assert RESOLVER_CHECK_SERVICE not in {c["service"] for c in doc["cells"]}
    assert (await client.get(f"/api/v1/badge/{RESOLVER_CHECK_SERVICE}.svg")).status == 404


def test_changes_api_is_bounded() -> None:
    """The ring keeps its bound through the API: at most 50 changes, newest first."""
    changes = Changes(per_tuple=2, total=30)
    keys = [_key(f"s{i}", "direct") for i in range(40)]
    for t in range(3):
        verdict = (Verdict.OK, Verdict.DOWN)[t % 2]
        changes.record({k: Finding(verdict=verdict, reason="") for k in keys}, NOW + t)
    store = Store()
    for k in keys:
        store.record(make_observation(k))
    doc: Any = status_json(store.snapshot(), changes, now=NOW)
    assert len(changes) == 30
    assert len(doc["changes"]) == 30
    assert {c["since"] for c in doc["changes"]} == {"2023-11-14T22:15:02.000Z"}


async def test_each_cell_says_whether_the_service_is_blocked_how_and_since_when(
    client: TestClient[web.Request, web.Application],
) -> None:
    """The service-level answer (exporter.judge.summary) beside the worst verdict: in words on the
    page, as values in the API; since the first round of the block."""
    doc = await (await client.get("/api/v1/status")).json()
    cells = {(c["service"], c["network"]): c for c in doc["cells"]}
    isp_b = cells["telegram", "isp-b"]
    assert (isp_b["blocked"], isp_b["methods"], isp_b["methods_text"]) == (
        True,
        ["tls_blocked"],
        "SNI/TLS filtering",
    )
    assert isp_b["blocked_since"] == "2023-11-14T22:13:00.000Z"
    direct = cells["telegram", "direct"]
    assert (direct["blocked"], direct["methods"], direct["methods_text"]) == (False, [], None)
    assert direct["blocked_since"] is None
    # a dead network: judged, not blocked (nothing can be said of the service there)
    assert cells["signal", "direct"]["blocked"] is False
    body = await (await client.get("/")).text()
    assert (
        '">\u2717 blocked: SNI/TLS filtering since '
        '<time datetime="2023-11-14T22:13:00.000Z">22:13 UTC</time> '
        '<span class="for">(2 min)</span></a>'
    ) in _cell(body, "telegram", "isp-b")
    assert "blocked:" not in _cell(body, "telegram", "direct")
    assert "\u2717 blocked: DNS tampering since" in body  # the EVIL service, escaped around it


def test_several_methods_read_in_words_and_a_canary_is_no_service() -> None:
    store = Store()
    keys = {
        _key("telegram", "uplink-a"): Verdict.TCP_BLOCKED,
        _key("telegram", "uplink-a", "isp"): Verdict.DNS_TAMPERED,
        replace(_key("telegram", "uplink-a"), endpoint="dc2"): Verdict.TLS_BLOCKED,
        _key("canary", "uplink-a"): Verdict.OK,
    }
    for key in keys:
        store.record(make_observation(key))
    findings = {k: Finding(verdict=v, reason="") for k, v in keys.items()}
    store.set_judgement(judged(findings))
    doc: Any = status_json(store.snapshot(), Changes(), now=NOW)
    cells = {(c["service"], c["network"]): c for c in doc["cells"]}
    telegram = cells["telegram", "uplink-a"]
    assert telegram["methods"] == ["dns_tampered", "tcp_blocked", "tls_blocked"]
    assert telegram["methods_text"] == "DNS tampering, IP blocking, SNI/TLS filtering"
    assert telegram["blocked_since"] is None  # no start known (not tracked across rounds)
    assert cells["canary", "uplink-a"]["blocked"] is None  # not a messaging service
    page = status_html(store.snapshot(), Changes(), now=NOW, version="test")
    assert ">\u2717 blocked: DNS tampering, IP blocking, SNI/TLS filtering</a>" in page  # no since
    # the canary is in the section of its own, not a row of the matrix
    matrix, _, infra = page.partition('id="canaries"')
    assert 'data-service="canary"' not in matrix
    assert 'data-service="canary" data-network="uplink-a"' in infra


def test_every_blocking_verdict_has_words() -> None:
    assert set(METHOD_WORDS) == set(BLOCKED)
    assert methods_text([Verdict.QUIC_BLOCKED, Verdict.THROTTLED]) == "QUIC blocking, throttling"


def test_calls_and_the_protocol_get_rows_of_their_own() -> None:
    """Messages work, calls do not: the service's row is not blocked, its calls row is, and
    Telegram's protocol row says what the DPI does, each with its own since."""
    from exporter.config.matrix import Target
    from exporter.config.model import Check, Endpoint, Network

    def key(service: str, endpoint: str) -> TupleKey:
        return TupleKey(
            service=service, endpoint=endpoint, network="isp-b", resolver="local", family=4
        )

    checks = {
        "web": (Check.DNS, Check.TCP, Check.TLS, Check.HTTP),
        "stun": (Check.DNS, Check.STUN),
        "dc2": (Check.TCP, Check.MTPROTO),
    }

    def target(k: TupleKey) -> Target:
        endpoint = Endpoint(
            service=k.service, name=k.endpoint, host="h.example", address=None, port=443,
            checks=checks[k.endpoint],
        )  # fmt: skip
        return Target(key=k, endpoint=endpoint, network=Network(name="isp-b"), resolver=None)

    verdicts = {
        key("messenger", "web"): Verdict.OK,
        key("messenger", "stun"): Verdict.UDP_BLOCKED,
        key("telegram", "web"): Verdict.OK,
        key("telegram", "dc2"): Verdict.PROTOCOL_BLOCKED,
    }
    store = Store()
    for k in verdicts:
        store.record(make_observation(k))
    findings = {k: Finding(verdict=v, reason=f"r {v.value}") for k, v in verdicts.items()}
    store.set_judgement(judged(findings))
    changes = Changes()
    changes.record(findings, NOW - 300)
    doc: Any = status_json(store.snapshot(), changes, now=NOW, targets=target)
    rows = {(c["service"], c["aspect"]): c for c in doc["cells"]}
    assert set(rows) == {
        ("messenger", None), ("messenger", "calls"), ("telegram", None), ("telegram", "protocol")
    }  # fmt: skip
    assert rows["messenger", None]["blocked"] is False
    assert rows["messenger", None]["methods"] == []
    assert rows["messenger", "calls"]["blocked"] is True
    assert rows["messenger", "calls"]["methods"] == ["udp_blocked"]
    assert rows["messenger", "calls"]["blocked_since"] == "2023-11-14T22:10:00.000Z"
    assert rows["telegram", "protocol"]["methods_text"] == "Telegram's protocol blocked"
    page = status_html(store.snapshot(), changes, now=NOW, version="t", targets=target)
    assert "messenger \u00b7 calls (STUN)</th>" in page
    assert "telegram \u00b7 protocol (MTProto)</th>" in page
    assert "blocked: calls blocked (STUN)" in page
    # Without targets (a caller that cannot tell), one row per service, as before.
    plain: Any = status_json(store.snapshot(), changes, now=NOW)
    assert {c["aspect"] for c in plain["cells"]} == {None}
    assert len(plain["cells"]) == 2


# ---- a page the size of the shipped config (the browser test renders the same)

ROOT = Path(__file__).resolve().parent.parent
#: Now, for the realistic pages: 2026-11-28T09:03:00Z.
BIG_NOW = float(calendar.timegm((2026, 11, 28, 9, 3, 0)))
#: How long ago the down network went down, and the blocks began.
DOWN_FOR = 42 * 60
BLOCKED_FOR = 3 * 3600


def shipped_targets() -> list[Target]:
    """The tuples of the shipped config.yaml (one network, `default`)."""
    return list(expand(load(ROOT / "config.yaml")))


def synthesized_targets(networks: Sequence[str], total: int) -> list[Target]:
    """The shipped tuples on each of `networks`, topped up to `total` with a made-up service
    `element` (copies of whatsapp's endpoints)."""
    shipped = shipped_targets()
    out = [
        replace(t, key=replace(t.key, network=n), network=replace(t.network, name=n))
        for n in networks
        for t in shipped
    ]
    extra = [t for t in shipped if t.key.service == "whatsapp"]
    for i in range(total - len(out)):
        t, n = extra[(i // len(networks)) % len(extra)], networks[i % len(networks)]
        out.append(replace(t, key=replace(t.key, service="element", network=n)))
    assert len(out) == total == len({t.key for t in out})
    return out


def mix_verdict(target: Target, *, down: Collection[str], blocked: Collection[str]) -> Verdict:
    """A realistic verdict: everything ok, but a dead network, and on a censoring one
    whatsapp blocked three ways, signal's calls and Telegram's protocol blocked."""
    key = target.key
    if key.network in down:
        return Verdict.NETWORK_DOWN
    if key.network not in blocked or key.service == CANARY_SERVICE:
        return Verdict.OK
    aspect = aspect_of(target)
    if key.service == "whatsapp":
        if key.resolver == "system":
            return Verdict.DNS_TAMPERED
        if key.endpoint.endswith("-5222"):
            return Verdict.TCP_BLOCKED
        return Verdict.TLS_BLOCKED if key.endpoint in ("web", "registration") else Verdict.OK
    if aspect == "calls" and key.service == "signal":
        return Verdict.UDP_BLOCKED
    return Verdict.PROTOCOL_BLOCKED if aspect == "protocol" else Verdict.OK


def mix_judgement(
    targets: Sequence[Target],
    *,
    down: Collection[str] = (),
    blocked: Collection[str] = (),
    no_udp: Collection[str] = (),
) -> Judgement:
    findings = {}
    for t in targets:
        verdict = mix_verdict(t, down=down, blocked=blocked)
        if t.key.network in no_udp and aspect_of(t) == "calls":
            verdict = Verdict.UDP_DOWN
        findings[t.key] = Finding(verdict=verdict, reason=f"made up: {verdict.value}")
    networks = {t.key.network for t in targets}
    pairs = {(t.key.network, t.key.resolver) for t in targets if t.resolver is not None}
    return replace(
        judged(findings),
        network_up={n: n not in down for n in networks},
        network_udp={n: n not in no_udp for n in networks if n not in down},
        resolver_up={p: p[0] not in down for p in pairs},
        resolver_intercepted={p: p[0] in blocked and p[1] == "system" for p in pairs},
    )


def mix_site(
    targets: Sequence[Target],
    *,
    now: float = BIG_NOW,
    down: Collection[str] = (),
    blocked: Collection[str] = (),
    no_udp: Collection[str] = (),
) -> tuple[Store, Changes]:
    """A store and change ring after a day: all ok 20 h ago, a 30 min block of whatsapp's
    web on the censoring networks 10 h ago, the blocks since 3 h, the dead network since
    42 min."""
    store = Store()
    for t in targets:
        store.record(make_observation(t.key, started=now - 40))
    judgement = mix_judgement(targets, down=down, blocked=blocked, no_udp=no_udp)
    store.set_judgement(judgement)
    store.set_network_down_since({n: now - DOWN_FOR for n in down})
    store.set_service_blocked_since(
        {cell: now - BLOCKED_FOR for cell, state in judgement.services.items() if state.blocked}
    )
    final = judgement.findings
    ok = {k: Finding(verdict=Verdict.OK, reason="") for k in final}
    blip = {
        k: Finding(verdict=Verdict.TLS_BLOCKED, reason="")
        if k.network in blocked and (k.service, k.endpoint) == ("whatsapp", "web")
        else f
        for k, f in ok.items()
    }
    before = {k: ok[k] if k.network in down else f for k, f in final.items()}
    changes = Changes()
    for findings, ago in ((ok, 20 * 3600), (blip, 10 * 3600), (ok, 9.5 * 3600)):
        changes.record(findings, now - ago)
    changes.record(before, now - BLOCKED_FOR)
    changes.record(final, now - DOWN_FOR)
    return store, changes


def by_key(targets: Sequence[Target]) -> dict[TupleKey, Target]:
    return {t.key: t for t in targets}


def _page(
    targets: Sequence[Target],
    *,
    down: Collection[str] = (),
    blocked: Collection[str] = (),
) -> tuple[str, Any]:
    """The page and its JSON document (Any: read as a client reads it)."""
    store, changes = mix_site(targets, down=down, blocked=blocked)
    snapshot, known = store.snapshot(), by_key(targets)
    page = status_html(snapshot, changes, now=BIG_NOW, version="t", targets=known.get)
    return page, status_json(snapshot, changes, now=BIG_NOW, targets=known.get)


def test_the_banner_says_a_network_is_down_and_since_when() -> None:
    """The issue's box without a route out: one line on top says so, and every cell under it
    reads down since then."""
    page, doc = _page(shipped_targets(), down={"default"})
    banner = re.search(r'<ul id="banner"[^>]*>(.*?)</ul>', page)
    assert banner is not None
    assert banner.group(1) == (
        '<li class="down">\u2193 default down since <time datetime="2026-11-28T08:21:00.000Z">'
        '08:21 UTC</time> <span class="for">(42 min)</span></li>'
    )
    assert page.index('id="banner"') < page.index('id="matrix"')
    assert '<th scope="col" class="down" data-network="default">default <small>' in page
    assert doc["network_health"] == [
        {
            "network": "default",
            "up": False,
            "down_since": "2026-11-28T08:21:00.000Z",
            "setup_error": None,
            "udp": None,
        }
    ]
    for cell in doc["cells"]:
        assert (cell["state"], cell["since"]) == ("down", "2026-11-28T08:21:00.000Z"), cell


def test_the_banner_names_setup_errors_and_networks_without_udp_escaped() -> None:
    store = Store()
    key = _key("telegram", "a")
    store.record(make_observation(key))
    judgement = replace(
        judged({key: Finding(verdict=Verdict.OK, reason="")}),
        network_up={"a": True},
        network_setup={EVIL: "namespace <gone>"},
        network_udp={"a": False},
    )
    store.set_judgement(judgement)
    health: Any = status_json(store.snapshot(), Changes(), now=NOW)["network_health"]
    page = status_html(store.snapshot(), Changes(), now=NOW, version="t")
    assert EVIL not in page
    assert (
        '<li class="unknown">? &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;: set-up error: '
        "namespace &lt;gone&gt;</li>"
    ) in page
    assert '<li class="down">\u2193 no UDP on a (calls cannot be judged there)</li>' in page
    assert [h["network"] for h in health] == [EVIL, "a"]
    assert health[1]["udp"] is False
    # all well, or nothing judged yet, also in one line
    store.set_judgement(
        replace(judged({key: Finding(verdict=Verdict.OK, reason="")}), network_up={"a": True})
    )
    assert '<li class="reachable">\u2713 1 network up</li>' in status_html(
        store.snapshot(), Changes(), now=NOW, version="t"
    )
    assert '<li class="unknown">? not judged yet</li>' in status_html(
        Store().snapshot(), Changes(), now=NOW, version="t"
    )


def test_canaries_and_resolvers_have_a_section_of_their_own() -> None:
    page, doc = _page(shipped_targets(), blocked={"default"})
    matrix, _, infra = page.partition('<h2 id="canaries">')
    assert infra, "no section of canaries and resolvers"
    rows = re.findall(r'<th scope="row">([^<]+)</th>', matrix)
    assert rows == [
        "messenger", "messenger \u00b7 calls (STUN)", "signal", "signal \u00b7 calls (STUN)",
        "telegram", "telegram \u00b7 protocol (MTProto)", "whatsapp",
    ]  # fmt: skip
    infra_rows = re.findall(r'<th scope="row">([^<]+)</th>', infra)
    assert infra_rows[:2] == ["canary", "canary \u00b7 UDP (public STUN)"]
    assert "resolver system" in infra_rows
    assert (
        '<td class="blocked" data-resolver="system" data-network="default">'
        "\u2717 intercepted</td>" in infra
    )
    assert (
        '<td class="reachable" data-resolver="google" data-network="default">\u2713 up</td>'
        in infra
    )
    resolvers = {r["resolver"]: r for r in doc["resolvers"]}
    assert resolvers["system"] == {
        "network": "default", "resolver": "system", "up": True, "intercepted": True,
    }  # fmt: skip
    assert len(resolvers) == 12  # every resolver of the shipped config but the checks'


def test_a_cells_tuples_are_folded_in_details_without_script() -> None:
    page, doc = _page(shipped_targets(), blocked={"default"})
    assert "<script" not in page
    cells = {(c["service"], c["aspect"]): c for c in doc["cells"]}
    for td in re.findall(r'<td class="cell [^"]+" (.*?)</td>', page):
        service = re.search(r'data-service="([^"]+)"', td)
        assert service is not None
        assert td.count("<details>") == 1  # closed until asked
        summary = re.search(r"<summary>(\d+) tuples?((?: \u00b7 \d+ .)*)</summary>", td)
        assert summary is not None, td[:300]
        items = re.findall(r'<li class="(\w+)"><a href="(/probes\?[^"]+)">', td)
        assert len(items) == int(summary.group(1))
        tally = {icon: int(n) for n, icon in re.findall(r"(\d+) (.)", summary.group(2))}
        for state, icon in ICONS.items():
            assert tally.get(icon, 0) == sum(1 for s, _ in items if s == state)
    whatsapp = cells["whatsapp", None]
    assert len(whatsapp["tuples"]) == 119
    # the headline opens a tuple that has the cell's verdict
    td = _cell(page, "whatsapp", "default")
    href = re.search(r'<a class="verdict" href="([^"]+)"', td)
    assert href is not None
    [shown] = [t for t in whatsapp["tuples"] if t["detail"] == html.unescape(href.group(1))]
    assert shown["verdict"] == whatsapp["verdict"]


def test_the_headline_names_every_method_on_every_network() -> None:
    """Three networks, whatsapp blocked on two by DNS, IP and SNI: each cell says all three,
    since the first round of the block, and its strip shows the blip and the block."""
    targets = synthesized_targets(("isp-a", "isp-b", "isp-c"), 1100)
    page, _ = _page(targets, blocked={"isp-a", "isp-c"})
    words = "DNS tampering, IP blocking, SNI/TLS filtering"
    for network in ("isp-a", "isp-c"):
        td = _cell(page, "whatsapp", network)
        assert '<a class="verdict" href="/probes?service=whatsapp&amp;' in td
        assert f">\u2717 blocked: {words} since <time" in td
        assert '>06:03 UTC</time> <span class="for">(3 h)</span></a>' in td
    assert ">\u2713 ok since <time" in _cell(page, "whatsapp", "isp-b")
    assert ">\u2717 blocked: calls blocked (STUN) since <time" in page
    assert ">\u2717 blocked: Telegram&#x27;s protocol blocked since <time" in page


def test_the_strip_shows_when_blocking_started_and_stopped() -> None:
    page, doc = _page(shipped_targets(), blocked={"default"})
    cells = {(c["service"], c["aspect"]): c for c in doc["cells"]}
    history = cells["whatsapp", None]["history"]
    assert history == [
        {"start": "2026-11-27T13:03:00.000Z", "state": "reachable"},
        {"start": "2026-11-27T23:03:00.000Z", "state": "blocked"},  # the half-hour blip
        {"start": "2026-11-27T23:33:00.000Z", "state": "reachable"},
        {"start": "2026-11-28T06:03:00.000Z", "state": "blocked"},
    ]
    strip = re.search(r'<span class="strip"[^>]*>(.*?)</span>', _cell(page, "whatsapp", "default"))
    assert strip is not None
    runs = re.findall(r'<i class="(\w+)" style="flex:([\d.]+)" title="([^"]+)"></i>', strip[1])
    assert [(state, title) for state, _, title in runs] == [
        ("none", "no data 09:30\u201313:00"),
        ("reachable", "\u2713 ok 13:00\u201323:00"),
        ("blocked", "\u2717 blocked 23:00\u201300:00"),  # the blip spans two half hours
        ("reachable", "\u2713 ok 00:00\u201306:00"),
        ("blocked", "\u2717 blocked 06:00\u201309:03"),
    ]
    assert sum(float(w) for _, w, _ in runs) == pytest.approx(47.1)  # 48 half hours, the last begun
    assert 'aria-label="last 24 h (UTC): no data 09:30\u201313:00, \u2713 ok' in strip[0]
    # a row that never changed: one run since the first round
    signal = re.search(r'<span class="strip"[^>]*>(.*?)</span>', _cell(page, "signal", "default"))
    assert signal is not None
    assert signal[1].count("<i ") == 2  # no data, then ok


def test_the_first_verdicts_are_counted_truly() -> None:
    """262 tuples judged with a ring of 50: the page says 262 (the issue's "50")."""
    store = Store()
    keys = [_key(f"s{i:03}", "direct") for i in range(262)]
    for k in keys:
        store.record(make_observation(k))
    findings = {k: Finding(verdict=Verdict.OK, reason="") for k in keys}
    store.set_judgement(judged(findings))
    changes = Changes(total=50)
    changes.record(findings, NOW - 60)
    changes.record({keys[0]: Finding(verdict=Verdict.DOWN, reason="")}, NOW)
    page = status_html(store.snapshot(), changes, now=NOW, version="t")
    items = re.findall(r'<ul id="changes">(.*?)</ul>', page)[0]
    assert items.startswith("<li>s000 on direct (local, web): \u2193 down: down since ")
    assert '<li class="first">262 first verdicts (a tuple judged for the first time)' in items
    doc: Any = status_json(store.snapshot(), changes, now=NOW)
    assert doc["first_verdicts"] == {
        "count": 262, "earliest": "2023-11-14T22:14:00.000Z", "latest": "2023-11-14T22:14:00.000Z",
    }  # fmt: skip
    assert len(doc["changes"]) == 50  # the list stays bounded


async def test_the_detail_page_links_back_and_lists_in_words(
    client: TestClient[web.Request, web.Application],
) -> None:
    body = await (
        await client.get("/probes?" + render.probe_query(_key("telegram", "isp-b")))
    ).text()
    assert '<p><a href="/">\u2190 status page</a></p>' in body
    target = next(t for t in shipped_targets() if t.key.endpoint == "web")
    page = render.detail_html(make_observation(target.key), target, None)
    assert "<th>checks</th><td>dns, tcp, tls, http</td>" in page
    assert "[&#x27;" not in page
    assert page.count('href="/"') == 2  # on top and with the links at the bottom


def test_a_page_of_2000_tuples_renders_fast() -> None:
    targets = synthesized_targets(("a", "b", "c", "d", "e"), 2000)
    store, changes = mix_site(targets, down={"c"}, blocked={"b"})
    started = time.perf_counter()
    page = status_html(
        store.snapshot(), changes, now=BIG_NOW, version="t", targets=by_key(targets).get
    )
    took = time.perf_counter() - started
    print(f"2000 tuples x 5 networks: {len(page)} bytes in {took * 1000:.0f} ms")
    assert took < 2.0
    assert page.count("<details>") == (8 + 2) * 5  # 8 rows of services, 2 of canaries


def test_a_rows_timeline_is_the_worst_of_its_endpoints() -> None:
    web = [(0.0, "reachable"), (10.0, "blocked"), (30.0, "reachable")]
    dc = [(5.0, "down"), (20.0, "reachable")]
    row = glance.merge([web, dc])
    assert row == [(0.0, "reachable"), (5.0, "down"), (10.0, "blocked"), (30.0, "reachable")]
    assert glance.since(row, "reachable") == 30.0
    assert glance.since(row, "blocked") is None  # not its state now
    assert glance.merge([[(1.0, "down")], [(1.0, "reachable")]]) == [(1.0, "down")]
    assert [glance.duration(s) for s in (20, 42 * 60, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "under a minute", "42 min", "3 h 5 min", "2 d 4 h",
    ]  # fmt: skip
    assert glance.clock(BIG_NOW - 3600, BIG_NOW) == "08:03 UTC"
    assert glance.clock(BIG_NOW - 2 * 86400, BIG_NOW) == "2026-11-26 09:03 UTC"
