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
- `stun`: a STUN responder on UDP address:port answering every Binding request with a
  success response carrying XOR-MAPPED-ADDRESS (tests.fakes.stun_server's `success`); with
  `drop_first` it ignores the first copy of every transaction (a lost datagram) and answers
  its retransmission.
- `coturn`: Debian's coturn (`binary`, `turnserver --stun-only`, UDP only) on every address
  of `addresses`, port `port`, logging to `directory`/turnserver.log; a child of this process
  (it dies with it), ready once every address answers a Binding request.
- `mtproto`: a Telegram data-centre look-alike on TCP address:port in `mode`
  (tests.fakes.mtproto_server.FakeDataCentre).

When every listener is bound it prints `ready` on stdout; it exits when stdin reaches EOF (the
lab closed it, or died) or on SIGTERM. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import h11
from aioice import stun

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


# --- STUN ------------------------------------------------------------------------------------

#: Transactions a `drop_first` responder remembers having seen once.
STUN_REMEMBERED = 4096
#: Seconds coturn may take to answer its first Binding request on every address.
COTURN_STARTUP = 20.0


class StunResponder(asyncio.DatagramProtocol):
    """Answers every Binding request with a success response (XOR-MAPPED-ADDRESS: the
    sender's address); with `drop_first`, the first copy of each transaction goes unanswered,
    as if lost, and its retransmission (same transaction ID, RFC 8489 §6.2.1) is answered."""

    def __init__(self, *, drop_first: bool = False) -> None:
        self.drop_first = drop_first
        self.transport: asyncio.DatagramTransport | None = None
        self.seen: collections.OrderedDict[bytes, None] = collections.OrderedDict()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        from tests.fakes.stun_server import success

        try:
            message = stun.parse_message(data)
        except Exception:  # untrusted bytes: not STUN
            return
        if (message.message_method, message.message_class) != (
            stun.Method.BINDING,
            stun.Class.REQUEST,
        ):
            return
        if self.drop_first and message.transaction_id not in self.seen:
            self.seen[message.transaction_id] = None
            while len(self.seen) > STUN_REMEMBERED:
                self.seen.popitem(last=False)
            log.info("stun: dropped the first copy of a transaction from %s", addr[0])
            return
        assert self.transport is not None
        for datagram in success(message, addr):
            self.transport.sendto(datagram, addr)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the process that started it dies
    (PR_SET_PDEATHSIG), so coturn never outlives the lab's server process."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def stun_answers(address: str, port: int, wait: float = 0.1) -> bool:
    """Whether a STUN server at address:port answers one Binding request within `wait`."""
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        sock.connect((address, port))
        try:
            sock.send(bytes(request))
            reply = stun.parse_message(sock.recv(2048))
        except (OSError, ValueError):  # not listening yet: refused, or silence
            return False
    return (
        reply.transaction_id == request.transaction_id
        and reply.message_class == stun.Class.RESPONSE
    )


class Coturn:
    """`turnserver --stun-only` on `addresses`:`port`, a child of this process."""

    def __init__(self, binary: str, addresses: Sequence[str], port: int, home: Path) -> None:
        self.addresses = list(addresses)
        self.port = port
        self.log_file = home / "turnserver.log"
        command = [
            binary,
            "-n",  # no configuration file: only these flags
            "--stun-only",
            *(f"--listening-ip={address}" for address in self.addresses),
            f"--listening-port={port}",
            "--no-tcp",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-rfc5780",  # NAT behaviour discovery wants a second port per address
            "--log-file=stdout",
            "--simple-log",
            f"--pidfile={home / 'turnserver.pid'}",
            f"--userdb={home / 'turndb'}",
        ]
        with self.log_file.open("wb") as out:
            # Started from the event loop's thread: PR_SET_PDEATHSIG follows the thread.
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
                preexec_fn=_die_with_parent,
            )

    def _tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-2000:]

    async def ready(self) -> None:
        deadline = time.monotonic() + COTURN_STARTUP
        for address in self.addresses:
            while not await asyncio.to_thread(stun_answers, address, self.port):
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"turnserver exited ({self.proc.returncode}):\n{self._tail()}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(f"turnserver never answered on {address}:\n{self._tail()}")
        log.info("coturn answers on %s port %d", ", ".join(self.addresses), self.port)

    async def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 3)


# --- the process -----------------------------------------------------------------------------


class Servers:
    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        #: Awaited once every listener started, before "ready" (a child server's start-up).
        self.pending: list[Awaitable[None]] = []

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
        elif kind == "stun":
            loop = asyncio.get_running_loop()
            drop_first = bool(item.get("drop_first", False))
            transport, _ = await loop.create_datagram_endpoint(
                lambda: StunResponder(drop_first=drop_first),
                local_addr=(item["address"], item["port"]),
            )

            async def close_stun() -> None:
                transport.close()

            self.closers.append(close_stun)
        elif kind == "coturn":
            coturn = Coturn(
                item["binary"], item["addresses"], item["port"], Path(item["directory"])
            )
            self.closers.append(coturn.stop)
            self.pending.append(coturn.ready())
        elif kind == "mtproto":
            from tests.fakes.mtproto_server import FakeDataCentre, Mode

            dc = FakeDataCentre(Mode(item["mode"]), host=item["address"], port=item["port"])
            await dc.start()
            self.closers.append(dc.stop)
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
        try:
            await asyncio.gather(*servers.pending)
        except Exception as exc:
            raise SystemExit(f"a server did not start: {exc}") from exc
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
