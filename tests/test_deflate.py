"""Deflated pieces joined into one gzip member: any gzip reader gets the joined text back."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.deflate import (
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
]


def test_a_member_of_many_pieces_reads_back_with_python_and_checks_crc_and_size() -> None:
    pieces = [deflate(t) for t in TEXTS * 3]
    body = gzip_member(pieces)
    expected = b"".join(TEXTS * 3)
    # gzip.decompress checks the trailer's CRC-32 and size: a wrong combination fails here.
    assert gzip.decompress(body) == expected
    assert inflate(pieces) == expected
    # One member, not a series: a reader that stops after the first member gets it all.
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert reader.decompress(body) == expected
    assert reader.eof
    assert reader.unused_data == b""


def test_a_corrupt_trailer_is_caught() -> None:
    """The trailer is checked by readers: the test above would notice a wrong CRC."""
    body = bytearray(gzip_member([deflate(b"hello\n"), deflate(b"world\n")]))
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
    out = subprocess.run([gz, "-dc"], input=gzip_member(pieces), capture_output=True, check=True)
    assert out.stdout == b"".join(TEXTS)


@given(st.lists(st.binary(max_size=5000), max_size=40))
def test_any_pieces_round_trip(texts: list[bytes]) -> None:
    pieces = [deflate(t) for t in texts]
    assert gzip.decompress(gzip_member(pieces)) == b"".join(texts)
    assert inflate(pieces) == b"".join(texts)


def test_inflated_in_batches_is_the_whole_text() -> None:
    pieces = [deflate(t) for t in TEXTS * 2]
    parts = list(inflated(pieces, batch=1000))
    assert len(parts) > 3
    assert b"".join(parts) == b"".join(TEXTS * 2)
    assert text_size(pieces) == len(b"".join(TEXTS * 2))


@given(st.lists(st.binary(max_size=5000), max_size=40), st.integers(min_value=1, max_value=20_000))
def test_the_member_in_chunks_is_the_member(texts: list[bytes], batch: int) -> None:
    """A response written chunk by chunk: the same bytes, of the size announced beforehand."""
    pieces = [deflate(t) for t in texts]
    chunks = list(gzip_chunks(pieces, batch=batch))
    body = b"".join(chunks)
    assert body == gzip_member(pieces)
    assert len(body) == gzip_size(pieces)
    assert gzip.decompress(body) == b"".join(texts)
    assert all(len(c) < batch + 5000 + 64 for c in chunks)  # a chunk holds about `batch`


def test_large_pieces_come_in_several_chunks() -> None:
    pieces = [deflate(t) for t in TEXTS * 3]
    chunks = list(gzip_chunks(pieces, batch=64 * 1024))
    assert len(chunks) > 3
    assert gzip.decompress(b"".join(chunks)) == b"".join(TEXTS * 3)
