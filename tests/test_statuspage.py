"""The status page, /api/v1/status and the badges, against a site with a known snapshot."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from exporter.config.matrix import RESOLVER_CHECK_SERVICE
from exporter.exposition.store import Store
from exporter.judge.changes import Changes
from exporter.model.judgement import BLOCKED, Finding, Verdict
from exporter.model.observation import TupleKey
from exporter.web.server import ReloadOutcome, Site, make_app
from exporter.web.statuspage import (
    ICONS,
    METHOD_WORDS,
    SCHEMA_VERSION,
    STATES,
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
    assert "\u2717 blocked: tls_blocked" in isp_b
    assert "cloudflare web v4: \u2713 ok" in isp_b  # the resolver rows within
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
    assert set(doc) == {"schema_version", "generated", "services", "networks", "cells", "changes"}
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["generated"] == "2023-11-14T22:15:00.000Z"
    assert doc["networks"] == ["direct", "isp-b"]
    states = {s["service"]: s["state"] for s in doc["services"]}
    assert states == {"signal": "down", "telegram": "blocked", EVIL: "blocked"}
    for cell in doc["cells"]:
        assert set(cell) == {
            "service", "aspect", "network", "verdict", "state", "tuples",
            "blocked", "methods", "methods_text", "blocked_since",
        }  # fmt: skip
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
    labels = re.findall(r'<a class="verdict" href="[^"]*">([^<]+)</a>', body)
    rows = re.findall(r'<li class="\w+"><a href="/probes\?[^"]*">[^<]*?: ([^<]+)</a>', body)
    assert len(labels) == 4
    assert len(rows) == len(FINDINGS)
    for text in [*labels, *rows]:
        icon, _, word = text.partition(" ")
        assert icon in ICONS.values(), text
        assert word.split(":")[0] in ("ok", *STATES), text
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
        '<time datetime="2023-11-14T22:14:00.000Z">2023-11-14T22:14:00.000Z</time>'
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
    doc = status_json(store.snapshot(), changes, now=NOW)
    assert len(changes) == 30
    assert len(doc["changes"]) == 30  # type: ignore[arg-type]
    assert {c["since"] for c in doc["changes"]} == {"2023-11-14T22:15:02.000Z"}  # type: ignore[union-attr, index]


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
        '<p class="blocking">blocked: SNI/TLS filtering since '
        '<time datetime="2023-11-14T22:13:00.000Z">2023-11-14T22:13:00.000Z</time></p>'
    ) in _cell(body, "telegram", "isp-b")
    assert "blocking" not in _cell(body, "telegram", "direct")
    assert "blocked: DNS tampering since" in body  # the EVIL service, escaped around it


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
    doc = status_json(store.snapshot(), Changes(), now=NOW)
    cells = {(c["service"], c["network"]): c for c in doc["cells"]}  # type: ignore[union-attr, index]
    telegram = cells["telegram", "uplink-a"]
    assert telegram["methods"] == ["dns_tampered", "tcp_blocked", "tls_blocked"]
    assert telegram["methods_text"] == "DNS tampering, IP blocking, SNI/TLS filtering"
    assert telegram["blocked_since"] is None  # no start known (not tracked across rounds)
    assert cells["canary", "uplink-a"]["blocked"] is None  # not a messaging service
    page = status_html(store.snapshot(), Changes(), now=NOW, version="test")
    assert "blocked: DNS tampering, IP blocking, SNI/TLS filtering</p>" in page


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
    doc = status_json(store.snapshot(), changes, now=NOW, targets=target)
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
    plain = status_json(store.snapshot(), changes, now=NOW)
    assert {c["aspect"] for c in plain["cells"]} == {None}
    assert len(plain["cells"]) == 2
