"""How the store keeps a tuple's last observation (exporter.exposition.compact): read back as
it was recorded, smaller than it was, and with the strings that repeat over tuples shared."""

from __future__ import annotations

import dataclasses
import sys

from hypothesis import given
from hypothesis import strategies as st

from exporter.exposition.compact import Kept
from exporter.model.observation import (
    DnsObservation,
    HttpObservation,
    Observation,
    TlsObservation,
    TupleKey,
)

LINES = (
    "+0.001s dns: A web.telegram.org via udp://192.0.2.53:53 NOERROR 149.154.167.99",
    '+0.020s tls sni=web.telegram.org: reset in 3.2 ms: "ECONNRESET"',
    "a line\nwith a newline, a \x00 and a \x1f inside",
    "ünïcödé ✓ ✗ ↓",
    "",
)
PAGE = (
    b"<!DOCTYPE html><html><head><title>Telegram Web</title>"
    + b'<meta name="viewport" content="width=device-width, initial-scale=1">' * 40
)[:4096]
KEY = TupleKey(service="s", endpoint="e", network="n", resolver="r", family=4)


def _fresh(text: str) -> str:
    """An equal string that is not the same object (as a socket read makes one)."""
    return "".join(list(text))


HEADERS = (("server", "nginx"), ("content-type", "text/html"))


def _observation(
    *,
    lines: tuple[str, ...] = LINES,
    body: bytes = PAGE,
    headers: tuple[tuple[str, str], ...] = HEADERS,
) -> Observation:
    return Observation(
        key=KEY,
        started=1.0,
        finished=2.0,
        dns=DnsObservation(
            qname="web.telegram.org",
            qtype="A",
            server=_fresh("udp://192.0.2.53:53"),
            answers=(_fresh("149.154.167.99"),),
        ),
        tls=TlsObservation(
            server_name="web.telegram.org",
            version=_fresh("TLSv1.3"),
            cipher=_fresh("TLS_AES_256_GCM_SHA384"),
            alpn=_fresh("http/1.1"),
        ),
        http=HttpObservation(
            method="GET",
            url=_fresh("https://web.telegram.org/"),
            status=200,
            headers=tuple((_fresh(name), _fresh(value)) for name, value in headers),
            body_head=body,
        ),
        log=lines,
    )


@given(
    st.lists(st.text(max_size=200), max_size=60),
    st.binary(max_size=4096),
    st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=30),
)
def test_any_observation_reads_back_as_recorded(
    lines: list[str], body: bytes, headers: list[tuple[str, str]]
) -> None:
    obs = _observation(lines=tuple(lines), body=body, headers=tuple(headers))
    assert Kept.of(obs).observation() == obs


def test_an_observation_without_http_or_log_reads_back() -> None:
    obs = Observation(key=KEY, started=1.0, finished=2.0)
    kept = Kept.of(obs)
    assert kept.log == kept.body == b""
    assert kept.observation() == obs


def test_the_bare_observation_answers_all_but_the_log_body_and_headers() -> None:
    obs = _observation()
    bare = Kept.of(obs).bare
    assert bare.log == ()
    assert bare.http is not None
    assert obs.http is not None
    assert bare.http.body_head == b""
    assert bare.http.headers == ()
    assert dataclasses.replace(bare.http, body_head=PAGE, headers=obs.http.headers) == obs.http
    assert bare.finished == obs.finished
    assert bare.tls == obs.tls


def test_log_and_page_are_kept_in_less_than_half_their_size() -> None:
    """The point of packing: every tuple keeps ~6 log lines and up to 4 KiB of page."""
    lines = tuple(f"{line} (attempt {i})" for i, line in enumerate(LINES[:2] * 3))
    kept = Kept.of(_observation(lines=lines))
    separate = sys.getsizeof(lines) + sum(sys.getsizeof(s) for s in lines)
    assert sys.getsizeof(kept.log) < separate / 2
    assert len(kept.body) < len(PAGE) / 2


def test_headers_are_kept_flat_in_less_than_half_the_pairs_size() -> None:
    """A real response has 10-20 headers: a tuple per pair would cost more than the flat
    tuple that keeps their (shared) strings."""
    headers = tuple((f"x-header-{i}", "value") for i in range(16))
    obs = _observation(headers=headers)
    assert obs.http is not None
    pairs = sys.getsizeof(obs.http.headers) + sum(sys.getsizeof(p) for p in obs.http.headers)
    assert sys.getsizeof(Kept.of(obs).headers) < pairs / 2


def test_strings_that_repeat_over_tuples_are_shared() -> None:
    """Two tuples' observations, built from separate reads, keep one copy of each string."""
    kept_a, kept_b = Kept.of(_observation()), Kept.of(_observation())
    assert len(kept_a.headers) == 2 * len(HEADERS)
    for text_a, text_b in zip(kept_a.headers, kept_b.headers, strict=True):
        assert text_a is text_b
    a, b = kept_a.bare, kept_b.bare
    assert a.http is not None
    assert b.http is not None
    assert a.http.url is b.http.url
    assert a.dns is not None
    assert b.dns is not None
    assert a.dns.server is b.dns.server
    assert a.dns.answers[0] is b.dns.answers[0]
    assert a.tls is not None
    assert b.tls is not None
    assert a.tls.version is b.tls.version
    assert a.tls.cipher is b.tls.cipher


def test_judging_reads_the_observation_without_its_log() -> None:
    obs = _observation()
    judged = Kept.of(obs).observation(log=False)
    assert judged.log == ()
    assert judged == dataclasses.replace(obs, log=())
