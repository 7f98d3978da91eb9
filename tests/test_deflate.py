"""Deflated pieces joined into one gzip member: any gzip reader gets the joined text back,
whichever runs and column blocks they were combined in."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.exposition.deflate import (
    STORED_BELOW,
    Column,
    Deflated,
    Row,
    Run,
    deflate,
    gzip_chunks,
    gzip_member,
    gzip_size,
    inflate,
    inflated,
    text_size,
)

TEXTS = [
    b"",
    b"a",
    b'messaging_probe_success{endpoint="web",family="4"} 1.0\n' * 300,
    os.urandom(200_000),  # incompressible: stored blocks, more than one
    bytes(range(256)) * 1000,
    b'messaging_probe_success{endpoint="web",family="4",network="default"} 1.0\n',
]


def runs(pieces: list[Deflated], size: int = 2) -> list[Run]:
    """The pieces in runs of `size` (and one of none): a response is made of runs."""
    return [Run.of([]), *(Run.of(pieces[i : i + size]) for i in range(0, len(pieces), size))]


def test_a_member_of_many_pieces_reads_back_with_python_and_checks_crc_and_size() -> None:
    pieces = [deflate(t) for t in TEXTS * 3]
    body = gzip_member(runs(pieces))
    expected = b"".join(TEXTS * 3)
    # gzip.decompress checks the trailer's CRC-32 and size: a wrong combination fails here.
    assert gzip.decompress(body) == expected
    assert inflate(runs(pieces)) == expected
    # One member, not a series: a reader that stops after the first member gets it all.
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert reader.decompress(body) == expected
    assert reader.eof
    assert reader.unused_data == b""


def test_a_short_text_is_stored_and_a_longer_one_compressed() -> None:
    """A line is kept as a stored block (no compressor made), five bytes over its text; the
    text of many lines is compressed."""
    line = TEXTS[-1]
    segment, crc, size = deflate(line)
    assert len(line) < STORED_BELOW
    assert (segment[0], segment[5:], crc, size) == (0, line, zlib.crc32(line), len(line))
    many = line * 10
    assert len(many) >= STORED_BELOW
    assert len(deflate(many)[0]) < len(many) // 3
    edge = b"x" * (STORED_BELOW - 1)
    assert len(deflate(edge)[0]) == STORED_BELOW + 4
    assert gzip.decompress(gzip_member(runs([deflate(t) for t in (line, many, edge)]))) == (
        line + many + edge
    )


def test_a_corrupt_trailer_is_caught() -> None:
    """The trailer is checked by readers: the test above would notice a wrong CRC."""
    body = bytearray(gzip_member(runs([deflate(b"hello\n"), deflate(b"world\n")], 1)))
    body[-8] ^= 1
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(bytes(body))


def test_no_pieces_is_an_empty_text() -> None:
    assert gzip.decompress(gzip_member([])) == b""
    assert inflate([]) == b""


def test_the_system_gzip_reads_it() -> None:
    """Another implementation than Python's: the gzip program (Debian's)."""
    gz = shutil.which("gzip")
    if gz is None:
        pytest.fail("gzip is not installed (scripts/test.sh installs it)")
    pieces = [deflate(t) for t in TEXTS]
    out = subprocess.run(
        [gz, "-dc"], input=gzip_member(runs(pieces)), capture_output=True, check=True
    )
    assert out.stdout == b"".join(TEXTS)


@given(st.lists(st.binary(max_size=5000), max_size=40))
def test_any_pieces_round_trip(texts: list[bytes]) -> None:
    pieces = [deflate(t) for t in texts]
    assert gzip.decompress(gzip_member(runs(pieces))) == b"".join(texts)
    assert inflate(runs(pieces)) == b"".join(texts)


def test_inflated_in_batches_is_the_whole_text() -> None:
    pieces = [deflate(t) for t in TEXTS * 2]
    parts = list(inflated(runs(pieces), batch=1000))
    assert len(parts) > 3
    assert b"".join(parts) == b"".join(TEXTS * 2)
    assert text_size(runs(pieces)) == len(b"".join(TEXTS * 2))


@given(st.lists(st.binary(max_size=5000), max_size=40), st.integers(min_value=1, max_value=20_000))
def test_the_member_in_chunks_is_the_member(texts: list[bytes], batch: int) -> None:
    """A response written chunk by chunk: the same bytes, of the size announced beforehand."""
    pieces = [deflate(t) for t in texts]
    chunks = list(gzip_chunks(runs(pieces), batch=batch))
    body = b"".join(chunks)
    assert body == gzip_member(runs(pieces))
    assert len(body) == gzip_size(runs(pieces))
    assert gzip.decompress(body) == b"".join(texts)
    assert all(len(c) < batch + 2 * (5000 + 64) for c in chunks)  # about `batch`: a run more


def test_large_pieces_come_in_several_chunks() -> None:
    pieces = [deflate(t) for t in TEXTS * 3]
    chunks = list(gzip_chunks(runs(pieces), batch=64 * 1024))
    assert len(chunks) > 3
    assert gzip.decompress(b"".join(chunks)) == b"".join(TEXTS * 3)


def test_a_run_of_pieces_skips_the_empty_slots_and_combines_the_rest() -> None:
    pieces = [deflate(b"a\n"), None, deflate(b"bc\n"), None]
    run = Run.of(pieces)
    assert len(run.segments) == 2
    assert (run.size, run.nbytes) == (5, sum(len(p[0]) for p in pieces if p))
    assert run.crc == zlib.crc32(b"a\nbc\n")


def test_a_column_joins_again_only_the_block_whose_piece_was_replaced() -> None:
    texts = [f"line {i}\n".encode() for i in range(10)]
    pieces = [deflate(t) for t in texts]
    column = Column(pieces, block=4)
    first = column.runs()
    assert len(first) == 3  # blocks of 4, 4 and 2 slots
    assert column.runs() == first  # nothing replaced: every block reused
    column[5] = deflate(b"changed\n")
    second = column.runs()
    assert second[0] is first[0]
    assert second[2] is first[2]
    assert second[1] is not first[1]
    texts[5] = b"changed\n"
    assert inflate(second) == b"".join(texts)


def test_a_column_reads_each_piece_back_and_joins_the_non_empty_slots() -> None:
    pieces = [deflate(b"a\n"), None, deflate(b""), deflate(b"bc\n" * 50), None]
    column = Column(pieces, block=3)
    assert [len(run.segments) for run in column.runs()] == [2, 1]
    assert [column.piece(i) for i in range(len(column))] == pieces
    column[1] = deflate(b"new\n")
    assert column.piece(1) == deflate(b"new\n")  # before the join and after it
    column.runs()
    assert column.piece(1) == deflate(b"new\n")
    assert column.piece(0) == pieces[0]
    with pytest.raises(IndexError):
        column.piece(5)
    with pytest.raises(IndexError):
        column[-1] = None


@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=30),
    st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=300) | st.none())),
    st.integers(min_value=1, max_value=8),
)
def test_a_column_is_its_pieces_in_order_after_any_replacements(
    texts: list[bytes], changes: list[tuple[int, bytes | None]], block: int
) -> None:
    column = Column([deflate(t) for t in texts], block=block)
    slots: list[bytes | None] = list(texts)
    for step, (where, text) in enumerate(changes):
        index = where % len(slots)
        slots[index] = text
        column[index] = None if text is None else deflate(text)
        if step % 3 == 0:  # joined between some changes, as scrapes come between probes
            column.runs()
    expected = b"".join(t for t in slots if t is not None)
    assert len(column) == len(texts)
    assert [column.piece(i) for i in range(len(slots))] == [
        None if t is None else deflate(t) for t in slots
    ]
    assert inflate(column.runs()) == expected
    assert gzip.decompress(gzip_member(column.runs())) == expected


def test_a_column_takes_its_pieces_from_a_generator() -> None:
    texts = [f"line {i}\n".encode() for i in range(10)]
    taken: list[int] = []

    def pieces() -> Iterator[Deflated]:
        for i, text in enumerate(texts):
            taken.append(i)
            yield deflate(text)

    column = Column(pieces(), block=4)
    assert (len(column), taken) == (10, list(range(10)))
    assert [len(run.segments) for run in column.runs()] == [4, 4, 2]
    assert inflate(column.runs()) == b"".join(texts)


@given(st.lists(st.binary(max_size=200) | st.none(), max_size=12), st.data())
def test_a_row_keeps_its_pieces_and_replaces_some(
    texts: list[bytes | None], data: st.DataObject
) -> None:
    pieces = [None if t is None else deflate(t) for t in texts]
    row = Row(pieces)
    assert len(row) == len(pieces)
    assert [row.piece(i) for i in range(len(row))] == pieces
    if not pieces:
        return
    changes = data.draw(
        st.lists(st.tuples(st.integers(0, len(pieces) - 1), st.binary(max_size=50) | st.none()))
    )
    replaced = row.replaced((i, None if t is None else deflate(t)) for i, t in changes)
    expected = list(pieces)
    for i, t in changes:
        expected[i] = None if t is None else deflate(t)
    assert [replaced.piece(i) for i in range(len(replaced))] == expected
    assert [row.piece(i) for i in range(len(row))] == pieces  # the original stays
