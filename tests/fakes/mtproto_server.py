"""A look-alike Telegram data centre for tests: the first exchange of MTProto over TCP.

It reads what a real DC reads on a new connection and answers as one does, for the `mtproto`
check (exporter.probes.mtproto): 0xeeeeeeee first means the plain intermediate transport;
anything else is taken as a 64-byte obfuscation init, whose keys it derives as the server side
does (decrypt with key init[8:40] and IV init[40:56], encrypt with the key and IV taken the
same way from the reversed init), and whose decrypted tag at 56..60 must be 0xeeeeeeee. Then
it reads one intermediate frame holding an unencrypted `req_pq_multi` and answers `resPQ` with
the same nonce, a random server_nonce, an 8-byte pq and one fingerprint. A malformed request
is answered with transport error -404, as a DC does.

The encoding here is written independently of the probe's (on purpose: a shared helper would
agree with the probe's mistakes); the sources are cited in exporter/probes/mtproto.py and
docs/mtproto.md.

`Mode` makes it misbehave after reading a valid request: `wrong_nonce`, `garbage` (a
well-framed reply of random bytes), `close`, `transport_error` (-404), `huge_length` (a frame
that declares 1 GiB, then nothing), `silent` (never answers, holds the connection open).

In tests: `async with FakeDataCentre(Mode.NORMAL) as dc: ... dc.port ... dc.seen`.
In the lab: `python -m tests.fakes.mtproto_server --host H --port P [--mode M]` prints
"ready <port>" once listening, and exits on SIGTERM/SIGINT or when its stdin (when a pipe)
reaches EOF. It never connects anywhere; it only listens where it is told.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import enum
import os
import signal
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TAG = b"\xee" * 4
INIT = 64
REQ_PQ_MULTI = 0xBE7E8EF1
RES_PQ = 0x05162463
VECTOR = 0x1CB5C415
#: The sample pq and fingerprint of core.telegram.org/mtproto/samples-auth_key.
PQ = bytes.fromhex("17ED48941A08F981")
FINGERPRINT = 0xC3B42B026CE86B21 - 2**64  # as a signed TL long
#: Largest request frame read (a req_pq_multi is 40 bytes).
MAX_REQUEST = 1024
#: Connections remembered in `seen` (the lab may run one for hours).
SEEN_KEPT = 1000

Stream = Callable[[bytes], bytes]


class Mode(enum.StrEnum):
    NORMAL = "normal"
    WRONG_NONCE = "wrong_nonce"
    GARBAGE = "garbage"
    CLOSE = "close"
    TRANSPORT_ERROR = "transport_error"
    HUGE_LENGTH = "huge_length"
    SILENT = "silent"


@dataclass(frozen=True, slots=True)
class Seen:
    """One connection, as the server read it."""

    #: "intermediate" or "obfuscated".
    transport: str
    #: Every byte read before answering, as it came off the wire.
    raw: bytes
    #: The request's nonce; None when the request was malformed.
    nonce: bytes | None = None
    #: The decrypted DC id of an obfuscation init (int16 at 60..62).
    dc: int | None = None
    #: Why the request was refused, if it was.
    refused: str | None = None


def _ctr(key: bytes, iv: bytes) -> Stream:
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update


def _same(data: bytes) -> bytes:
    return data


def _tl_bytes(value: bytes) -> bytes:
    """TL `bytes` (core.telegram.org/mtproto/serialize), for values shorter than 254 bytes."""
    assert len(value) < 254
    encoded = bytes([len(value)]) + value
    return encoded + b"\x00" * (-len(encoded) % 4)


def _message(body: bytes) -> bytes:
    """An unencrypted message from the server: msg_id ~ time * 2**32, 1 mod 4 (a response)."""
    msg_id = (int(time.time() * 2**32) & ~3) | 1
    return struct.pack("<qqi", 0, msg_id, len(body)) + body


def res_pq(nonce: bytes) -> bytes:
    """The unencrypted message carrying resPQ for `nonce`."""
    body = (
        struct.pack("<I", RES_PQ)
        + nonce
        + os.urandom(16)
        + _tl_bytes(PQ)
        + struct.pack("<Iiq", VECTOR, 1, FINGERPRINT)
    )
    return _message(body)


def _frame(payload: bytes) -> bytes:
    return struct.pack("<I", len(payload)) + payload


class FakeDataCentre:
    """An asyncio TCP server on `host`:`port` (0: any free port, see `.port`)."""

    def __init__(self, mode: Mode = Mode.NORMAL, *, host: str = "127.0.0.1", port: int = 0):
        self.mode = mode
        self.host = host
        self._port = port
        self.seen: collections.deque[Seen] = collections.deque(maxlen=SEEN_KEPT)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The port listened on (still known after `stop`)."""
        if not self._port:
            raise RuntimeError("not started")
        return self._port

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = await asyncio.start_server(self._handle, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # Abort the connections rather than cancel their tasks: each handler then sees its
        # reads end and returns (asyncio's streams log a cancelled handler as an error).
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> FakeDataCentre:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = bytearray()

        async def read(count: int) -> bytes:
            data = await reader.readexactly(count)
            raw.extend(data)
            return data

        async def send(data: bytes) -> None:
            writer.write(encrypt(data))
            await writer.drain()

        first = await read(4)
        decrypt: Stream = _same
        encrypt: Stream = _same
        dc: int | None = None
        if first == TAG:
            transport = "intermediate"
        else:
            transport = "obfuscated"
            init = first + await read(INIT - 4)
            decrypt = _ctr(init[8:40], init[40:56])
            plain = decrypt(init)  # the client's stream has consumed these 64 bytes too
            reversed_init = init[::-1]
            encrypt = _ctr(reversed_init[8:40], reversed_init[40:56])
            if plain[56:60] != TAG:
                self.seen.append(Seen(transport, bytes(raw), refused="tag"))
                return  # not a transport this server speaks: hang up
            (dc,) = struct.unpack("<h", plain[60:62])

        (length,) = struct.unpack("<I", decrypt(await read(4)))
        refused: str | None = None
        nonce: bytes | None = None
        if not 20 + 4 + 16 <= length <= MAX_REQUEST:
            refused = f"length {length}"
        else:
            payload = decrypt(await read(length))
            auth_key_id, _msg_id, data_length = struct.unpack_from("<qqi", payload)
            (constructor,) = struct.unpack_from("<I", payload, 20)
            if auth_key_id != 0 or data_length != length - 20:
                refused = "header"
            elif constructor != REQ_PQ_MULTI or data_length != 20:
                refused = f"constructor {constructor:#010x}"
            else:
                nonce = payload[24:40]
        self.seen.append(Seen(transport, bytes(raw), nonce=nonce, dc=dc, refused=refused))
        if nonce is None:
            await send(_frame(struct.pack("<i", -404)))
            return
        await self._answer(nonce, send, reader)

    async def _answer(
        self,
        nonce: bytes,
        send: Callable[[bytes], Awaitable[None]],
        reader: asyncio.StreamReader,
    ) -> None:
        mode = self.mode
        if mode is Mode.NORMAL:
            await send(_frame(res_pq(nonce)))
        elif mode is Mode.WRONG_NONCE:
            await send(_frame(res_pq(bytes(b ^ 0xFF for b in nonce))))
        elif mode is Mode.GARBAGE:
            await send(_frame(os.urandom(84)))  # a resPQ's size, random content
        elif mode is Mode.CLOSE:
            return
        elif mode is Mode.TRANSPORT_ERROR:
            await send(_frame(struct.pack("<i", -404)))
        elif mode is Mode.HUGE_LENGTH:
            await send(struct.pack("<I", 1 << 30) + os.urandom(16))
        # huge_length, silent and after any answer: hold the connection until the client goes.
        while await reader.read(64 * 1024):
            pass


async def serve(host: str, port: int, mode: Mode) -> None:
    """Listen until SIGTERM/SIGINT, or EOF on stdin when stdin is a pipe (the lab's way)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def on_stdin() -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            stop.set()

    async with FakeDataCentre(mode, host=host, port=port) as dc:
        watching = True
        try:
            loop.add_reader(0, on_stdin)
        except (OSError, ValueError):
            watching = False  # /dev/null, a file or no stdin: signals only
        try:
            sys.stdout.write(f"ready {dc.port}\n")
            sys.stdout.flush()
            await stop.wait()
        finally:
            if watching:
                loop.remove_reader(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.NORMAL.value)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, Mode(args.mode)))


if __name__ == "__main__":
    main()
