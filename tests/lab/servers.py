"""The lab's server processes: `python -m tests.lab.servers --spec FILE`, run by the lab inside
one namespace (`ip netns exec NS ...`).

The spec (JSON, written by tests.lab.topology) lists listeners:

- `http`: HTTP/1.1 on address:port, over TLS when `tls` ({cert, key}) is given; answers any
  request with `status`, `body` and `headers`; `hosts` maps a Host header to another answer;
  `objects` maps a path to a size: GET it for a 200 body of that many bytes (throughput).
  Garbage (e.g. a TLS ClientHello sent to a plain-HTTP port) gets a 400, as a real server.
- `http3`: HTTP/3 over QUIC on UDP address:port with `tls` ({cert, key}), answering every
  request with `status` and `body` (and `objects` as `http` does); tests.fakes.h3_server.
- `tcp`: accepts and reads until the client closes.
- `dns`: a resolver on `address` over `transports` (udp, tcp, dot, doh, doq) serving `zone`
  (name → IPv4) with `lies` (name → address, or null for NXDOMAIN) on top, `default_rcode`
  for names it does not know (NXDOMAIN, or e.g. SERVFAIL for a resolver whose upstream is
  down). Served by tests.fakes.dns_server.FakeDnsServer.
- `sni-filter`, `tls-mitm`: the censor middleboxes of tests.lab.middlebox.

When every listener is bound it prints `ready` on stdout; it exits when stdin reaches EOF (the
lab closed it, or died) or on SIGTERM. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import h11

log = logging.getLogger("lab.servers")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
REQUEST_TIMEOUT = 10.0


def tls_context(tls: dict[str, str], alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls["cert"], tls["key"])
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def _tracked(handler: Handler, tasks: set[asyncio.Task[Any]]) -> Handler:
    """Run each connection as a task we can cancel at shutdown; never let one raise."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only `Servers.close` cancels: end quietly (3.11's StreamReaderProtocol would log
            # a cancelled connection task as an error).
            pass
        except Exception:
            log.exception("handler failed")
        finally:
            tasks.discard(task)
            writer.close()  # flushes what is buffered; a reset connection is already gone
            try:
                async with asyncio.timeout(1):
                    await writer.wait_closed()
            except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError):
                writer.transport.abort()

    return run


# --- HTTP ------------------------------------------------------------------------------------


def http_handler(item: dict[str, Any]) -> Handler:
    default = {k: item[k] for k in ("status", "body", "headers") if k in item}
    hosts: dict[str, dict[str, Any]] = item.get("hosts", {})
    # path -> a 200 body of that many bytes (a large object for throughput checks)
    objects = {path: b"x" * size for path, size in item.get("objects", {}).items()}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        async with asyncio.timeout(REQUEST_TIMEOUT):
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError:
                    writer.write(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                        b"Connection: close\r\n\r\n"
                    )
                    await writer.drain()
                    return
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        if request is None:
            return
        host = dict(request.headers).get(b"host", b"").decode("latin-1").split(":")[0]
        answer = hosts.get(host.lower(), default)
        body = answer.get("body", "").encode()
        content_type = "text/html; charset=utf-8"
        large = objects.get(request.target.decode("latin-1"))
        if large is not None:
            answer, body, content_type = {"status": 200}, large, "application/octet-stream"
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            ("Server", "lab"),
            *answer.get("headers", {}).items(),
        ]
        data = conn.send(h11.Response(status_code=answer.get("status", 200), headers=headers))
        if request.method != b"HEAD":
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        writer.write(data or b"")
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        # Let the client read everything before the close.
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(2):
                while await reader.read(65536):
                    pass

    return handle


async def tcp_sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):
        pass


# --- DNS -------------------------------------------------------------------------------------


def _load_pki(cert: str, key: str) -> Any:
    """The lab CA (certificate and key) as a tests.fakes.certs.Pki, to mint certificates."""
    import trustme

    from tests.fakes.certs import Pki

    ca = trustme.CA.from_pem(Path(cert).read_bytes(), Path(key).read_bytes())
    return Pki(ca=ca, ca_file=Path(cert))


async def start_dns(item: dict[str, Any]) -> Any:
    """A FakeDnsServer on the standard ports (53 udp+tcp, 853 DoT, 443 DoH, 853 DoQ)."""
    from tests.fakes.dns_server import Behaviour, FakeDnsServer

    zone = {name: {"A": [address]} for name, address in item["zone"].items()}
    lies: dict[str, str | None] = item.get("lies", {})
    zone.update({name: {"A": [lie]} for name, lie in lies.items() if lie is not None})
    server = FakeDnsServer(
        zone,
        pki=_load_pki(item["ca"]["cert"], item["ca"]["key"]),
        host=item["address"],
        dns_port=53,
        dot_port=853,
        doh_port=443,
        doq_port=853,
        tls_names=[item["server_name"]] if item.get("server_name") else [],
        transports=item["transports"],
        ttl=60,
        behaviour=Behaviour(rcode=item.get("default_rcode")),
    )
    for name, lie in lies.items():
        if lie is None:
            server.behave(Behaviour(rcode="NXDOMAIN"), name)
    await server.start()
    return server


# --- the process -----------------------------------------------------------------------------


class Servers:
    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    async def listen(self, handler: Handler, item: dict[str, Any], **kw: Any) -> None:
        server = await asyncio.start_server(
            _tracked(handler, self.tasks),
            item["address"],
            item["port"],
            reuse_address=True,
            **kw,
        )
        self.servers.append(server)

    async def start(self, item: dict[str, Any]) -> None:
        kind = item["kind"]
        if kind == "http":
            ssl_ctx = tls_context(item["tls"], ["http/1.1"]) if item.get("tls") else None
            await self.listen(
                http_handler(item), item, ssl=ssl_ctx, ssl_handshake_timeout=5 if ssl_ctx else None
            )
        elif kind == "http3":
            from tests.fakes.h3_server import FakeH3Server

            h3 = FakeH3Server(
                cert=item["tls"]["cert"],
                key=item["tls"]["key"],
                host=item["address"],
                port=item["port"],
                status=item.get("status", 200),
                body=item.get("body", "").encode(),
                objects=item.get("objects", {}),
            )
            await h3.start()
            self.closers.append(h3.stop)
        elif kind == "tcp":
            await self.listen(tcp_sink, item)
        elif kind == "dns":
            dns_server = await start_dns(item)
            self.closers.append(dns_server.stop)
        elif kind == "sni-filter":
            from tests.lab.middlebox import SniFilter

            sni = SniFilter(item["blocked"], item.get("residual_set"))
            await self.listen(sni.handle, item)
        elif kind == "tls-mitm":
            from tests.lab.middlebox import TlsInterceptor

            mitm = TlsInterceptor(Path(item["ca_cert"]), Path(item["ca_key"]))
            await self.listen(mitm.handle, item, ssl=mitm.server_context, ssl_handshake_timeout=5)
        else:
            raise ValueError(f"unknown listener kind {kind!r}")

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self.tasks):
            task.cancel()
        for closer in self.closers:
            with contextlib.suppress(Exception):
                await closer()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)


def _quiet_exceptions(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Failed TLS handshakes (a client refusing a foreign certificate, a reset) are routine.
    exc = context.get("exception")
    if isinstance(exc, OSError | ssl.SSLError | TimeoutError):
        log.debug("%s: %s", context.get("message"), exc)
        return
    loop.default_exception_handler(context)


async def main(spec: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_exceptions)
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

    servers = Servers()
    try:
        for item in spec["listeners"]:
            try:
                await servers.start(item)
            except Exception as exc:
                where = f"{item.get('address')}:{item.get('port', '')}"
                raise SystemExit(f"cannot start {item['kind']} on {where}: {exc!r}") from exc
        loop.add_reader(0, on_stdin)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(0)
        await servers.close()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(json.loads(args.spec.read_text())))


if __name__ == "__main__":
    run()
