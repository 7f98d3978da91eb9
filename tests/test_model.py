"""The result model's own behaviour: what every tuple keeps packed (a probe's log, a page's
first bytes) reads back as it was given."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.model.observation import NO_LOG, HttpObservation, Log, pack, unpack

LINES = (
    "+0.001s dns: A web.telegram.org via udp://192.0.2.53:53 NOERROR 149.154.167.99",
    '+0.020s tls sni=web.telegram.org: reset in 3.2 ms: "ECONNRESET"',
    "a line\nwith a newline, a \x00 and a \x1f inside",
    "ünïcödé ✓ ✗ ↓",
    "",
)


@given(st.lists(st.text(max_size=200), max_size=60))
def test_any_lines_read_back_in_order(lines: list[str]) -> None:
    log = Log(lines)
    assert list(log) == lines
    assert len(log) == len(lines)
    assert log == Log(lines)
    assert hash(log) == hash(Log(lines))


def test_indexing_and_slicing_are_the_lines() -> None:
    log = Log(LINES)
    assert log[0] == LINES[0]
    assert log[-1] == ""
    assert log[1:3] == LINES[1:3]
    assert LINES[2] in log
    with pytest.raises(IndexError):
        log[len(LINES)]


def test_an_empty_log_is_empty_and_false() -> None:
    assert len(NO_LOG) == 0
    assert not NO_LOG
    assert list(NO_LOG) == []
    assert Log([]) == NO_LOG


def test_different_lines_are_not_equal() -> None:
    assert Log(["a"]) != Log(["b"])
    assert Log(["a", "b"]) != Log(["a"])
    assert Log(["a"]) != ("a",)  # only a Log: equal objects must hash alike


def test_the_packed_log_weighs_less_than_its_lines() -> None:
    """The point of packing: a tuple of ~6 lines kept per tuple."""
    lines = [f"{line} (attempt {i})" for i, line in enumerate(LINES[:2] * 3)]
    separate = sys.getsizeof(tuple(lines)) + sum(sys.getsizeof(s) for s in lines)
    log = Log(lines)
    packed = sys.getsizeof(log) + sys.getsizeof(log._packed)
    assert packed < separate / 2


@given(st.binary(max_size=5000))
def test_packed_bytes_read_back(data: bytes) -> None:
    assert unpack(pack(data)) == data


def test_empty_bytes_stay_empty() -> None:
    assert pack(b"") == b""
    assert unpack(b"") == b""
    assert HttpObservation(method="GET", url="https://a.test/").body_head == b""


def test_a_pages_head_is_kept_packed_and_read_whole() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>Telegram Web</title>"
        + b'<meta name="viewport" content="width=device-width, initial-scale=1">' * 40
    )[:4096]
    http = HttpObservation(method="GET", url="https://a.test/", body_packed=pack(page))
    assert http.body_head == page
    assert len(http.body_packed) < len(page) / 2
