"""Security: secrets never leave, requests are bounded in size and time, nothing is probed
that the config does not name, lifecycle is off by default.

The secret test runs the exporter as a real process at debug level, with proxy credentials
that a real SOCKS5 server (Debian's microsocks) checks and a web password that basic auth
checks, then greps every output for them: stderr, stdout, /metrics, /probes (every page, both
formats), config errors at start, on reload and from `check`. The limits are tested against
the aiohttp server the exporter runs (`exporter.web.server.WebServer`) over real sockets.

Non-root and capabilities are documented in docs/reliability.md#security; the systemd unit's
capability set is asserted in tests/test_deploy.py::test_systemd_unit_is_sandboxed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from prometheus_client import CollectorRegistry

from exporter.config.loader import ConfigErrors, parse_yaml
from exporter.config.model import Network, Proxy
from exporter.exposition.store import Store
from exporter.web import server as web
from exporter.web.server import MAX_HEADERS, MAX_LINE_BYTES, MAX_REQUEST_BYTES, ReloadOutcome, Site
from tests.fakes import peers
from tests.fakes.exporter_process import REPO, ExporterProcess, free_port
from tests.test_network import wait_listening

PROXY_USER = "proxyuser-Q7mZ"
PROXY_PASSWORD = "proxypass-K2vX9-secret"
WRONG_PROXY_PASSWORD = "wrongpass-H4tR8-secret"
WEB_USER = "prometheus"
WEB_PASSWORD = "webpass-N6pL3-secret"
WEB_HASH = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
#: What must never appear in any output. The bcrypt hash is not the password, but it is what
#: an attacker would brute-force, so it stays in the file too.
SECRETS = (PROXY_USER, PROXY_PASSWORD, WRONG_PROXY_PASSWORD, WEB_PASSWORD, WEB_HASH)


def test_proxy_repr_and_str_redact_the_credentials() -> None:
    proxy = Proxy(
        scheme="socks5", host="127.0.0.1", port=1080, username=PROXY_USER, password=PROXY_PASSWORD
    )
    for text in (repr(proxy), str(proxy), repr(Network(name="n", proxy=proxy))):
        assert PROXY_USER not in text
        assert PROXY_PASSWORD not in text
        assert "username='<redacted>', password='<redacted>'" in text
    anonymous = Proxy(scheme="socks5", host="127.0.0.1", port=1080)
    assert repr(anonymous).endswith("username=None, password=None)")
    assert proxy.redacted_url == "socks5://<redacted>@127.0.0.1:1080"


def test_config_repr_hides_http_request_headers() -> None:
    token = "Bearer tok-Q8wZ1-secret"
    config = parse_yaml(
        "services:\n"
        "  s:\n"
        "    endpoints:\n"
        "      e:\n"
        "        {host: example.org, port: 443, checks: [dns, tcp, tls, http],\n"
        f"         http: {{headers: {{Authorization: '{token}'}}}}}}\n"
    )
    http = config.services["s"].endpoints["e"].http
    assert http is not None
    assert http.headers["Authorization"] == token  # kept for the request, just not shown
    assert token not in repr(config)
    assert token not in repr(http)


def test_config_repr_and_errors_redact_the_proxy() -> None:
    url = f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1080"
    config = parse_yaml(
        f"networks: {{p: {{proxy: '{url}'}}}}\n"
        "services: {s: {endpoints: {e: {address: 127.0.0.1, port: 1, checks: [tcp]}}}}\n"
    )
    assert config.networks["p"].proxy is not None
    assert config.networks["p"].proxy.password == PROXY_PASSWORD  # decoded, just not shown
    assert not any(s in repr(config) for s in SECRETS)
    for bad in (
        f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@proxy.example:1080",  # not an IP
        f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1",  # no port
        f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:99999",
        f"socks4://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1080",
        f"socks5h://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1080",
        f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1080/path",
        f"socks5://{PROXY_USER}:@127.0.0.1:1080",
    ):
        with pytest.raises(ConfigErrors) as info:
            parse_yaml(f"networks: {{p: {{proxy: '{bad}'}}}}\nservices: {{}}\n")
        text = str(info.value)
        assert "networks.p.proxy: " in text
        assert PROXY_PASSWORD not in text, text
        assert PROXY_USER not in text, text


# ---- every output of a running exporter


@pytest.fixture
async def socks() -> AsyncIterator[int]:
    """Debian's microsocks on loopback, requiring PROXY_USER / PROXY_PASSWORD."""
    binary = shutil.which("microsocks")
    if binary is None:
        pytest.fail("Debian's microsocks is required (apt-get install microsocks; .ci/run does)")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        binary,
        *("-i", "127.0.0.1", "-p", str(port), "-u", PROXY_USER, "-P", PROXY_PASSWORD),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 5)


def _config(socks_port: int, http_port: int, *, broken: bool = False) -> str:
    good = f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{socks_port}"
    wrong = f"socks5://{PROXY_USER}:{WRONG_PROXY_PASSWORD}@127.0.0.1:{socks_port}"
    # `broken`: the same secrets, in a file with errors next to them and inside the URL.
    extra = (
        f"  typo: {{proxy: 'socks5://{PROXY_USER}:{PROXY_PASSWORD}@proxy.example:1080'}}\n"
        f"  typo2: {{proxy: '{good}', prxy: 1}}\n"
        if broken
        else ""
    )
    return f"""\
interval: 2s
timeout: 1s
networks:
  proxied: {{proxy: '{good}'}}
  wrongpass: {{proxy: '{wrong}'}}
{extra}services:
  local:
    endpoints:
      web: {{address: 127.0.0.1, port: {http_port}, checks: [tcp, http]}}
"""


async def test_secrets_never_appear_in_logs_pages_metrics_or_errors(
    tmp_path: Path, socks: int
) -> None:
    async with peers.Peer(peers.http(body=b"ok")) as server:
        config = tmp_path / "config.yaml"
        config.write_text(_config(socks, server.port))
        web_config = tmp_path / "web.yml"
        web_config.write_text(f"basic_auth_users:\n  {WEB_USER}: '{WEB_HASH}'\n")
        auth = (WEB_USER, WEB_PASSWORD)
        outputs: list[str] = []
        async with ExporterProcess(
            config, "--log.level", "debug", "--web.config.file", str(web_config)
        ) as exporter:
            await exporter.wait_for("ready: every tuple was probed")
            assert (await exporter.get("/metrics"))[0] == 401
            wrong = (WEB_USER, WEB_PASSWORD + "-wrong")
            assert (await exporter.get("/metrics", auth=wrong))[0] == 401
            status, summary = await exporter.get("/probes?format=json", auth=auth)
            assert status == 200
            outputs.append(summary)
            rows = json.loads(summary)["probes"]
            results = {row["network"]: row["result"] for row in rows}
            # The password was really used: the proxy let one network through, not the other.
            assert results == {"proxied": "success", "wrongpass": "proxy_error"}
            for row in rows:
                query = "&".join(
                    f"{k}={row[k]}"
                    for k in ("service", "endpoint", "network", "resolver", "family")
                )
                for fmt in ("json", "html"):
                    status, page = await exporter.get(f"/probes?{query}&format={fmt}", auth=auth)
                    assert status == 200, page
                    outputs.append(page)
            outputs.append((await exporter.get("/probes", auth=auth))[1])
            outputs.append((await exporter.get("/metrics", auth=auth))[1])
            outputs.append((await exporter.get("/", auth=auth))[1])
            # A reload with errors next to the secrets logs every error line.
            config.write_text(_config(socks, server.port, broken=True))
            exporter.signal(signal.SIGHUP)
            await exporter.wait_for("config reload failed")
            await exporter.wait_for('msg="config error"', count=2)
            metrics = (await exporter.get("/metrics", auth=auth))[1]
            assert "messaging_exporter_config_last_reload_successful 0.0" in metrics
            outputs.append(metrics)
            assert await exporter.stop() == 0
        outputs += [exporter.log, exporter.stdout.decode()]
    # `check` and a start on the broken config print the errors and exit 1.
    for argv in (["check"], ["run", "--web.listen-address", f"127.0.0.1:{free_port()}"]):
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "exporter", "--config.file", str(config), *argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
        assert proc.returncode == 1
        assert "networks.typo.proxy: the proxy host" in err.decode()
        outputs += [out.decode(), err.decode()]

    everything = "\n".join(outputs)
    assert "debug" in exporter.log or "level=debug" in exporter.log
    assert "<redacted>" in everything  # the proxy is shown, redacted, on pages and in logs
    leaked = [s for s in SECRETS if s in everything]
    assert not leaked, leaked


# ---- nothing is probed but the config's targets


async def test_no_endpoint_takes_a_target_from_the_request(tmp_path: Path) -> None:
    async with (
        peers.Peer(peers.http(body=b"configured")) as configured,
        peers.Peer(peers.http(body=b"NOT configured")) as other,
    ):
        config = tmp_path / "config.yaml"
        config.write_text(
            f"""\
interval: 2s
timeout: 1s
services:
  local:
    endpoints:
      web: {{address: 127.0.0.1, port: {configured.port}, checks: [tcp, http]}}
"""
        )
        target = f"127.0.0.1:{other.port}"
        async with ExporterProcess(config) as exporter:
            await exporter.wait_for("ready: every tuple was probed")
            for path in (
                f"/probe?target={target}&module=http_2xx",  # blackbox_exporter's endpoint
                f"/probe?target=http://{target}/",
                f"/metrics?target={target}",
                f"/probes?target={target}",
                f"/probes?target={target}&format=json",
                f"/-/reload?target={target}",
            ):
                status, _ = await exporter.get(path)
                assert status in (200, 404, 405), (path, status)
                if path.startswith("/probe?"):
                    assert status == 404
            status, _ = await exporter.post(f"/probe?target={target}")
            assert status in (404, 405)
            # The next round, after the requests: still only the configured peer is dialled.
            rounds = exporter.log.count('msg="round judged"')
            await exporter.wait_for('msg="round judged"', count=rounds + 1)
            assert await exporter.stop() == 0
    assert configured.connections >= 2
    assert other.connections == 0


async def test_lifecycle_is_off_by_default(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "interval: 2s\ntimeout: 1s\n"
        "services: {s: {endpoints: {e: {address: 127.0.0.1, port: 9, checks: [tcp]}}}}\n"
    )
    async with ExporterProcess(config) as exporter:
        await exporter.wait_for("msg=listening")
        status, body = await exporter.post("/-/reload")
        assert status == 403
        assert "--web.enable-lifecycle" in body
        assert await exporter.stop() == 0
    assert "config reloaded" not in exporter.log


# ---- the HTTP server bounds request size and time


@asynccontextmanager
async def serving(*, idle_timeout: float) -> AsyncIterator[int]:
    site = Site(
        registry=CollectorRegistry(),
        store=Store(),
        ready=lambda: True,
        target=lambda key: None,
        target_count=lambda: 0,
        reload=_reload_ok,
        enable_lifecycle=True,
    )
    server = web.WebServer(web.make_app(site), idle_timeout=idle_timeout)
    try:
        addresses = await server.start("127.0.0.1", 0)
        yield addresses[0][1]
    finally:
        await server.stop()


async def _reload_ok() -> ReloadOutcome:
    return ReloadOutcome(ok=True)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    return await reader.read()  # until the server closes


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            return await _read_all(reader)
    finally:
        writer.close()


async def test_too_many_headers_are_refused() -> None:
    async with serving(idle_timeout=5) as port:
        headers = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 10))
        reply = await _exchange(port, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert reply.startswith((b"HTTP/1.1 400 ", b"HTTP/1.0 400 ")), reply[:100]
        ok = await _exchange(
            port, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert ok.startswith(b"HTTP/1.1 200 ")


async def test_too_long_header_line_and_request_line_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    async with serving(idle_timeout=5) as port:
        long_value = b"a" * (MAX_LINE_BYTES + 10)
        reply = await _exchange(port, b"GET / HTTP/1.1\r\nX-Long: " + long_value + b"\r\n\r\n")
        assert reply.startswith((b"HTTP/1.1 400 ", b"HTTP/1.0 400 ")), reply[:100]
        reply = await _exchange(port, b"GET /" + long_value + b" HTTP/1.1\r\n\r\n")
        assert reply[9:12] in (b"400", b"414"), reply[:100]
    # The client's fault: a debug line each, no error, no traceback.
    server_logs = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelno, r.exc_info) for r in server_logs] == [(logging.DEBUG, None)] * 2
    assert all(r.getMessage().startswith("malformed request refused (") for r in server_logs)


async def test_too_large_body_is_refused() -> None:
    async with serving(idle_timeout=5) as port, aiohttp.ClientSession() as session:
        body = b"x" * (MAX_REQUEST_BYTES + 1)
        async with session.post(f"http://127.0.0.1:{port}/-/reload", data=body) as resp:
            assert resp.status == 413
        async with session.post(f"http://127.0.0.1:{port}/-/reload") as resp:
            assert resp.status == 200


async def test_slowloris_headers_are_cut_off_at_the_idle_timeout() -> None:
    """A client dripping one header line every 0.2 s never completes its head: the server
    closes the connection at the idle timeout, and serves other clients meanwhile."""
    idle = 1.0
    async with serving(idle_timeout=idle) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n")
        closed = asyncio.create_task(_read_all(reader))
        try:
            dripped = 0
            while not closed.done() and time.monotonic() - started < 10 * idle:
                try:
                    writer.write(b"X-Drip-%d: a\r\n" % dripped)
                    await writer.drain()
                except ConnectionError:
                    break
                dripped += 1
                await asyncio.wait({closed}, timeout=0.2)
                # Meanwhile another client is served at once.
                if dripped == 2:
                    ok = await _exchange(
                        port, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    )
                    assert ok.startswith(b"HTTP/1.1 200 ")
            reply = await asyncio.wait_for(closed, 5)
            cut_after = time.monotonic() - started
        finally:
            writer.close()
    assert reply == b""  # closed without a response: the head never completed
    assert dripped >= 3  # it really was dripping when cut
    assert idle <= cut_after + 0.05  # the timer is the idle timeout, not something earlier
    assert cut_after < idle + 2.0  # slack for a loaded CI machine, not a speed claim


async def test_idle_connection_without_a_request_is_closed() -> None:
    async with serving(idle_timeout=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with asyncio.timeout(5):
                assert await reader.read() == b""
        finally:
            writer.close()


async def test_slow_post_body_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "BODY_TIMEOUT", 0.5)
    async with serving(idle_timeout=5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            await writer.drain()
            async with asyncio.timeout(5):
                head = await reader.readline()
        finally:
            writer.close()
    assert head.startswith(b"HTTP/1.1 408 "), head


def test_the_default_limits_are_documented() -> None:
    text = (REPO / "docs" / "reliability.md").read_text()
    for value in (
        f"{web.IDLE_TIMEOUT:g} s",
        f"{web.BODY_TIMEOUT:g} s",
        f"{MAX_REQUEST_BYTES:,} bytes",
        f"{MAX_LINE_BYTES:,} bytes",
        f"{MAX_HEADERS} headers",
    ):
        assert value in text, value
