"""Log lines: logfmt and JSON, levels, and no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from exporter.config.model import Proxy
from exporter.model.observation import ErrorKind, TupleKey
from exporter.runtime.logs import configure, fields, make_handler, observation_fields
from tests.fakes.prober import make_observation

KEY = TupleKey(service="telegram", endpoint="web", network="direct", resolver="google", family=6)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("exporter.test_logs")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    log.handlers.clear()
    log.propagate = True


def emit(logger: logging.Logger, fmt: str, level: str, call: str, msg: str, **kv: object) -> str:
    stream = io.StringIO()
    handler = make_handler(level=level, fmt=fmt, stream=stream)
    logger.addHandler(handler)
    try:
        getattr(logger, call)(msg, extra=fields(**kv))
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_logfmt_line(logger: logging.Logger) -> None:
    line = emit(logger, "logfmt", "info", "info", "probe failed", service="telegram", n=3, ok=False)
    assert line.endswith("\n")
    parts = line.strip().split(" ", 1)
    assert parts[0].startswith("ts=")
    assert parts[0].endswith("Z")
    assert parts[1] == (
        'level=info logger=exporter.test_logs msg="probe failed" service=telegram n=3 ok=false'
    )


def test_logfmt_quoting(logger: logging.Logger) -> None:
    line = emit(
        logger,
        "logfmt",
        "info",
        "warning",
        "x",
        empty="",
        spaced="a b",
        quoted='say "hi"',
        eq="a=b",
        nl="line1\nline2",
        ctrl="a\x00b",
        none=None,
    )
    assert "level=warn " in line
    assert 'empty="" ' in line
    assert 'spaced="a b" ' in line
    assert 'quoted="say \\"hi\\"" ' in line
    assert 'eq="a=b" ' in line
    assert 'nl="line1\\nline2" ' in line
    assert 'ctrl="a\\u0000b" ' in line
    assert line.rstrip("\n").endswith('none=""')
    assert line.count("\n") == 1


def test_json_line(logger: logging.Logger) -> None:
    line = emit(logger, "json", "debug", "debug", "probe succeeded", service="signal", ms=1.5)
    data = json.loads(line)
    assert data["level"] == "debug"
    assert data["msg"] == "probe succeeded"
    assert data["service"] == "signal"
    assert data["ms"] == 1.5
    assert data["logger"] == "exporter.test_logs"


def test_level_filter(logger: logging.Logger) -> None:
    assert emit(logger, "logfmt", "warn", "info", "hidden") == ""
    assert emit(logger, "logfmt", "error", "warning", "hidden") == ""
    assert "level=error" in emit(logger, "logfmt", "error", "error", "shown")
    assert emit(logger, "logfmt", "info", "debug", "hidden") == ""


def test_exceptions_are_on_one_logfmt_line(logger: logging.Logger) -> None:
    stream = io.StringIO()
    logger.addHandler(make_handler(level="info", fmt="logfmt", stream=stream))
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it broke")
    out = stream.getvalue()
    assert out.count("\n") == 1
    assert "exc=" in out
    assert "ValueError: boom" in out


def test_proxy_password_is_redacted(logger: logging.Logger) -> None:
    proxy = Proxy(scheme="socks5", host="127.0.0.1", port=1080, username="u", password="hunter2")
    for fmt in ("logfmt", "json"):
        line = emit(logger, fmt, "info", "info", "network", proxy=proxy)
        assert "hunter2" not in line
        assert "<redacted>" in line


def test_observation_fields() -> None:
    ok = observation_fields(make_observation(KEY, total=0.25))
    assert ok == {
        "service": "telegram",
        "endpoint": "web",
        "network": "direct",
        "resolver": "google",
        "family": "6",
        "result": "success",
        "duration_seconds": 0.25,
        "address": "2001:67c:4e8::10",
    }
    failed = observation_fields(make_observation(KEY, error=ErrorKind.REFUSED))
    assert failed["result"] == "refused"
    assert failed["phase"] == "connect"
    assert failed["detail"] == "made up"


def test_bad_level_or_format() -> None:
    with pytest.raises(ValueError, match="level"):
        make_handler(level="verbose", fmt="logfmt")
    with pytest.raises(ValueError, match="format"):
        make_handler(level="info", fmt="xml")


def test_configure_replaces_its_own_handler() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    first = configure(level="info", fmt="logfmt", stream=io.StringIO())
    second = configure(level="debug", fmt="json", stream=io.StringIO())
    try:
        assert first not in root.handlers
        assert second in root.handlers
        assert root.level == logging.DEBUG
    finally:
        root.removeHandler(second)
        root.setLevel(level)
    assert root.handlers == before


def test_a_quic_failure_is_logged_with_its_detail() -> None:
    """The quic check runs last: its failure's exception text is the probe's detail too."""
    import dataclasses

    from exporter.model.observation import Phase, QuicObservation

    passed = make_observation(KEY)
    quic = QuicObservation(
        address="2001:67c:4e8::10",
        port=443,
        server_name="web.telegram.org",
        error=ErrorKind.TIMEOUT,
        detail="no QUIC handshake within 2.5s",
        duration=2.5,
    )
    failed = dataclasses.replace(
        passed, error=ErrorKind.TIMEOUT, failed_phase=Phase.QUIC, quic=quic
    )
    found = observation_fields(failed)
    assert (found["phase"], found["detail"]) == ("quic", "no QUIC handshake within 2.5s")
