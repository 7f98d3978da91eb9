"""The HTTP endpoints, served on 127.0.0.1 by aiohttp's test server."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exporter import __version__
from exporter.model.observation import (
    Certificate,
    DnsObservation,
    ErrorKind,
    HttpObservation,
    Phase,
    TlsObservation,
    TupleKey,
)
from exporter.runtime.app import App
from exporter.web.server import MAX_REQUEST_BYTES, parse_listen_address
from tests.conftest import CONFIG_YAML, AppFactory
from tests.fakes.clock import FakeClock
from tests.fakes.prober import make_observation

WEB = {"service": "telegram", "endpoint": "web", "network": "direct", "resolver": "local"}
WEB_KEY = TupleKey(family=4, **WEB)


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A client of the app's web server, with the scheduler running on the fake clock."""
    scheduler = asyncio.create_task(app.scheduler.run())
    try:
        async with TestClient(TestServer(app.web_app, host="127.0.0.1")) as client:
            yield client
    finally:
        scheduler.cancel()
        await asyncio.wait({scheduler})


async def test_landing_page(make_app: AppFactory) -> None:
    app, _ = make_app()
    async with serving(app) as client:
        resp = await client.get("/")
        assert resp.status == 200
        assert resp.content_type == "text/html"
        body = await resp.text()
    for link in ("/metrics", "/probes", "/-/healthy", "/-/ready"):
        assert f'href="{link}"' in body
    assert __version__ in body


async def test_healthy_and_ready(make_app: AppFactory, clock: FakeClock) -> None:
    app, _ = make_app()
    async with serving(app) as client:
        resp = await client.get("/-/healthy")
        assert (resp.status, await resp.text()) == (200, "Healthy\n")
        resp = await client.get("/-/ready")
        assert resp.status == 503
        await clock.advance(60.0)
        resp = await client.get("/-/ready")
        assert resp.status == 200


async def test_metrics_text_openmetrics_and_gzip(make_app: AppFactory, clock: FakeClock) -> None:
    app, _ = make_app()
    async with serving(app) as client:
        await clock.advance(60.0)
        resp = await client.get("/metrics")
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = await resp.text()
        assert 'messaging_probe_success{endpoint="web"' in body
        assert "messaging_exporter_targets 3.0" in body

        resp = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await resp.text()).endswith("# EOF\n")

        resp = await client.get(
            "/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        )
        assert resp.headers["Content-Encoding"] == "gzip"
        assert b"messaging_probe_success" in gzip.decompress(await resp.read())


async def test_reload_is_forbidden_without_lifecycle(make_app: AppFactory) -> None:
    app, _ = make_app(lifecycle=False)
    async with serving(app) as client:
        resp = await client.post("/-/reload")
        assert resp.status == 403
        assert "--web.enable-lifecycle" in await resp.text()
        resp = await client.get("/-/reload")
        assert resp.status == 405


async def test_reload_applies_a_good_config(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    app, probers = make_app(lifecycle=True)
    async with serving(app) as client:
        await clock.advance(60.0)
        (tmp_path / "config.yaml").write_text(
            CONFIG_YAML.replace("      dc1: {address: 127.0.0.1, port: 443, checks: [tcp]}\n", "")
        )
        clock_before = clock.time()
        await clock.advance(5.0)
        resp = await client.post("/-/reload")
        assert (resp.status, await resp.text()) == (200, "OK\n")
        assert len(app.scheduler.targets()) == 2
        assert len(probers) == 2
        assert app.scheduler.prober is probers[1]
        await clock.advance(1.0)
        assert probers[0].closed  # nothing was in flight
        metrics = await (await client.get("/metrics")).text()
    assert 'endpoint="dc1"' not in metrics
    assert "messaging_exporter_config_last_reload_successful 1.0" in metrics
    status = app.reload_status()
    assert status.successful
    assert status.last_success_timestamp > clock_before


async def test_reload_keeps_the_running_config_on_errors(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    app, probers = make_app(lifecycle=True)
    started = app.reload_status().last_success_timestamp
    async with serving(app) as client:
        (tmp_path / "config.yaml").write_text("interval: soon\nservices: {}\nbogus: 1\n")
        resp = await client.post("/-/reload")
        assert resp.status == 500
        body = await resp.text()
        assert "interval:" in body
        assert "bogus:" in body
        assert len(body.strip().splitlines()) == 4  # a heading and one line per error
        assert len(app.scheduler.targets()) == 3
        assert len(probers) == 1
        assert not probers[0].closed
        metrics = await (await client.get("/metrics")).text()
    assert "messaging_exporter_config_last_reload_successful 0.0" in metrics
    assert app.reload_status().last_success_timestamp == started


async def test_probes_list_and_json(make_app: AppFactory, clock: FakeClock) -> None:
    app, _ = make_app()
    async with serving(app) as client:
        await clock.advance(60.0)
        resp = await client.get("/probes")
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
        assert page.count("<tr>") == 4  # header + 3 tuples
        assert "/probes?service=telegram&amp;endpoint=web&amp;network=direct" in page

        data = await (await client.get("/probes?format=json")).json()
        assert data["targets"] == 3
        assert {(p["service"], p["endpoint"]) for p in data["probes"]} == {
            ("telegram", "web"),
            ("telegram", "dc1"),
            ("signal", "chat"),
        }
        web = next(p for p in data["probes"] if p["endpoint"] == "web")
        assert web["result"] == "success"
        assert web["phases_ms"]["total"] == 100.0

        partial = await (await client.get("/probes?format=json&service=signal")).json()
        assert [p["endpoint"] for p in partial["probes"]] == ["chat"]

        resp = await client.get("/probes?format=xml")
        assert resp.status == 400


async def test_probe_detail(make_app: AppFactory, clock: FakeClock) -> None:
    app, _ = make_app()
    async with serving(app) as client:
        await clock.advance(60.0)
        resp = await client.get("/probes", params={**WEB, "family": "4"})
        assert resp.status == 200
        page = await resp.text()
        for fact in ("NOERROR", "91.108.56.10", "CN=fake.example", "CN=Fake CA", "200 OK"):
            assert fact in page
        assert "fake probe" in page  # the probe's own log
        data = await (
            await client.get("/probes", params={**WEB, "family": "4", "format": "json"})
        ).json()
        assert data["dns"]["rcode"] == "NOERROR"
        assert data["dns"]["answers"] == ["91.108.56.10"]
        assert data["tls"]["certificate"]["sans"] == ["fake.example"]
        assert data["http"]["status"] == 200
        assert data["connects"][0]["address"] == "91.108.56.10"
        assert data["log"] == ["fake probe", "success"]
        assert data["target"]["endpoint"]["host"] == "web.telegram.example"
        assert data["target"]["resolver"]["type"] == "udp"


async def test_unknown_tuple_is_404(make_app: AppFactory, clock: FakeClock) -> None:
    app, _ = make_app()
    async with serving(app) as client:
        await clock.advance(60.0)
        for family in ("6", "x"):
            resp = await client.get("/probes", params={**WEB, "family": family})
            assert resp.status == 404
        resp = await client.get("/probes", params={**WEB, "service": "nope", "family": "4"})
        assert resp.status == 404


async def test_peer_controlled_text_is_escaped(make_app: AppFactory) -> None:
    app, _ = make_app()
    evil = '<script>alert("x")</script>'
    obs = make_observation(WEB_KEY, error=ErrorKind.HTTP_STATUS)
    obs = replace(
        obs,
        failed_phase=Phase.HTTP,
        dns=DnsObservation(
            qname="web.telegram.example",
            qtype="A",
            server="udp://127.0.0.1:5353",
            rcode="NOERROR",
            answers=(evil,),
            cnames=(evil,),
        ),
        tls=TlsObservation(
            server_name="web.telegram.example",
            certificate=Certificate(
                subject=f"CN={evil}", issuer=evil, not_after=0.0, not_before=0.0, sans=(evil,)
            ),
        ),
        http=HttpObservation(
            method="GET",
            url="https://web.telegram.example/",
            status=403,
            reason=evil,
            headers=(("x-evil", evil),),
            body_head=evil.encode(),
            detail=evil,
        ),
        log=(evil,),
    )
    app.store.record(obs)
    async with serving(app) as client:
        for path in (
            "/probes",
            "/probes?" + "&".join(f"{k}={v}" for k, v in WEB.items()) + "&family=4",
        ):
            page = await (await client.get(path)).text()
            assert "<script>" not in page
        assert "&lt;script&gt;" in page
        data = await (
            await client.get("/probes", params={**WEB, "family": "4", "format": "json"})
        ).json()
        assert data["http"]["headers"] == [["x-evil", evil]]  # JSON keeps the exact text


async def test_proxy_password_never_shown(make_app: AppFactory, clock: FakeClock) -> None:
    yaml = """\
networks:
  tor: {proxy: "socks5://user:hunter2@127.0.0.1:1080"}
services:
  telegram:
    endpoints:
      dc1: {address: 127.0.0.1, port: 443, checks: [tcp]}
"""
    app, _ = make_app(yaml)
    async with serving(app) as client:
        await clock.advance(60.0)
        params = {"service": "telegram", "endpoint": "dc1", "network": "tor", "resolver": "none"}
        page = await (await client.get("/probes", params={**params, "family": "4"})).text()
        data = await (
            await client.get("/probes", params={**params, "family": "4", "format": "json"})
        ).text()
    for body in (page, data):
        assert "hunter2" not in body
        assert "socks5://&lt;redacted&gt;@127.0.0.1:1080" in body or "<redacted>" in body


async def test_request_size_is_bounded(make_app: AppFactory) -> None:
    app, _ = make_app(lifecycle=True)
    assert app.web_app._client_max_size == MAX_REQUEST_BYTES  # a small cap, as documented
    async with serving(app) as client:
        resp = await client.post("/-/reload", data=b"x" * (MAX_REQUEST_BYTES * 4))
        assert resp.status == 413
        resp = await client.get("/", headers={"X-Big": "y" * 20_000})
        assert resp.status == 400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":10053", (None, 10053)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_address(text: str, expected: tuple[str | None, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize("text", ["10053", "::1:9000", "host:http", ":70000", "[]:1"])
def test_bad_listen_address(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # the messages are checked in test_cli
        parse_listen_address(text)
