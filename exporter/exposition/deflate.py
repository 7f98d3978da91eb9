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
since the last one and reuses the others'. A column keeps each piece's segment, and its
CRC-32 and size in arrays, not a tuple per piece.

zlib-ng does the compression: the standard library's zlib has no `crc32_combine`.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

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


#: Texts shorter than this are kept as one stored block (RFC 1951 3.2.4: a byte of block
#: header, the length and its complement, the bytes): one exposition line gains nothing from
#: deflate (106 bytes in, 106 out), while each compressor made costs ~4.5 us and clears
#: ~170 KB, and a probe changes five such lines.
STORED_BELOW = 256


def deflate(text: bytes) -> Deflated:
    """`text` as a self-contained segment (see the module's docstring)."""
    if len(text) < STORED_BELOW:
        # Not final (BFINAL 0), type 00; segments end on a byte boundary, so this one starts
        # on one, and its header's padding is the rest of that byte.
        segment = b"\x00" + struct.pack("<HH", len(text), len(text) ^ 0xFFFF) + text
    else:
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


#: No piece, as a block stores it: an empty segment (a piece's never is: it ends on a flush).
_NO_PIECE: Deflated = (b"", 0, 0)


class _Block:
    """Up to a column's `block` slots: their segments (no piece: an empty one) and their
    texts' CRC-32 and sizes in arrays. Per piece that is its segment's bytes object and 8
    bytes, where a (segment, CRC, size) tuple of its own costs ~120 bytes more (~10 MB at
    10,000 tuples). The segments stay objects of their own, not one bytes per block: ~10 KB
    buffers made again for every changed block churn the C heap, which then holds more than
    the headers saved (measured). A replaced piece drops the kept run."""

    __slots__ = ("crcs", "run", "segments", "sizes")

    def __init__(self, pieces: Iterable[Deflated | None]) -> None:
        stored = [piece or _NO_PIECE for piece in pieces]
        segments: tuple[bytes, ...] = ()
        crcs: tuple[int, ...] = ()
        sizes: tuple[int, ...] = ()
        if stored:
            segments, crcs, sizes = zip(*stored, strict=True)
        self.segments = list(segments)
        self.crcs = array("I", crcs)
        self.sizes = array("I", sizes)
        self.run: Run | None = None

    def __setitem__(self, slot: int, piece: Deflated | None) -> None:
        self.segments[slot], self.crcs[slot], self.sizes[slot] = piece or _NO_PIECE
        self.run = None

    def piece(self, slot: int) -> Deflated | None:
        segment = self.segments[slot]
        return (segment, self.crcs[slot], self.sizes[slot]) if segment else None

    def joined(self) -> Run:
        """The block as one run (kept until a piece is replaced)."""
        if self.run is None:
            crc, size, nbytes = 0, 0, 0
            combine = zlib_ng.crc32_combine
            for segment, piece_crc, piece_size in zip(
                self.segments, self.crcs, self.sizes, strict=True
            ):
                if segment:
                    crc = combine(crc, piece_crc, piece_size)
                    size += piece_size
                    nbytes += len(segment)
            self.run = Run(tuple(filter(None, self.segments)), crc, size, nbytes)
        return self.run


class Row:
    """One tuple's pieces, one per column, stored as one bytes and one array until the
    columns give it a place (a tuple they were not laid out for). As pieces of their own
    they would be ~10 small objects a tuple, all freed at once when the columns take them,
    which leaves CPython's arenas fragmented at their high-water mark."""

    __slots__ = ("_data", "_meta")

    def __init__(self, pieces: Sequence[Deflated | None]) -> None:
        stored = [piece or _NO_PIECE for piece in pieces]
        self._data = b"".join(segment for segment, _, _ in stored)
        meta = array("I")
        end = 0
        for segment, crc, size in stored:
            end += len(segment)
            meta += array("I", (end, crc, size))
        self._meta = meta  # per piece: the end of its segment, its CRC-32, its text's size

    def __len__(self) -> int:
        return len(self._meta) // 3

    def piece(self, column: int) -> Deflated | None:
        meta = self._meta
        start = meta[3 * column - 3] if column else 0
        end, crc, size = meta[3 * column : 3 * column + 3]
        return None if start == end else (self._data[start:end], crc, size)

    def replaced(self, changes: Iterable[tuple[int, Deflated | None]]) -> Row:
        """The row with the given (column, piece) replaced."""
        pieces = [self.piece(column) for column in range(len(self))]
        for column, piece in changes:
            pieces[column] = piece
        return Row(pieces)


class Column:
    """Pieces in a fixed order (one family's, one per tuple), kept and joined a block of
    `block` slots at a time (`_Block`: no tuple per piece), a block's run kept until one of
    its pieces is replaced. Probes change tuples in the same order each round (the
    scheduler's), so between two scrapes the changed slots are a band of the column and most
    blocks are reused."""

    __slots__ = ("_block", "_blocks", "_length")

    def __init__(self, pieces: Iterable[Deflated | None], *, block: int = 64) -> None:
        self._block = block
        self._length = 0
        self._blocks: list[_Block] = []
        it = iter(pieces)  # taken a block at a time: never a piece object for every slot
        while chunk := list(islice(it, block)):
            self._blocks.append(_Block(chunk))
            self._length += len(chunk)

    def __len__(self) -> int:
        return self._length

    def __setitem__(self, index: int, piece: Deflated | None) -> None:
        """Replace the piece at `index` (the block is joined again at the next `runs()`)."""
        if not 0 <= index < self._length:
            raise IndexError(index)
        self._blocks[index // self._block][index % self._block] = piece

    def piece(self, index: int) -> Deflated | None:
        """The piece at `index`."""
        if not 0 <= index < self._length:
            raise IndexError(index)
        return self._blocks[index // self._block].piece(index % self._block)

    def runs(self) -> list[Run]:
        """The column as runs, one per block, in order; blocks with a replaced piece are
        joined again."""
        return [block.joined() for block in self._blocks]


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
