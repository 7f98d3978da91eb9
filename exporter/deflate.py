"""Text kept deflated in pieces, joined into one gzip member without compressing it again.

A scrape of 10,000 tuples is ~140 MB of text that changes a tuple at a time. Each piece (one
tuple's lines of one family) is compressed once, when it changes, by a fresh raw-deflate
compressor ended with a sync flush: its blocks are not final, it ends on a byte boundary, and
it refers to nothing before it. Such segments concatenate into a valid deflate stream; a
final empty block and the gzip header and trailer (CRC-32 and size of the whole text, the
CRC combined from the pieces' own, RFC 1952) make it one gzip member, which every client
reads (unlike a series of members, which some stop after the first of). Kept deflated, the
text weighs about a seventh; the cost is a larger response than compressing the whole at once
(no piece refers to another's text) and a few microseconds per changed piece.

The join is by runs (`Run`): pieces whose CRCs were combined once and kept so in blocks of a
column (`Column`) while none of them changes, so a scrape combines the blocks that changed
since the last one and reuses the others'.

zlib-ng does the compression: the standard library's zlib has no `crc32_combine`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from zlib_ng import zlib_ng

#: One piece: (raw deflate segment, CRC-32 of its text, length of its text in bytes).
Deflated = tuple[bytes, int, int]

#: Level 1: ~7 us per piece, about 7x smaller than the text (higher levels: ~15 % smaller, 2x
#: slower).
LEVEL = 1
#: A gzip header: deflate, no name, no time, unknown OS (RFC 1952 2.3).
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: A final fixed-Huffman block holding only its end code: closes the deflate stream.
_FINAL_BLOCK = b"\x03\x00"


def deflate(text: bytes) -> Deflated:
    """`text` as a self-contained segment (see the module's docstring)."""
    compressor = zlib_ng.compressobj(LEVEL, zlib_ng.DEFLATED, -zlib_ng.MAX_WBITS)
    segment = compressor.compress(text) + compressor.flush(zlib_ng.Z_SYNC_FLUSH)
    return segment, zlib_ng.crc32(text), len(text)


class Run:
    """Pieces joined in order, as the response takes them: their segments (not copied), the
    CRC-32 and size of their texts combined, the bytes of their segments. A scrape is a list
    of runs, each combined once: a run kept between scrapes (`Column`) costs one
    `crc32_combine` instead of one per piece (0.3-0.6 us each, ~85,000 pieces at 10,000
    tuples)."""

    __slots__ = ("crc", "nbytes", "segments", "size")

    def __init__(self, segments: tuple[bytes, ...], crc: int, size: int, nbytes: int) -> None:
        self.segments = segments
        self.crc = crc
        self.size = size
        self.nbytes = nbytes

    @classmethod
    def of(cls, pieces: Iterable[Deflated | None]) -> Run:
        """The pieces, in order, as one run (None: no text there, skipped)."""
        segments: list[bytes] = []
        crc, size, nbytes = 0, 0, 0
        combine = zlib_ng.crc32_combine
        for piece in pieces:
            if piece is not None:
                segment, piece_crc, piece_size = piece
                segments.append(segment)
                crc = combine(crc, piece_crc, piece_size)
                size += piece_size
                nbytes += len(segment)
        return cls(tuple(segments), crc, size, nbytes)


class Column:
    """Pieces in a fixed order (one family's, one per tuple), joined a block of `block` slots
    at a time: a block's run is kept until one of its pieces is replaced. Probes change tuples
    in the order they were first recorded (the scheduler's), so between two scrapes the
    changed slots are a band of the column and most blocks are reused."""

    __slots__ = ("_block", "_pieces", "_runs")

    def __init__(self, pieces: Iterable[Deflated | None], *, block: int = 64) -> None:
        self._block = block
        self._pieces = list(pieces)
        self._runs: list[Run | None] = [None] * -(-len(self._pieces) // block)

    def __len__(self) -> int:
        return len(self._pieces)

    def __setitem__(self, index: int, piece: Deflated | None) -> None:
        if piece is not self._pieces[index]:
            self._pieces[index] = piece
            self._runs[index // self._block] = None

    def runs(self) -> list[Run]:
        """The column as runs, in order; blocks whose pieces changed are joined again."""
        runs: list[Run] = []
        block = self._block
        for i, kept in enumerate(self._runs):
            run = kept or Run.of(self._pieces[i * block : (i + 1) * block])
            self._runs[i] = run
            runs.append(run)
        return runs


def gzip_member(runs: Iterable[Run]) -> bytes:
    """One gzip member whose text is the runs' texts in order."""
    return b"".join(gzip_chunks(runs))


def gzip_chunks(runs: Iterable[Run], *, batch: int = 1024 * 1024) -> Iterator[bytes]:
    """`gzip_member(runs)` in chunks of about `batch` bytes (at least one run's): a response
    written a chunk at a time never holds the whole body (12-19 MB at 10,000 tuples) nor a
    transport's copy of it, and lets the event loop run between chunks."""
    chunk = [_HEADER]
    held = len(_HEADER)
    crc, size = 0, 0
    combine = zlib_ng.crc32_combine
    for run in runs:
        chunk += run.segments
        held += run.nbytes
        crc = combine(crc, run.crc, run.size)
        size += run.size
        if held >= batch:
            yield b"".join(chunk)
            chunk, held = [], 0
    chunk += (_FINAL_BLOCK, struct.pack("<II", crc, size & 0xFFFFFFFF))
    yield b"".join(chunk)


def gzip_size(runs: Iterable[Run]) -> int:
    """Bytes of `gzip_member(runs)` (a Content-Length before the first chunk)."""
    return len(_HEADER) + sum(run.nbytes for run in runs) + len(_FINAL_BLOCK) + 8


def inflated(runs: Iterable[Run], *, batch: int = 256 * 1024) -> Iterator[bytes]:
    """The runs' texts in order, inflated `batch` bytes of segments at a time (~10x that of
    text): for a client that does not take gzip, without holding the whole text."""
    decompressor = zlib_ng.decompressobj(-zlib_ng.MAX_WBITS)
    segments: list[bytes] = []
    size = 0
    for run in runs:
        segments += run.segments
        size += run.nbytes
        if size >= batch:
            yield decompressor.decompress(b"".join(segments))
            segments, size = [], 0
    segments.append(_FINAL_BLOCK)
    yield decompressor.decompress(b"".join(segments))


def inflate(runs: Iterable[Run]) -> bytes:
    """The runs' texts, joined."""
    return b"".join(inflated(runs))


def text_size(runs: Iterable[Run]) -> int:
    """Bytes of the runs' texts, joined."""
    return sum(run.size for run in runs)
