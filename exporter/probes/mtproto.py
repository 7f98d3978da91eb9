"""The `mtproto` check: Telegram's first exchange on a TCP connection to a data centre.

A censor's DPI can let the TCP handshake to a Telegram data centre (DC) through and then cut
the connection once it recognises Telegram's own protocol in the first bytes. The tcp check
then stays green while no client can talk. This check makes the first exchange every Telegram
client makes, on the connection the tcp check opened: an unencrypted `req_pq_multi` with a
fresh random 128-bit nonce, which a DC answers with `resPQ` carrying the same nonce. Nothing
here authenticates the DC (that takes the full key exchange and Telegram's RSA keys); the
nonce only proves that what answered read *this* request, so a censor's canned reply fails.

What goes on the wire, and where each part is specified:

- The request, an unencrypted message (core.telegram.org/mtproto/description
  #unencrypted-message): `auth_key_id` = 0 (int64), `message_id` (int64, about unix time
  * 2**32, divisible by 4 as every client message id is), `message_data_length` (int32), then
  the body. All integers little-endian.
- The body (core.telegram.org/mtproto/auth_key, serialised per
  core.telegram.org/mtproto/serialize): `req_pq_multi#be7e8ef1 nonce:int128 = ResPQ`, i.e. the
  constructor as a little-endian uint32 and 16 nonce bytes: 20 bytes; the message is 40.
- The answer: `resPQ#05162463 nonce:int128 server_nonce:int128 pq:string
  server_public_key_fingerprints:Vector<long> = ResPQ`. A TL `string` is one length byte
  (0..253) or 0xfe and a 3-byte little-endian length, then the bytes, then zero padding to a
  multiple of 4; `Vector<long>` is `vector#1cb5c415`, an int32 count and the int64s.
- The intermediate transport (core.telegram.org/mtproto/mtproto-transports#intermediate): the
  client first sends 0xeeeeeeee, then every payload as a 4-byte little-endian length and the
  payload; the DC frames its replies the same way (without the tag). The first packet of the
  plain form is therefore 4 + 4 + 40 = 48 bytes starting `ee ee ee ee 28 00 00 00`, then eight
  zero bytes: fixed bytes that DPI matches easily.
- Transport errors (same page, #transport-errors): a payload of exactly 4 bytes holding a
  negative int32, e.g. -404 or -429 (flood).
- Transport obfuscation (same page, #transport-obfuscation), what the official clients send:
  64 random bytes whose first byte is not 0xef (abridged), whose first four are none of
  `HEAD`, `POST`, `GET `, `OPTI`, `PVrG`, 0xdddddddd, 0xeeeeeeee, 16 03 01 02 (a TLS record)
  and whose bytes 4..8 are not all zero (the full transport's seqno 0): a server tells the
  transports apart by these. Bytes 56..60 hold the protocol tag (0xeeeeeeee, intermediate),
  bytes 60..62 the DC id as a little-endian int16 (the page requires it for MTProxies only;
  here it is written when `dc` is given and left random otherwise). The client encrypts with
  AES-256-CTR, key = init[8:40], IV = init[40:56]; it decrypts with the key and IV taken the
  same way from the init reversed (key = reversed(init[8:56])[0:32], IV = its [32:48]). It
  sends init[0:56] plus bytes 56..64 of the *encrypted* init, so the tag never appears in
  clear, and every later byte through the same encrypting CTR stream (no separate tag);
  replies are read through the decrypting stream. Its first packet is 64 + 44 = 108 bytes
  with no fixed byte at all.

The answer is checked strictly, since a censor may answer in the DC's place: the length
prefix must be 1..`MAX_FRAME` (a larger one is `bad_reply` at once, never an unbounded read),
the frame an unencrypted message (`auth_key_id` 0, a non-zero `message_id`, a
`message_data_length` equal to the rest of the frame), the body a complete `resPQ` with our
nonce and nothing after it. Anything else is `bad_reply`: not success. A transport error
(a negative int32 alone, e.g. -429 flood) is not a failure: only a DC that read the request
answers with one (in the obfuscated form, through the keys of this connection), so the
protocol got through; `answered` stays False and `detail` says which. A close before a
complete answer is `eof`, a reset `reset`; time is bounded by the caller, which cancels the
call at its deadline.
"""

from __future__ import annotations

import os
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from exporter.model.observation import ErrorKind, MtprotoObservation, MtprotoTransport
from exporter.probes.errors import classify, describe
from exporter.probes.http import ByteStream
from exporter.units import cut

#: The intermediate transport's tag: sent first in clear by the plain form, and placed at
#: `TAG_OFFSET` of the obfuscation init (encrypted) by the obfuscated one.
INTERMEDIATE_TAG = b"\xee\xee\xee\xee"
#: Length of the obfuscation init, bytes.
INIT_BYTES = 64
#: Where the protocol tag sits in the obfuscation init.
TAG_OFFSET = 56
#: Where the DC id (int16, little-endian) sits in the obfuscation init.
DC_OFFSET = 60
#: The abridged transport's tag: the first byte of an obfuscation init must differ from it.
ABRIDGED_TAG = 0xEF
#: First four bytes an obfuscation init must not start with: what a Telegram server (or an
#: HTTP/TLS front) reads as another protocol.
FORBIDDEN_STARTS = frozenset(
    {
        b"HEAD",
        b"POST",
        b"GET ",
        b"OPTI",
        b"PVrG",
        b"\xdd\xdd\xdd\xdd",  # padded intermediate
        INTERMEDIATE_TAG,
        b"\x16\x03\x01\x02",  # a TLS handshake record
    }
)

#: TL constructor numbers (core.telegram.org/mtproto/auth_key, /serialize).
REQ_PQ_MULTI = 0xBE7E8EF1
RES_PQ = 0x05162463
VECTOR = 0x1CB5C415
#: Bytes of a TL int128 (the nonces).
NONCE_BYTES = 16

#: The unencrypted message's header: auth_key_id (int64), message_id (int64),
#: message_data_length (int32), little-endian: 20 bytes.
MESSAGE_HEADER = struct.Struct("<qqi")
#: The request's payload (header + constructor + nonce), bytes.
REQUEST_BYTES = MESSAGE_HEADER.size + 4 + NONCE_BYTES
#: The request as framed by the intermediate transport (length + payload), bytes: what follows
#: the 4-byte tag (plain) or the 64-byte init (obfuscated) in the first packet.
REQUEST_FRAME_BYTES = 4 + REQUEST_BYTES
#: Largest answer frame accepted, bytes. A resPQ is ~84 bytes (+8 per extra fingerprint); a
#: larger length prefix is refused before anything of it is read.
MAX_FRAME = 4 * 1024
#: Characters kept of an error detail.
MAX_DETAIL = 300


class BadReply(Exception):
    """The answer is not a well-formed resPQ to our request (classified `bad_reply`)."""


class TransportError(Exception):
    """The DC answered with one of its transport errors (-404, -429 flood, -444): it read our
    request and answered in its own protocol, so the protocol got through (not a failure)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"transport error {code}")
        self.code = code


class PeerClosed(EOFError):
    """The peer closed the connection before a complete answer (classified `eof`)."""


def message_id(now: float) -> int:
    """A client message id for unix time `now` (seconds): about now * 2**32, with the low
    2 bits clear (client ids are divisible by 4). Positive as an int64 until 2106."""
    return int(now * 2**32) & ~3


def req_pq_multi(nonce: bytes, msg_id: int) -> bytes:
    """The unencrypted message carrying `req_pq_multi nonce` (`REQUEST_BYTES` long)."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes, not {len(nonce)}")
    body = struct.pack("<I", REQ_PQ_MULTI) + nonce
    return MESSAGE_HEADER.pack(0, msg_id, len(body)) + body


def frame(payload: bytes) -> bytes:
    """`payload` in the intermediate transport's envelope: its length (uint32 LE) first."""
    return struct.pack("<I", len(payload)) + payload


def allowed_init(init: bytes) -> bool:
    """Whether 64 random bytes may start an obfuscated connection: no other transport's
    header in its first bytes (see the module docstring)."""
    return (
        init[0] != ABRIDGED_TAG
        and init[:4] not in FORBIDDEN_STARTS
        and init[4:8] != b"\x00\x00\x00\x00"
    )


def obfuscation_init(
    *, dc: int | None = None, random_bytes: Callable[[int], bytes] = os.urandom
) -> bytes:
    """The plaintext 64-byte obfuscation init: random bytes drawn until `allowed_init`, the
    intermediate tag at 56..60 and, when `dc` is given, the DC id (int16 LE) at 60..62.
    `random_bytes(n)` gives n random bytes (tests pass a seeded or adversarial source)."""
    while True:
        drawn = bytes(random_bytes(INIT_BYTES))
        if len(drawn) != INIT_BYTES:
            raise ValueError(f"random_bytes gave {len(drawn)} bytes, not {INIT_BYTES}")
        if allowed_init(drawn):
            break
    init = bytearray(drawn)
    init[TAG_OFFSET : TAG_OFFSET + 4] = INTERMEDIATE_TAG
    if dc is not None:
        init[DC_OFFSET : DC_OFFSET + 2] = struct.pack("<h", dc)
    return bytes(init)


def _ctr(key: bytes, iv: bytes) -> Callable[[bytes], bytes]:
    """One direction of an AES-256-CTR stream (128-bit big-endian counter, as OpenSSL's):
    each call continues where the last one ended."""
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update


@dataclass(frozen=True, slots=True)
class Obfuscation:
    """The client's side of an obfuscated connection: the 64 bytes to send first, and the
    two CTR streams, to be used in order for every later byte sent and received."""

    #: init[0:56] in clear, then bytes 56..64 of the encrypted init (tag and DC id).
    header: bytes
    encrypt: Callable[[bytes], bytes]
    decrypt: Callable[[bytes], bytes]

    @classmethod
    def start(cls, init: bytes) -> Obfuscation:
        """Keys from `init` (a plaintext init, e.g. `obfuscation_init()`); the encrypting
        stream has consumed the 64 init bytes, as the server's decrypting stream will."""
        if len(init) != INIT_BYTES:
            raise ValueError(f"the init is {INIT_BYTES} bytes, not {len(init)}")
        reversed_keys = init[8:56][::-1]
        encrypt = _ctr(init[8:40], init[40:56])
        decrypt = _ctr(reversed_keys[:32], reversed_keys[32:48])
        header = init[:TAG_OFFSET] + encrypt(init)[TAG_OFFSET:]
        return cls(header=header, encrypt=encrypt, decrypt=decrypt)


@dataclass(frozen=True, slots=True)
class Opening:
    """The first packet of the check and how to read the answer."""

    #: Everything sent, in one `send`: 48 bytes (plain) or 108 (obfuscated).
    wire: bytes
    #: The decrypting stream for the answer; None for the plain form.
    decrypt: Callable[[bytes], bytes] | None


def opening(
    transport: MtprotoTransport,
    nonce: bytes,
    msg_id: int,
    *,
    dc: int | None = None,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> Opening:
    """The first packet carrying `req_pq_multi nonce` in `transport`'s form."""
    request = frame(req_pq_multi(nonce, msg_id))
    if transport is MtprotoTransport.INTERMEDIATE:
        return Opening(wire=INTERMEDIATE_TAG + request, decrypt=None)
    obfuscation = Obfuscation.start(obfuscation_init(dc=dc, random_bytes=random_bytes))
    return Opening(
        wire=obfuscation.header + obfuscation.encrypt(request), decrypt=obfuscation.decrypt
    )


@dataclass(frozen=True, slots=True)
class ResPQ:
    """The fields of a resPQ (for logs and tests; the check needs only the nonce)."""

    message_id: int
    nonce: bytes
    server_nonce: bytes
    pq: bytes
    fingerprints: tuple[int, ...]


class _Cursor:
    """Reads TL fields from `data`, refusing to read past its end (`BadReply`)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise BadReply(f"resPQ cut short in {what}: {len(self.data)}-byte body")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def uint32(self, what: str) -> int:
        value: int = struct.unpack("<I", self.take(4, what))[0]
        return value

    def string(self, what: str) -> bytes:
        """A TL bytes/string: 1-byte length (<= 253), or 0xfe + 3-byte length; padded to 4."""
        first = self.take(1, what)[0]
        if first == 0xFF:
            raise BadReply(f"resPQ {what}: invalid string length byte 0xff")
        if first == 0xFE:
            length = int.from_bytes(self.take(3, what), "little")
            header = 4
        else:
            length = first
            header = 1
        value = self.take(length, what)
        self.take(-(header + length) % 4, what)
        return value


def parse_res_pq(payload: bytes, nonce: bytes) -> ResPQ:
    """The resPQ in `payload` (one intermediate frame's payload) answering `nonce`; raises
    `BadReply` naming the first thing wrong, or `TransportError` for a transport error.
    Pure; never reads past `payload`."""
    if len(payload) == 4:
        (code,) = struct.unpack("<i", payload)
        if code < 0:
            raise TransportError(code)
        raise BadReply(f"4-byte payload {payload.hex()}, not a transport error")
    if len(payload) < MESSAGE_HEADER.size:
        raise BadReply(f"{len(payload)}-byte payload, shorter than a message header")
    auth_key_id, msg_id, length = MESSAGE_HEADER.unpack_from(payload)
    if auth_key_id != 0:
        raise BadReply(f"auth_key_id {auth_key_id & 0xFFFFFFFFFFFFFFFF:#018x}, not 0")
    if msg_id == 0:
        raise BadReply("message_id 0")
    if length != len(payload) - MESSAGE_HEADER.size:
        raise BadReply(
            f"message_data_length {length}, but {len(payload) - MESSAGE_HEADER.size} bytes "
            "follow the header"
        )
    body = _Cursor(payload[MESSAGE_HEADER.size :])
    constructor = body.uint32("constructor")
    if constructor != RES_PQ:
        raise BadReply(f"constructor {constructor:#010x}, not resPQ ({RES_PQ:#010x})")
    got = body.take(NONCE_BYTES, "nonce")
    if got != nonce:
        raise BadReply(f"resPQ nonce {got.hex()} is not ours ({nonce.hex()})")
    server_nonce = body.take(NONCE_BYTES, "server_nonce")
    pq = body.string("pq")
    vector = body.uint32("fingerprints")
    if vector != VECTOR:
        raise BadReply(f"fingerprints: constructor {vector:#010x}, not vector ({VECTOR:#010x})")
    count = body.uint32("fingerprints")
    fingerprints = body.take(8 * count, "fingerprints")  # bounded by the body: no allocation
    if body.at != len(body.data):
        raise BadReply(f"{len(body.data) - body.at} bytes after the resPQ")
    return ResPQ(
        message_id=msg_id,
        nonce=got,
        server_nonce=server_nonce,
        pq=pq,
        fingerprints=struct.unpack(f"<{count}q", fingerprints),
    )


async def _read_exactly(
    stream: ByteStream, count: int, decrypt: Callable[[bytes], bytes] | None
) -> bytes:
    """`count` bytes of the answer (decrypted in arrival order), never asking for more."""
    data = bytearray()
    while len(data) < count:
        chunk = await stream.recv(count - len(data))
        if not chunk:
            raise PeerClosed(f"the peer closed after {len(data)} of {count} bytes")
        data += decrypt(chunk) if decrypt is not None else chunk
    return bytes(data)


async def read_frame(stream: ByteStream, decrypt: Callable[[bytes], bytes] | None) -> bytes:
    """One intermediate frame's payload. A length outside 1..`MAX_FRAME` is `BadReply`
    before any of it is read."""
    (length,) = struct.unpack("<I", await _read_exactly(stream, 4, decrypt))
    if not 1 <= length <= MAX_FRAME:
        raise BadReply(f"frame length {length} bytes, outside 1..{MAX_FRAME}")
    return await _read_exactly(stream, length, decrypt)


async def exchange(
    stream: ByteStream,
    address: str,
    port: int,
    transport: MtprotoTransport,
    *,
    dc: int | None = None,
) -> MtprotoObservation:
    """`req_pq_multi` with a fresh nonce over `stream` (connected to `address`:`port`, a
    Telegram DC), in `transport`'s form, and its answer checked. `dc` (int16) goes into the
    obfuscation init when given. Never raises but on cancellation: the caller bounds the time
    and cancels at its deadline. `duration` is seconds from the first byte sent to the end."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    started = time.perf_counter()
    error: ErrorKind | None = None
    detail: str | None = None
    try:
        first = opening(transport, nonce, message_id(time.time()), dc=dc)
        started = time.perf_counter()
        await stream.send(first.wire)
        parse_res_pq(await read_frame(stream, first.decrypt), nonce)
    except TransportError as exc:
        # Reached: only a DC that read this request answers so (a -429 flood from a shared
        # address must not read as blocking). Not `answered`: no resPQ came.
        detail = f"{exc}: the data centre answered in its own protocol"
    except BadReply as exc:
        error, detail = ErrorKind.BAD_REPLY, str(exc)
    except Exception as exc:
        error, detail = classify(exc), describe(exc)
    return MtprotoObservation(
        address=address,
        port=port,
        transport=transport,
        answered=error is None and detail is None,
        error=error,
        detail=None if detail is None else cut(detail, MAX_DETAIL),
        duration=time.perf_counter() - started,
    )


def first_packet(transport: MtprotoTransport, *, dc: int | None = None) -> bytes:
    """A fresh first packet of the check (its own nonce and keys), as localisation sends it
    again with lowered TTLs: the same form and length a censor's DPI saw."""
    return opening(transport, secrets.token_bytes(NONCE_BYTES), message_id(time.time()), dc=dc).wire
