"""The command line, in-process (main(argv) -> status) and as a real process."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

import exporter.cli
from exporter import __version__
from exporter.cli import main, parse_args
from exporter.config.loader import ConfigErrors, load
from exporter.config.matrix import Target
from exporter.model.observation import ErrorKind
from tests.conftest import CONFIG_YAML
from tests.fakes.prober import factory

REPO = Path(__file__).resolve().parent.parent
BAD_YAML = "interval: soon\nservices:\n  Telegram: {}\n"


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def expected_errors(path: str) -> list[str]:
    """One line per error, as the loader reports them."""
    with pytest.raises(ConfigErrors) as info:
        load(path)
    assert len(info.value.errors) >= 2
    return [str(e) for e in info.value.errors]


def _refuse_dc1(target: Target) -> ErrorKind | None:
    return ErrorKind.REFUSED if target.key.endpoint == "dc1" else None


# ---- parsing


def test_defaults() -> None:
    options = parse_args([])
    assert options.command == "run"
    assert options.config_file == "config.yaml"
    assert (options.listen_host, options.listen_port) == (None, 10053)
    assert not options.enable_lifecycle
    assert (options.log_level, options.log_format) == ("info", "logfmt")


def test_flags_before_or_after_the_subcommand() -> None:
    before = parse_args(["--config.file", "x.yaml", "--web.enable-lifecycle", "run"])
    after = parse_args(["run", "--config.file", "x.yaml", "--web.enable-lifecycle"])
    assert before == after
    assert before.command == "run"
    assert before.config_file == "x.yaml"
    mixed = parse_args(
        ["--log.level", "debug", "--web.listen-address", "[::1]:9100", "once", "--format", "json"]
    )
    assert mixed.log_level == "debug"
    assert mixed.output_format == "json"
    assert (mixed.listen_host, mixed.listen_port) == ("::1", 9100)
    checked = parse_args(["check", "--web.config.file", "web.yml"])
    assert checked.web_config_file == "web.yml"


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        ("check", "--web.listen-address=:9100"),
        ("check", "--web.enable-lifecycle"),
        ("once", "--web.listen-address=:9100"),
        ("once", "--web.config.file=web.yml"),
    ],
)
def test_commands_that_serve_nothing_take_no_serving_flags(
    command: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args([command, flag])
    assert exited.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args([command, "--help"])
    shown = capsys.readouterr().out
    assert flag.split("=")[0] not in shown
    # given on both sides, the later one wins
    assert parse_args(["--config.file", "a", "run", "--config.file", "b"]).config_file == "b"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--web.listen-address", "10053", "check"], "no port"),
        (["--web.listen-address", "::1:80"], "brackets"),
        (["--log.level", "trace"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"messaging-exporter {__version__}\n"


# ---- check


def test_check_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIG_YAML)
    assert main(["check", "--config.file", path]) == 0
    out, err = capsys.readouterr()
    assert out == (
        f"{path}: OK, 2 services, 3 endpoints, 1 resolvers, 1 networks, "
        "3 tuples (endpoints \N{MULTIPLICATION SIGN} networks \N{MULTIPLICATION SIGN} "
        "resolvers \N{MULTIPLICATION SIGN} families)\n"
    )
    assert err == ""


def test_check_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BAD_YAML)
    assert main(["--config.file", path, "check"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == expected_errors(path)
    assert err.startswith("interval: ")
    assert "services.Telegram: " in err


@pytest.mark.parametrize(
    ("network", "line"),
    [
        ("{interface: mx-nosuch0}", 'networks.wg0.interface: no such interface "mx-nosuch0"'),
        ("{netns: mx-nosuch-ns}", 'networks.wg0.netns: no such network namespace "mx-nosuch-ns"'),
        # TEST-NET-1 is on no interface here: the bind fails locally, no packet is sent.
        ("{source_address: 192.0.2.10}", "networks.wg0.source_address: 192.0.2.10 is not an "
         "address of this host"),
    ],
)  # fmt: skip
def test_check_refuses_a_network_the_host_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], network: str, line: str
) -> None:
    """A typo in a network is an error of `check` (and of start-up), not a shutdown paged at
    run time: one line naming the key, exit 1."""
    yaml = CONFIG_YAML.replace("  direct: {}\n", f"  direct: {{}}\n  wg0: {network}\n")
    path = write(tmp_path, yaml)
    assert main(["check", "--config.file", path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == line + "\n"
    assert main(["--config.file", path, "--web.listen-address=127.0.0.1:0"]) == 1


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.yaml")
    assert main(["check", "--config.file", missing]) == 1
    assert capsys.readouterr().err == f"{missing}: no such file\n"


# ---- once


def test_once_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIG_YAML)
    make, built = factory(error=_refuse_dc1)
    # dc1 refused on the only network: an outage, not a block: exit 2
    assert main(["once", "--config.file", path, "--log.level", "error"], prober_factory=make) == 2
    out = capsys.readouterr().out
    *lines, last = out.splitlines()
    assert last == "once: 3 tuples, 2 ok, 1 failing (outage, failure or network down); exit 2"
    assert lines[0].split() == [
        "SERVICE",
        "ENDPOINT",
        "NETWORK",
        "RESOLVER",
        "FAMILY",
        "RESULT",
        "VERDICT",
        "FAILED",
        "DNS_MS",
        "CONNECT_MS",
        "TLS_MS",
        "HTTP_MS",
        "QUIC_MS",
        "STUN_MS",
        "MTPROTO_MS",
        "TOTAL_MS",
    ]
    rows = {tuple(line.split()[:2]): line.split() for line in lines[1:]}
    assert set(rows) == {("signal", "chat"), ("telegram", "dc1"), ("telegram", "web")}
    # One network, refused: no control got further, so an outage, not a block.
    assert rows[("telegram", "dc1")][5:9] == ["refused", "down", "connect", "10.0"]
    assert rows[("telegram", "dc1")][9:13] == ["-", "-", "-", "-"]
    assert rows[("telegram", "web")][5:] == [
        "success",
        "ok",
        "-",
        "10.0",
        "20.0",
        "30.0",
        "40.0",
        "-",  # no quic check
        "-",  # no stun check
        "-",  # no mtproto check
        "100.0",
    ]
    assert len(built) == 1
    assert built[0].closed


def test_once_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIG_YAML)
    make, _ = factory(error=_refuse_dc1)
    assert main(["--config.file", path, "once", "--format", "json"], prober_factory=make) == 2
    captured = capsys.readouterr()
    assert captured.err.rstrip().endswith("; exit 2")  # the summary: stdout stays JSON
    data = json.loads(captured.out)
    assert [(d["service"], d["endpoint"], d["result"]) for d in data] == [
        ("signal", "chat", "success"),
        ("telegram", "dc1", "refused"),
        ("telegram", "web", "success"),
    ]
    assert data[1]["failed_phase"] == "connect"
    assert data[2]["phases_ms"]["tls"] == 30.0
    # each probe is logged at debug only: nothing of it at the default level
    assert 'msg="probe failed"' not in captured.err
    main(["--config.file", path, "--log.level", "debug", "once", "--format", "json"],
         prober_factory=make)  # fmt: skip
    debug = capsys.readouterr().err
    assert 'msg="probe failed"' in debug
    assert "endpoint=dc1" in debug


def test_once_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BAD_YAML)
    make, built = factory()
    assert main(["once", "--config.file", path], prober_factory=make) == 3  # ONCE_EXIT
    assert built == []
    assert "interval" in capsys.readouterr().err


# ---- as a process


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


async def _exporter(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env=_env(),
    )


async def test_process_version() -> None:
    proc = await _exporter("--version")
    out, _err = await proc.communicate()
    assert proc.returncode == 0
    assert out.decode() == f"messaging-exporter {__version__}\n"


async def test_process_check_bad_config(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_YAML)
    proc = await _exporter("--config.file", path, "check")
    out, err = await proc.communicate()
    assert proc.returncode == 1
    assert out == b""
    assert err.decode().splitlines() == expected_errors(path)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local TCP port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _read_until(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> None:
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError(f"stream ended before {needle!r}; saw:\n" + "".join(seen))
        seen.append(line)
        if needle in line:
            return


async def test_process_serves_reloads_and_stops_on_sigterm(
    tmp_path: Path, closed_port: int
) -> None:
    # The real prober, aimed only at 127.0.0.1 (a port that refuses): no packet leaves the host.
    yaml = f"""\
interval: 2s
timeout: 1s
services:
  local:
    endpoints:
      refused: {{address: 127.0.0.1, port: {closed_port}, checks: [tcp]}}
"""
    path = write(tmp_path, yaml)
    port = _free_port()
    proc = await _exporter(
        "run", "--config.file", path, "--web.listen-address", f"127.0.0.1:{port}"
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(30):
            await _read_until(proc.stderr, "msg=listening", seen)
            await _read_until(proc.stderr, 'msg="ready: every tuple was probed"', seen)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/-/ready") as resp:
                    assert resp.status == 200
                async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    metrics = await resp.text()
            assert 'endpoint="refused"' in metrics
            proc.send_signal(signal.SIGHUP)
            await _read_until(proc.stderr, 'msg="config reloaded"', seen)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
            assert time.monotonic() - t0 < 5.0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, "".join(seen)


def test_run_on_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIG_YAML)
    make, built = factory()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status = main(
            ["run", "--config.file", path, "--web.listen-address", f"127.0.0.1:{port}"],
            prober_factory=make,
        )
    assert status == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert built[0].closed


TWO_NETWORKS = CONFIG_YAML.replace("  direct: {}\n", "  direct: {}\n  censor: {}\n")


@pytest.mark.parametrize(
    ("error", "status", "summary"),
    [
        (None, 0, "once: 6 tuples, 6 ok; exit 0"),
        (
            # dc1 refused on censor only: it connects on direct, so censor blocks it
            lambda t: (
                ErrorKind.REFUSED if t.key.endpoint == "dc1" and t.key.network == "censor" else None
            ),
            1,
            "once: 6 tuples, 5 ok, 1 blocked; blocked: telegram on censor: tcp_blocked; exit 1",
        ),
        (
            lambda t: ErrorKind.TIMEOUT if t.key.network == "censor" else None,
            2,
            "once: 6 tuples, 3 ok, 3 failing (outage, failure or network down), "
            "networks down: censor; exit 2",
        ),
    ],
    ids=["all-ok", "blocked", "network-down"],
)
def test_once_exit_status_says_what_it_found(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    error: Callable[[Target], ErrorKind | None] | None,
    status: int,
    summary: str,
) -> None:
    path = write(tmp_path, TWO_NETWORKS)
    make, _ = factory(error=error) if error is not None else factory()
    assert main(["once", "--config.file", path], prober_factory=make) == status
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == summary
    assert captured.err == ""  # quiet by default: no log line at all in a normal run


def test_once_with_a_bad_config_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BAD_YAML)
    assert main(["once", "--config.file", path], prober_factory=factory()[0]) == 3
    assert capsys.readouterr().err.splitlines() == expected_errors(path)
    # `check` keeps 1 for the same file
    assert main(["check", "--config.file", path]) == 1


def test_importing_the_main_module_does_not_start_the_exporter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pkgutil's walks, pydoc and tests import `exporter.__main__`; only `-m` may run it."""
    calls: list[tuple[object, ...]] = []

    def recorded(*argv: object) -> int:
        calls.append(argv)
        return 0

    monkeypatch.setattr(exporter.cli, "main", recorded)
    monkeypatch.delitem(sys.modules, "exporter.__main__", raising=False)
    importlib.import_module("exporter.__main__")
    assert calls == []
