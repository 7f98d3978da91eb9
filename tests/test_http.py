"""The HTTP/1.1 exchange (exporter.probes.http) against scripted byte streams: framing, caps, and
the verdicts (status, body match, protocol error, EOF). Real sockets are in test_probe.py."""

from __future__ import annotations

import re
from types import MappingProxyType

import pytest

from exporter.config.model import HttpOptions, StatusRange
from exporter.model.observation import ErrorKind
from exporter.probes.http import (
    BODY_HEAD_BYTES,
    MAX_HEAD_BYTES,
    MAX_HEADER_VALUE,
    MAX_HEADERS_KEPT,
    HttpExchange,
    authority,
)

UA = "messaging-exporter/test"


class ScriptedStream:
    """A ByteStream whose peer sends `chunks` in order, then closes (or raises `then`)."""

    def __init__(self, *chunks: bytes, then: BaseException | None = None) -> None:
        self.chunks = list(chunks)
        self.then = then
        self.sent = bytearray()
        self.reads = 0

    async def send(self, data: bytes) -> None:
        self.sent += data

    async def recv(self, max_bytes: int) -> bytes:
        self.reads += 1
        if self.chunks:
            chunk = self.chunks.pop(0)
            if len(chunk) > max_bytes:
                self.chunks.insert(0, chunk[max_bytes:])
                chunk = chunk[:max_bytes]
            return chunk
        if self.then is not None:
            raise self.then
        return b""


class EndlessStream:
    """A peer that sends `head` then repeats `filler` for ever; counts the bytes it gave."""

    def __init__(self, head: bytes, filler: bytes) -> None:
        self.head = head
        self.filler = filler
        self.given = 0

    async def send(self, data: bytes) -> None:
        pass

    async def recv(self, max_bytes: int) -> bytes:
        chunk = self.head or self.filler * max(1, max_bytes // len(self.filler))
        self.head = b""
        self.given += len(chunk)
        return chunk


def exchange(options: HttpOptions | None = None, *, tls: bool = True) -> HttpExchange:
    return HttpExchange(
        options or HttpOptions(),
        authority="example.test",
        scheme="https" if tls else "http",
        user_agent=UA,
    )


def response(status: int = 200, body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status} Whatever\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


@pytest.mark.parametrize(
    ("host", "port", "tls", "expected"),
    [
        ("web.telegram.org", 443, True, "web.telegram.org"),
        ("web.telegram.org", 8443, True, "web.telegram.org:8443"),
        ("149.154.167.51", 443, False, "149.154.167.51:443"),
        ("149.154.167.51", 80, False, "149.154.167.51"),
        ("2001:db8::1", 443, True, "[2001:db8::1]"),
        ("2001:db8::1", 80, True, "[2001:db8::1]:80"),
    ],
)
def test_authority(host: str, port: int, tls: bool, expected: str) -> None:
    assert authority(host, port, tls=tls) == expected


async def test_request_is_one_get_with_close() -> None:
    stream = ScriptedStream(response())
    obs = await exchange().run(stream)
    assert obs.error is None
    head = bytes(stream.sent).decode()
    lines = head.split("\r\n")
    assert lines[0] == "GET / HTTP/1.1"
    assert "Host: example.test" in lines
    assert f"User-Agent: {UA}" in lines
    assert "Connection: close" in lines
    assert head.endswith("\r\n\r\n")


async def test_configured_headers_override_defaults_but_not_connection() -> None:
    options = HttpOptions(
        method="HEAD",
        path="/v1/ping?x=1",
        headers=MappingProxyType(
            {"host": "front.example", "X-Probe": "1", "Connection": "keep-alive"}
        ),
    )
    stream = ScriptedStream(b"HTTP/1.1 204 No Content\r\n\r\n")
    obs = await exchange(options).run(stream)
    assert obs.error is None
    assert obs.status == 204
    lines = bytes(stream.sent).decode().split("\r\n")
    assert lines[0] == "HEAD /v1/ping?x=1 HTTP/1.1"
    assert "host: front.example" in lines
    assert "Host: example.test" not in lines
    assert "X-Probe: 1" in lines
    assert "Connection: close" in lines
    assert "Connection: keep-alive" not in lines


async def test_success_keeps_status_reason_headers_body() -> None:
    stream = ScriptedStream(response(200, b"hello world", b"Server: test\r\n"))
    obs = await exchange().run(stream)
    assert obs.error is None
    assert (obs.status, obs.reason) == (200, "Whatever")
    assert ("server", "test") in obs.headers
    assert obs.body_bytes == 11
    assert obs.body_head == b"hello world"
    assert not obs.body_truncated
    assert obs.url == "https://example.test/"
    assert obs.method == "GET"


async def test_response_split_in_single_bytes() -> None:
    data = response(200, b"abc")
    obs = await exchange().run(ScriptedStream(*(data[i : i + 1] for i in range(len(data)))))
    assert obs.error is None
    assert obs.body_head == b"abc"


async def test_chunked_body_and_informational_response() -> None:
    stream = ScriptedStream(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    obs = await exchange().run(stream)
    assert obs.error is None
    assert obs.body_head == b"hello world"


async def test_headers_kept_are_bounded() -> None:
    extra = b"".join(f"X-H{i}: {'v' * 500}\r\n".encode() for i in range(40))
    obs = await exchange().run(ScriptedStream(response(200, b"", extra)))
    assert obs.error is None
    assert len(obs.headers) == MAX_HEADERS_KEPT
    assert all(len(v) <= MAX_HEADER_VALUE for _, v in obs.headers)


@pytest.mark.parametrize("status", [403, 451, 500, 200])
async def test_status_outside_expect_status(status: int) -> None:
    options = HttpOptions(expect_status=(StatusRange(low=200, high=200),))
    obs = await exchange(options).run(ScriptedStream(response(status, b"no")))
    if status == 200:
        assert obs.error is None
        return
    assert obs.error is ErrorKind.HTTP_STATUS
    assert obs.status == status
    assert obs.body_head == b"no"  # the body is read even so: blockpage evidence


async def test_body_match_wins_over_status() -> None:
    options = HttpOptions(fail_if_body_matches=(re.compile(rb"blocked by order \d+"),))
    blockpage = b"<html>This site is blocked by order 42</html>"
    obs = await exchange(options).run(ScriptedStream(response(403, blockpage)))
    assert obs.error is ErrorKind.HTTP_BODY_MATCH
    assert obs.status == 403
    ok = await exchange(options).run(ScriptedStream(response(200, b"fine")))
    assert ok.error is None


async def test_body_cap_stops_reading_without_error() -> None:
    stream = EndlessStream(b"HTTP/1.1 200 OK\r\n\r\n", b"z")
    options = HttpOptions(body_limit=100_000)
    obs = await exchange(options).run(stream)
    assert obs.error is None
    assert obs.body_truncated
    assert obs.body_bytes == 100_000
    assert len(obs.body_head) == BODY_HEAD_BYTES
    assert stream.given < 100_000 + 2 * 64 * 1024  # stopped right after the cap


async def test_body_exactly_at_limit_is_not_truncated() -> None:
    obs = await exchange(HttpOptions(body_limit=5)).run(ScriptedStream(response(200, b"12345")))
    assert obs.error is None
    assert (obs.body_bytes, obs.body_truncated) == (5, False)


async def test_body_match_sees_only_the_capped_body() -> None:
    options = HttpOptions(body_limit=10, fail_if_body_matches=(re.compile(rb"needle"),))
    obs = await exchange(options).run(ScriptedStream(response(200, b"0123456789needle")))
    assert obs.error is None
    assert obs.body_truncated


async def test_endless_headers_fail_as_protocol_error_with_bounded_memory() -> None:
    stream = EndlessStream(b"HTTP/1.1 200 OK\r\n", b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
    obs = await exchange().run(stream)
    assert obs.error is ErrorKind.HTTP_PROTOCOL
    assert stream.given < MAX_HEAD_BYTES + 2 * 64 * 1024
    assert obs.detail is not None
    assert len(obs.detail) <= 300


async def test_endless_status_line_fails_as_protocol_error() -> None:
    stream = EndlessStream(b"HTTP/1.1 200 ", b"O")
    obs = await exchange().run(stream)
    assert obs.error is ErrorKind.HTTP_PROTOCOL


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x16\x03\x01\x00\x05hello\r\n\r\n",
        b"HTTP/1.1 abc Bad\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    ],
)
async def test_garbage_is_protocol_error(garbage: bytes) -> None:
    obs = await exchange().run(ScriptedStream(garbage))
    assert obs.error is ErrorKind.HTTP_PROTOCOL


async def test_garbage_without_newline_then_close_is_protocol_error() -> None:
    obs = await exchange().run(ScriptedStream(b"\x00\x01\x02 nonsense"))
    assert obs.error is ErrorKind.HTTP_PROTOCOL


async def test_close_before_response_is_eof() -> None:
    obs = await exchange().run(ScriptedStream())
    assert obs.error is ErrorKind.EOF
    assert obs.status is None


async def test_close_mid_body_is_eof_and_keeps_the_head() -> None:
    obs = await exchange().run(ScriptedStream(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
    assert obs.error is ErrorKind.EOF
    assert obs.status == 200
    assert obs.body_head == b"abc"


async def test_close_delimited_body_ends_at_eof() -> None:
    obs = await exchange().run(ScriptedStream(b"HTTP/1.0 200 OK\r\n\r\nall of it"))
    assert obs.error is None
    assert obs.body_head == b"all of it"


async def test_reset_while_reading() -> None:
    obs = await exchange().run(
        ScriptedStream(b"HTTP/1.1 200 OK\r\n", then=ConnectionResetError(104, "reset"))
    )
    assert obs.error is ErrorKind.RESET


async def test_invalid_configured_request_is_other() -> None:
    options = HttpOptions(headers=MappingProxyType({"X-Bad": "a\r\nInjected: 1"}))
    stream = ScriptedStream(response())
    obs = await exchange(options).run(stream)
    assert obs.error is ErrorKind.OTHER
    assert stream.sent == b""


async def test_observation_before_run_is_empty() -> None:
    obs = exchange().observation(error=ErrorKind.TIMEOUT, detail="x")
    assert obs.status is None
    assert obs.duration == 0.0
    assert obs.error is ErrorKind.TIMEOUT
