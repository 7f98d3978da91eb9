"""The `mtproto` check (exporter.probes.mtproto) against a look-alike data centre
(tests.fakes.mtproto_server) over real TCP on loopback, and its encoding on its own."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exporter.model.observation import ErrorKind, MtprotoObservation, MtprotoTransport
from exporter.probes import mtproto
from exporter.probes.mtproto import (
    FORBIDDEN_STARTS,
    INTERMEDIATE_TAG,
    MAX_FRAME,
    REQUEST_FRAME_BYTES,
    BadReply,
    Obfuscation,
    exchange,
    obfuscation_init,
    opening,
    parse_res_pq,
)
from exporter.probes.streams import SocketStream
from tests.fakes.mtproto_server import FakeDataCentre, Mode, res_pq

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
TRANSPORTS = list(MtprotoTransport)
#: Bound of every exchange with the fake: far above a loopback round trip; a hang fails fast.
DEADLINE = 5.0


class RecordingStream(SocketStream):
    """A SocketStream that keeps what was sent and how much each read asked for."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.sent: list[bytes] = []
        self.asked: list[int] = []
        self.received = 0

    async def send(self, data: bytes) -> None:
        self.sent.append(data)
        await super().send(data)

    async def recv(self, max_bytes: int) -> bytes:
        self.asked.append(max_bytes)
        data = await super().recv(max_bytes)
        self.received += len(data)
        return data


@contextlib.asynccontextmanager
async def connected(port: int) -> AsyncIterator[socket.socket]:
    """A non-blocking TCP socket connected to 127.0.0.1:`port`, closed on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (LOOPBACK, port))
        yield sock
    finally:
        sock.close()


async def probe(
    port: int, transport: MtprotoTransport, *, dc: int | None = None
) -> tuple[MtprotoObservation, RecordingStream]:
    async with connected(port) as sock, asyncio.timeout(DEADLINE):
        stream = RecordingStream(sock)
        return await exchange(stream, LOOPBACK, port, transport, dc=dc), stream


def seeded(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def server_decrypt(init: bytes) -> Callable[[bytes], bytes]:
    """The server's decrypting stream of an init as sent, derived independently of the probe."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(init[8:40]), modes.CTR(init[40:56])).encryptor().update


# --- against the fake data centre -------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_answered_in_both_forms(transport: MtprotoTransport) -> None:
    async with FakeDataCentre() as dc:
        obs, stream = await probe(dc.port, transport)
    assert obs.error is None, obs.detail
    assert obs.answered
    assert obs.detail is None
    assert (obs.address, obs.port, obs.transport) == (LOOPBACK, dc.port, transport)
    assert obs.duration > 0
    (seen,) = dc.seen
    assert seen.transport == transport.value
    assert seen.refused is None
    # The whole request went in one send, and the server read exactly that.
    (sent,) = stream.sent
    assert seen.raw == sent
    header = 4 if transport is MtprotoTransport.INTERMEDIATE else 64
    if transport is MtprotoTransport.INTERMEDIATE:
        assert seen.nonce == sent[32:48]
    else:
        assert seen.nonce is not None
        assert seen.nonce not in sent
    assert len(sent) == header + REQUEST_FRAME_BYTES


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("mode", "kind", "fragment"),
    [
        (Mode.WRONG_NONCE, ErrorKind.BAD_REPLY, "nonce"),
        (Mode.GARBAGE, ErrorKind.BAD_REPLY, "auth_key_id"),
        (Mode.HUGE_LENGTH, ErrorKind.BAD_REPLY, "frame length 1073741824"),
        (Mode.CLOSE, ErrorKind.EOF, "closed after 0 of 4 bytes"),
    ],
)
async def test_bad_answers(
    transport: MtprotoTransport, mode: Mode, kind: ErrorKind, fragment: str
) -> None:
    async with FakeDataCentre(mode) as dc:
        obs, _ = await probe(dc.port, transport)
    assert not obs.answered
    assert obs.error is kind
    assert obs.detail is not None
    assert fragment in obs.detail


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_huge_length_is_refused_before_reading_it(transport: MtprotoTransport) -> None:
    """The fake declares 1 GiB and keeps the connection open: a probe that tried to read it
    would hang until DEADLINE. It reads the 4-byte length, never asks for more."""
    async with FakeDataCentre(Mode.HUGE_LENGTH) as dc:
        obs, stream = await probe(dc.port, transport)
    assert obs.error is ErrorKind.BAD_REPLY
    assert stream.received == 4
    assert max(stream.asked) <= 4 < MAX_FRAME


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_silence_is_left_to_the_callers_deadline(transport: MtprotoTransport) -> None:
    async with FakeDataCentre(Mode.SILENT) as dc, connected(dc.port) as sock:
        stream = RecordingStream(sock)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await exchange(stream, LOOPBACK, dc.port, transport)
        assert len(stream.sent) == 1
        assert stream.received == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_reset_is_reset(transport: MtprotoTransport) -> None:
    """A peer that reads the request and aborts the connection (RST: SO_LINGER 0)."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]

        async def abort() -> None:
            conn, _ = await loop.sock_accept(listener)
            with conn:
                conn.setblocking(False)
                await loop.sock_recv(conn, 4096)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

        async with asyncio.TaskGroup() as group:
            group.create_task(abort())
            obs, _ = await probe(port, transport)
    assert obs.error is ErrorKind.RESET, obs.detail


@pytest.mark.parametrize("dc_id", [2, -4, 10005])
async def test_dc_id_in_the_obfuscation_init(dc_id: int) -> None:
    async with FakeDataCentre() as dc:
        obs, _ = await probe(dc.port, MtprotoTransport.OBFUSCATED, dc=dc_id)
    assert obs.answered
    assert dc.seen[-1].dc == dc_id


async def test_fake_hangs_up_on_another_protocol_tag() -> None:
    """The fake checks the decrypted tag, as a DC does (so a wrong init cannot pass)."""
    init = bytearray(obfuscation_init(random_bytes=seeded(1)))
    init[56:60] = b"\xdd" * 4
    obfuscation = Obfuscation.start(bytes(init))
    async with FakeDataCentre() as dc, connected(dc.port) as sock, asyncio.timeout(DEADLINE):
        stream = SocketStream(sock)
        await stream.send(obfuscation.header)
        assert await stream.recv(1) == b""
    assert dc.seen[-1].refused == "tag"


async def test_entry_point_serves_until_stdin_closes() -> None:
    """The lab's way: `python -m tests.fakes.mtproto_server`, "ready <port>", EOF on stdin."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.mtproto_server",
        "--host",
        LOOPBACK,
        "--port",
        "0",
        "--mode",
        "normal",
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
            word, port = line.decode().split()
            assert word == "ready"
            obs, _ = await probe(int(port), MtprotoTransport.OBFUSCATED)
            assert obs.answered, obs.detail
            proc.stdin.close()
            assert await proc.stdout.read() == b""
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- what goes on the wire ----------------------------------------------------------------------


async def test_plain_intermediate_request_on_the_wire() -> None:
    """What DPI matches: 0xeeeeeeee, the length 40, a zero auth_key_id, req_pq_multi."""
    async with FakeDataCentre() as dc:
        _, stream = await probe(dc.port, MtprotoTransport.INTERMEDIATE)
    (wire,) = stream.sent
    assert len(wire) == 48
    assert wire[:4] == INTERMEDIATE_TAG == b"\xee\xee\xee\xee"
    assert wire[4:8] == b"\x28\x00\x00\x00"  # frame length 40
    assert wire[8:16] == bytes(8)  # auth_key_id 0
    msg_id = int.from_bytes(wire[16:24], "little")
    assert msg_id % 4 == 0
    assert msg_id > 0
    assert wire[24:28] == b"\x14\x00\x00\x00"  # message_data_length 20
    assert wire[28:32] == bytes.fromhex("f18e7ebe")  # req_pq_multi#be7e8ef1, little-endian
    assert dc.seen[-1].nonce == wire[32:48]


async def test_obfuscated_request_has_no_fixed_bytes_on_the_wire() -> None:
    async with FakeDataCentre() as dc:
        _, stream = await probe(dc.port, MtprotoTransport.OBFUSCATED)
    (wire,) = stream.sent
    assert len(wire) == 64 + REQUEST_FRAME_BYTES == 108
    assert wire[56:60] != INTERMEDIATE_TAG
    assert wire[:4] not in FORBIDDEN_STARTS
    assert wire[0] != 0xEF
    # The frame after the init decrypts (by the server's own derivation) to the plain request.
    plain = server_decrypt(wire[:64])(wire)
    assert plain[56:60] == INTERMEDIATE_TAG
    assert plain[64:72] == b"\x28\x00\x00\x00" + bytes(4)
    assert plain[88:92] == bytes.fromhex("f18e7ebe")
    assert plain[92:108] == dc.seen[-1].nonce


@pytest.mark.parametrize("seed", range(200))
def test_obfuscated_opening_hides_every_fixed_byte(seed: int) -> None:
    nonce = bytes(16)  # even a constant nonce leaves nothing fixed on the wire
    plain = opening(MtprotoTransport.INTERMEDIATE, nonce, 4 << 32).wire
    wire = opening(MtprotoTransport.OBFUSCATED, nonce, 4 << 32, random_bytes=seeded(seed)).wire
    assert INTERMEDIATE_TAG not in wire
    assert plain[4:] not in wire
    assert plain[4:12] not in wire


_BAD_STARTS = [*sorted(FORBIDDEN_STARTS), b"\xef\x00\x01\x02"]


@st.composite
def draws(draw: st.DrawFn) -> list[bytes]:
    """What `random_bytes` returns, in turn: some forbidden inits, then random ones."""
    bad = draw(
        st.lists(
            st.one_of(
                st.tuples(st.sampled_from(_BAD_STARTS), st.binary(min_size=60, max_size=60)).map(
                    lambda t: t[0] + t[1]
                ),
                st.tuples(st.binary(min_size=4, max_size=4), st.binary(min_size=56, max_size=56))
                .filter(lambda t: t[0][0] != 0xEF and t[0] not in FORBIDDEN_STARTS)
                .map(lambda t: t[0] + bytes(4) + t[1]),  # bytes 4..8 zero
            ),
            max_size=5,
        )
    )
    good = draw(st.binary(min_size=64, max_size=64))
    return [*bad, good]


@given(draws(), st.one_of(st.none(), st.integers(-(2**15), 2**15 - 1)))
# A seed whose stream's first draw is refused: the draw after it must be new bytes.
@example(inits=[b"\x0c" + bytes(63)], dc=None)
def test_obfuscation_init_is_never_another_protocol(inits: list[bytes], dc: int | None) -> None:
    queue = list(inits)
    # After the bad draws, a seeded stream: each call new bytes, so a draw the rules refuse
    # (1 in ~256) is followed by another, as from os.urandom (one generator seeded per call
    # would repeat a refused draw forever).
    rest = random.Random(inits[-1])

    def random_bytes(count: int) -> bytes:
        assert count == 64
        return queue.pop(0) if len(queue) > 1 else rest.randbytes(64)

    init = obfuscation_init(dc=dc, random_bytes=random_bytes)
    assert init[0] != 0xEF
    assert init[:4] not in FORBIDDEN_STARTS
    assert init[4:8] != bytes(4)
    assert init[56:60] == INTERMEDIATE_TAG
    if dc is not None:
        assert struct.unpack("<h", init[60:62])[0] == dc
    header = Obfuscation.start(init).header
    assert header[:56] == init[:56]
    # The server recovers the tag (and DC id) by decrypting what it received.
    assert server_decrypt(header)(header)[56:64] == init[56:64]


# --- the answer's decoder -----------------------------------------------------------------------

NONCE = bytes(range(16))


def test_parse_a_res_pq() -> None:
    answer = parse_res_pq(res_pq(NONCE), NONCE)
    assert answer.nonce == NONCE
    assert answer.pq == bytes.fromhex("17ED48941A08F981")
    assert answer.fingerprints == (0xC3B42B026CE86B21 - 2**64,)
    assert answer.message_id % 4 == 1


def test_parse_long_string_and_several_fingerprints() -> None:
    pq = bytes(300)  # TL long form: 0xfe, 3-byte length, padding to 4
    body = (
        struct.pack("<I", mtproto.RES_PQ)
        + NONCE
        + bytes(16)
        + b"\xfe"
        + len(pq).to_bytes(3, "little")
        + pq
        + struct.pack("<Ii3q", mtproto.VECTOR, 3, 1, -2, 3)
    )
    payload = struct.pack("<qqi", 0, 5, len(body)) + body
    assert parse_res_pq(payload, NONCE).fingerprints == (1, -2, 3)


def test_a_transport_error_is_a_transport_error() -> None:
    with pytest.raises(mtproto.TransportError, match="transport error -429"):
        parse_res_pq(struct.pack("<i", -429), NONCE)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_transport_error_means_the_protocol_got_through(
    transport: MtprotoTransport,
) -> None:
    """-429 (flood from a shared address) comes from a DC that read the request: reached,
    never tampering."""
    async with FakeDataCentre(Mode.TRANSPORT_ERROR) as dc:
        obs, _ = await probe(dc.port, transport)
    assert obs.error is None
    assert not obs.answered
    assert obs.detail is not None
    assert "transport error -404" in obs.detail


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (struct.pack("<i", 7), "not a transport error"),
        (res_pq(NONCE)[:-1], "message_data_length"),
        (res_pq(NONCE) + b"\x00", "message_data_length"),
        (struct.pack("<qqi", 1, 5, 0), "auth_key_id"),
        (struct.pack("<qqi", 0, 0, 0), "message_id 0"),
        (struct.pack("<qqiI", 0, 5, 4, 0xBE7E8EF1), "not resPQ"),
    ],
)
def test_parse_refuses(payload: bytes, fragment: str) -> None:
    with pytest.raises(BadReply, match=fragment):
        parse_res_pq(payload, NONCE)


def _reframed(body: bytes) -> bytes:
    return struct.pack("<qqi", 0, 5, len(body)) + body


@pytest.mark.parametrize("cut", range(1, 65))
def test_parse_refuses_every_truncated_body(cut: int) -> None:
    body = res_pq(NONCE)[20:]
    with pytest.raises(BadReply):
        parse_res_pq(_reframed(body[:-cut]), NONCE)


def test_parse_refuses_trailing_bytes_and_huge_vectors() -> None:
    body = res_pq(NONCE)[20:]
    with pytest.raises(BadReply, match="after the resPQ"):
        parse_res_pq(_reframed(body + bytes(4)), NONCE)
    huge = body[:-16] + struct.pack("<Ii", mtproto.VECTOR, 2**31 - 1)
    with pytest.raises(BadReply, match="cut short in fingerprints"):
        parse_res_pq(_reframed(huge), NONCE)


@given(st.binary(max_size=200))
def test_parse_never_accepts_garbage(payload: bytes) -> None:
    """Garbage is refused; only a lone negative int32 reads as Telegram's transport error."""
    with pytest.raises((BadReply, mtproto.TransportError)) as raised:
        parse_res_pq(payload, NONCE)
    if raised.type is mtproto.TransportError:
        assert len(payload) == 4
        assert struct.unpack("<i", payload)[0] < 0
