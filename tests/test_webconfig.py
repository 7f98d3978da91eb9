"""`--web.config.file`: strict parsing, HTTPS, basic auth, reload, the CLI, and a real
Prometheus scraping over TLS with basic auth. Everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import random
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
import trustme
import yaml

from exporter.cli import main
from exporter.config.loader import MAX_CONFIG_BYTES, ConfigErrors, load
from exporter.config.web import WebConfig, parse
from exporter.config.web import load as load_web_config
from exporter.runtime.app import App, Settings
from tests.conftest import CONFIG_YAML
from tests.fakes.clock import FakeClock
from tests.fakes.prober import factory

PASSWORD = "s3cret"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@dataclass(frozen=True)
class Certs:
    dir: Path
    ca: trustme.CA

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    return Certs(tmp_path, ca)


def errors_of(data: object, base_dir: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        parse(data, base_dir=base_dir)
    return [str(e) for e in info.value.errors]


# ---- parsing


def test_empty_config_is_open_http(tmp_path: Path) -> None:
    assert parse(None, base_dir=tmp_path) == WebConfig()
    assert parse({}, base_dir=tmp_path) == WebConfig()


def test_full_config_resolves_paths_against_its_directory(certs: Certs) -> None:
    (certs.dir / "web.yml").write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": "server.crt",
                    "key_file": "server.key",
                    "client_auth_type": "VerifyClientCertIfGiven",
                    "client_ca_file": "ca.crt",
                    "min_version": "TLS13",
                },
                "basic_auth_users": {"prometheus": HASH},
            }
        )
    )
    config = load_web_config(certs.dir / "web.yml")
    assert config.tls is not None
    assert config.tls.cert_file == str(certs.dir / "server.crt")
    assert config.tls.client_ca_file == str(certs.dir / "ca.crt")
    assert (config.tls.client_auth_type, config.tls.min_version) == (
        "VerifyClientCertIfGiven",
        "TLS13",
    )
    assert dict(config.basic_auth_users) == {"prometheus": HASH}


TLS = {"cert_file": "server.crt", "key_file": "server.key"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"tls_server_config": TLS, "http_server_config": {"http2": True}},
            [
                "http_server_config: unknown key (allowed: tls_server_config, basic_auth_users)",
            ],
        ),
        ([1], ["web config: expected a mapping, got a list"]),
        ({"tls_server_config": "yes"}, ['tls_server_config: expected a mapping, got "yes"']),
        (
            {"tls_server_config": {"cert_file": "server.crt", "cipher_suites": []}},
            [
                "tls_server_config.cipher_suites: unknown key (allowed: cert_file, key_file, "
                "client_auth_type, client_ca_file, min_version, max_version)",
                "tls_server_config.key_file: missing (required with tls_server_config)",
            ],
        ),
        (
            {"tls_server_config": {"cert_file": "nope.crt", "key_file": 3}},
            [
                "tls_server_config.key_file: expected a non-empty string, got 3",
                'tls_server_config.cert_file: "{dir}/nope.crt": no such file',
            ],
        ),
        (
            {"tls_server_config": {**TLS, "client_auth_type": "Sometimes"}},
            [
                'tls_server_config.client_auth_type: unknown policy "Sometimes" (allowed: '
                "NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)",
            ],
        ),
        (
            {"tls_server_config": {**TLS, "client_auth_type": "RequireAnyClientCert"}},
            [
                'tls_server_config.client_auth_type: "RequireAnyClientCert" is not supported '
                "(a client certificate that is never verified); use one of NoClientCert, "
                "VerifyClientCertIfGiven, RequireAndVerifyClientCert",
            ],
        ),
        (
            {"tls_server_config": {**TLS, "client_auth_type": "RequireAndVerifyClientCert"}},
            [
                "tls_server_config.client_ca_file: missing (required by "
                "RequireAndVerifyClientCert)",
            ],
        ),
        (
            {"tls_server_config": {**TLS, "client_ca_file": "ca.crt"}},
            [
                "tls_server_config.client_ca_file: set without a client_auth_type that "
                "verifies client certificates (VerifyClientCertIfGiven or "
                "RequireAndVerifyClientCert)",
            ],
        ),
        (
            {"tls_server_config": {**TLS, "min_version": "TLS14", "max_version": "SSL3"}},
            [
                'tls_server_config.min_version: unknown TLS version "TLS14" (allowed: '
                "TLS10, TLS11, TLS12, TLS13)",
                'tls_server_config.max_version: unknown TLS version "SSL3" (allowed: '
                "TLS10, TLS11, TLS12, TLS13)",
            ],
        ),
        (
            {"tls_server_config": {**TLS, "min_version": "TLS13", "max_version": "TLS12"}},
            ["tls_server_config.max_version: TLS12 is lower than min_version TLS13"],
        ),
        (
            {"tls_server_config": {"cert_file": "ca.crt", "key_file": "server.key"}},
            [
                'tls_server_config.cert_file: cannot use "{dir}/ca.crt" with key_file '
                '"{dir}/server.key": KEY_VALUES_MISMATCH',
            ],
        ),
        (
            {"basic_auth_users": {"alice": "plaintext", "bob": 5, "c:d": HASH}},
            [
                "basic_auth_users.alice: expected a bcrypt hash ($2a$, $2b$ or $2y$, "
                "60 characters), got a string that is not one",
                "basic_auth_users.bob: expected a bcrypt hash ($2a$, $2b$ or $2y$, "
                "60 characters), got 5",
                "basic_auth_users.c:d: a user name must be a non-empty string without ':'",
            ],
        ),
        (
            {"basic_auth_users": ["alice"]},
            ["basic_auth_users: expected a mapping, got a list"],
        ),
    ],
)
def test_bad_web_configs(certs: Certs, data: object, expected: list[str]) -> None:
    assert errors_of(data, certs.dir) == [e.format(dir=certs.dir) for e in expected]


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigErrors) as info:
        load_web_config(missing)
    assert str(info.value) == f"{missing}: no such file"
    bad = tmp_path / "bad.yml"
    bad.write_text("tls_server_config: [\n")
    with pytest.raises(ConfigErrors) as info:
        load_web_config(bad)
    assert str(info.value).startswith(f"{bad}: invalid YAML: ")


def test_duplicate_keys_are_errors_naming_the_key_path(certs: Certs) -> None:
    """Read like the main config: a key given twice is an error, not the last one silently
    winning (here a key file given twice and a second, unhashed password for a user)."""
    path = certs.dir / "web.yml"
    path.write_text(
        "tls_server_config:\n"
        "  cert_file: server.crt\n"
        "  key_file: server.key\n"
        "  key_file: server.key\n"
        "basic_auth_users:\n"
        f"  prometheus: {HASH}\n"
        "  prometheus: plain-text\n"
    )
    with pytest.raises(ConfigErrors) as info:
        load_web_config(path)
    assert [str(e) for e in info.value.errors] == [
        "tls_server_config.key_file: duplicate key (line 4, column 3; first on line 3)",
        "basic_auth_users.prometheus: duplicate key (line 7, column 3; first on line 6)",
        "basic_auth_users.prometheus: expected a bcrypt hash ($2a$, $2b$ or $2y$, 60 "
        "characters), got a string that is not one",
    ]


def test_duplicate_top_level_key_alone_is_an_error(certs: Certs) -> None:
    path = certs.dir / "web.yml"
    path.write_text(f"basic_auth_users:\n  a: {HASH}\nbasic_auth_users:\n  b: {HASH}\n")
    with pytest.raises(ConfigErrors) as info:
        load_web_config(path)
    assert str(info.value) == (
        "basic_auth_users: duplicate key (line 3, column 1; first on line 1)"
    )


def test_web_config_is_read_with_the_config_limits(tmp_path: Path) -> None:
    """Not UTF-8, or larger than the config's limit: one error naming the file."""
    bad = tmp_path / "web.yml"
    bad.write_bytes(b"basic_auth_users:\n  \xff: x\n")
    with pytest.raises(ConfigErrors) as info:
        load_web_config(bad)
    assert str(info.value) == (
        f"{bad}: invalid YAML: not valid UTF-8: byte 0xff at line 2, column 3"
    )
    big = tmp_path / "big.yml"
    big.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigErrors) as info:
        load_web_config(big)
    assert str(info.value).startswith(f"{big}: too large: ")


# ---- serving


def write_web_config(
    certs: Certs, *, tls: bool = True, users: dict[str, str] | None = None
) -> Path:
    data: dict[str, Any] = {}
    if tls:
        data["tls_server_config"] = dict(TLS)
    if users is not None:
        data["basic_auth_users"] = users
    path = certs.dir / "web.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@asynccontextmanager
async def running(
    tmp_path: Path, web_config_file: Path, *, lifecycle: bool = True
) -> AsyncIterator[tuple[App, int]]:
    """The exporter (fake probers, fake clock) listening on 127.0.0.1 with the web config."""
    config_path = tmp_path / "config.yaml"
    config_path.write_text(CONFIG_YAML)
    clock = FakeClock()
    prober_factory, _ = factory(clock=clock)
    app = App(
        settings=Settings(
            config_file=str(config_path),
            listen_host="127.0.0.1",
            listen_port=0,
            enable_lifecycle=lifecycle,
            web_config_file=str(web_config_file),
        ),
        config=load(config_path),
        prober_factory=prober_factory,
        clock=clock,
        rng=random.Random(1),
    )
    addresses = await app.start()
    try:
        yield app, addresses[0][1]
    finally:
        await app.stop()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def get(url: str, ctx: ssl.SSLContext | None = None, **headers: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=ctx or False, headers=headers) as resp,
    ):
        return resp.status, (resp.headers, await resp.text())


async def test_https_serves_metrics(certs: Certs) -> None:
    async with running(certs.dir, write_web_config(certs)) as (_, port):
        status, (_, body) = await get(f"https://127.0.0.1:{port}/metrics", certs.client_context())
        assert status == 200
        assert "messaging_exporter_build_info" in body
        # A client that does not trust the CA refuses the server.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await get(f"https://127.0.0.1:{port}/metrics", ssl.create_default_context())
        # Plain HTTP to the TLS port gets no HTTP answer.
        with pytest.raises(aiohttp.ClientError):
            await get(f"http://127.0.0.1:{port}/metrics")


async def test_basic_auth_on_every_path(certs: Certs) -> None:
    path = write_web_config(certs, users={"prometheus": HASH})
    ctx = certs.client_context()
    async with running(certs.dir, path) as (app, port):
        base = f"https://127.0.0.1:{port}"
        for where in ("/", "/metrics", "/probes", "/-/healthy", "/-/ready"):
            status, (headers, _) = await get(base + where, ctx)
            assert status == 401, where
            assert headers["WWW-Authenticate"] == "Basic"
        for bad in (
            basic("prometheus", "wrong"),
            basic("nobody", PASSWORD),
            {"Authorization": "Basic !!!"},
            {"Authorization": f"Bearer {PASSWORD}"},
        ):
            status, _ = await get(base + "/metrics", ctx, **bad)
            assert status == 401, bad
        checks = app.auth.bcrypt_checks
        for _ in range(3):
            status, _ = await get(base + "/metrics", ctx, **basic("prometheus", PASSWORD))
            assert status == 200
        # one bcrypt check, then the cache answers
        assert app.auth.bcrypt_checks == checks + 1
        status, _ = await get(base + "/-/healthy", ctx, **basic("prometheus", PASSWORD))
        assert status == 200


async def test_basic_auth_without_tls(certs: Certs) -> None:
    path = write_web_config(certs, tls=False, users={"prometheus": HASH})
    async with running(certs.dir, path) as (_, port):
        status, _ = await get(f"http://127.0.0.1:{port}/metrics")
        assert status == 401
        status, _ = await get(f"http://127.0.0.1:{port}/metrics", **basic("prometheus", PASSWORD))
        assert status == 200


async def test_reload_rereads_the_web_config(certs: Certs) -> None:
    path = write_web_config(certs, users={"prometheus": HASH})
    ctx = certs.client_context()
    new_hash = bcrypt.hashpw(b"rotated", bcrypt.gensalt(rounds=4)).decode()
    async with running(certs.dir, path) as (app, port):
        url = f"https://127.0.0.1:{port}/metrics"
        assert (await get(url, ctx, **basic("prometheus", PASSWORD)))[0] == 200
        write_web_config(certs, users={"prometheus": new_hash})
        assert (await app.reload()).ok
        assert (await get(url, ctx, **basic("prometheus", PASSWORD)))[0] == 401
        assert (await get(url, ctx, **basic("prometheus", "rotated")))[0] == 200
        # A bad web config keeps the running one (and the running config).
        path.write_text("basic_auth_users: {prometheus: plain}\n")
        outcome = await app.reload()
        assert not outcome.ok
        assert outcome.errors == (
            "basic_auth_users.prometheus: expected a bcrypt hash ($2a$, $2b$ or $2y$, "
            "60 characters), got a string that is not one",
        )
        assert not app.reload_status().successful
        # TLS cannot be switched off without a restart.
        write_web_config(certs, tls=False, users={"prometheus": new_hash})
        outcome = await app.reload()
        assert outcome.errors == (
            f"{path}: tls_server_config cannot be removed on reload (the listener stays as it "
            "started): restart the exporter",
        )
        assert (await get(url, ctx, **basic("prometheus", "rotated")))[0] == 200


def test_cli_exits_1_on_a_bad_web_config(certs: Certs, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = certs.dir / "config.yaml"
    config_path.write_text(CONFIG_YAML)
    web = certs.dir / "web.yml"
    web.write_text("tls_server_config: {cert_file: server.crt}\nbogus: 1\n")
    argv = ["--config.file", str(config_path), "--web.config.file", str(web)]
    assert main(argv, prober_factory=factory()[0]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "bogus: unknown key (allowed: tls_server_config, basic_auth_users)",
        "tls_server_config.key_file: missing (required with tls_server_config)",
    ]
    write_web_config(certs, users={"prometheus": HASH})
    assert main(["check", *argv]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        f"{web}: OK, TLS (TLS12+, client certificates: NoClientCert), basic auth for 1 user"
    )


# ---- a real Prometheus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prometheus_yml(certs: Certs, port: int, password: str) -> str:
    return yaml.safe_dump(
        {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": "exporter",
                    "scheme": "https",
                    "tls_config": {"ca_file": str(certs.dir / "ca.crt")},
                    "basic_auth": {"username": "prometheus", "password": password},
                    "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                }
            ],
        }
    )


@pytest.fixture
def prometheus_bin() -> str:
    found = shutil.which("prometheus")
    assert found is not None, "prometheus is not installed: apt-get install prometheus"
    return found


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_prometheus(binary: str, config: Path, port: int) -> subprocess.Popen[bytes]:
    """Prometheus on 127.0.0.1:`port`, its data and log (prometheus.log) next to `config`."""
    with (config.parent / "prometheus.log").open("wb") as out:
        return subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={config.parent / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def wait_for_up(base: str, want: str, proc: subprocess.Popen[Any], log: Path) -> None:
    """Poll Prometheus until `up{job="exporter"}` is `want` (at most 30 s)."""
    deadline = time.monotonic() + 30
    last: object = None
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, tail(log)
            try:
                async with session.get(
                    f"{base}/api/v1/query", params={"query": 'up{job="exporter"}'}
                ) as resp:
                    last = await resp.json()
                result = last["data"]["result"] if isinstance(last, dict) else []
                if result and result[0]["value"][1] == want:
                    return
            except aiohttp.ClientError as exc:
                last = exc
            await asyncio.sleep(0.25)
    raise AssertionError(f"up never became {want}: {last}\n{tail(log)}")


async def test_real_prometheus_scrapes_over_tls_with_basic_auth(
    certs: Certs, prometheus_bin: str
) -> None:
    path = write_web_config(certs, users={"prometheus": HASH})
    async with running(certs.dir, path) as (app, port):
        config = certs.dir / "prometheus.yml"
        await asyncio.to_thread(config.write_text, prometheus_yml(certs, port, PASSWORD))
        prom_port = free_port()
        log = certs.dir / "prometheus.log"
        proc = start_prometheus(prometheus_bin, config, prom_port)
        try:
            base = f"http://127.0.0.1:{prom_port}"
            await wait_for_up(base, "1", proc, log)
            assert app.auth.bcrypt_checks == 1  # every later scrape hit the cache
            await asyncio.to_thread(config.write_text, prometheus_yml(certs, port, "wrong"))
            proc.send_signal(1)  # SIGHUP: Prometheus reloads its config
            await wait_for_up(base, "0", proc, log)
        finally:
            await asyncio.to_thread(_stop, proc)
