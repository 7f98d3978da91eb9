"""An HTTP/3 server (aioquic) for tests and the lab: QUIC on a UDP address, ALPN `h3`,
answering every GET with one status and body (or a large object at a configured path).

    server = FakeH3Server(cert="chain.pem", key="key.pem", host="127.0.0.1")
    await server.start()        # bound; server.port is known
    ...
    await server.stop()

`requests` records (path, headers) of every request; `handshakes` counts completed ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration


class FakeH3Server:
    def __init__(
        self,
        *,
        cert: str | Path,
        key: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        status: int = 200,
        body: bytes = b"",
        objects: Mapping[str, int] | None = None,
        alpn: tuple[str, ...] = tuple(H3_ALPN),
        close_after_response: bool = False,
        respond: bool = True,
    ) -> None:
        self.cert, self.key = str(cert), str(key)
        self.host = host
        self._requested_port = port
        self.status = status
        self.body = body
        self.objects = {path: b"x" * size for path, size in (objects or {}).items()}
        self.alpn = alpn
        #: End the connection (NO_ERROR) right after each response is sent.
        self.close_after_response = close_after_response
        #: False: close the connection (NO_ERROR) instead of answering a request.
        self.respond = respond
        self.requests: list[tuple[str, dict[bytes, bytes]]] = []
        self.handshakes = 0
        self.port = 0
        self._server: QuicServer | None = None

    async def start(self) -> None:
        config = QuicConfiguration(is_client=False, alpn_protocols=list(self.alpn))
        config.load_cert_chain(self.cert, self.key)
        family = socket.AF_INET6 if ipaddress.ip_address(self.host).version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self._requested_port))
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        fake = self
        _, server = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: QuicServer(
                configuration=config,
                create_protocol=lambda *a, **kw: _H3Protocol(*a, fake=fake, **kw),
            ),
            sock=sock,
        )
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.close()
            self._server = None
            await asyncio.sleep(0)  # let the transport close its socket

    def answer(self, path: str) -> tuple[int, bytes, str]:
        large = self.objects.get(path)
        if large is not None:
            return 200, large, "application/octet-stream"
        return self.status, self.body, "text/html; charset=utf-8"


class _H3Protocol(QuicConnectionProtocol):
    def __init__(self, *args: Any, fake: FakeH3Server, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fake = fake
        self.h3: H3Connection | None = None

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            self.fake.handshakes += 1
            if event.alpn_protocol in H3_ALPN:
                self.h3 = H3Connection(self._quic)
        if self.h3 is None:
            return
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                self._answer(h3_event)

    def _answer(self, request: HeadersReceived) -> None:
        assert self.h3 is not None
        headers = dict(request.headers)
        path = headers.get(b":path", b"/").decode("latin-1")
        self.fake.requests.append((path, headers))
        if not self.fake.respond:
            self.close()
            return
        status, body, content_type = self.fake.answer(path)
        try:
            self.h3.send_headers(
                request.stream_id,
                [
                    (b":status", str(status).encode()),
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"server", b"lab"),
                ],
            )
            self.h3.send_data(request.stream_id, body, end_stream=True)
        except (AssertionError, ValueError):  # the stream or connection ended meanwhile
            return
        self.transmit()
        if self.fake.close_after_response:
            self.close()  # a CONNECTION_CLOSE right behind the response
