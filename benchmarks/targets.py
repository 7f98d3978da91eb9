"""Look-alike targets for the benchmark, in a process of their own: one DNS server and a few
HTTPS servers on loopback addresses, with test certificates.

- DNS (UDP, port 53, dnspython messages): `hN.bench.test A` answers one of the HTTPS
  addresses (N modulo their number); a name starting with `dslow` is answered after
  `--delay-ms`; anything else is NXDOMAIN.
- HTTPS (aiohttp, TLS from a trustme CA whose PEM is written to `<dir>/ca.pem`): `GET /`
  answers 200 with a small body; `GET /slow` answers after `--delay-ms`.

Delays are slept in a thread (`time.sleep`, precise to tens of microseconds) rather than on the
event loop, whose timers round to whole milliseconds: the benchmark compares reported phase
durations with the delay, so the delay itself must be exact.

Run: `python -m benchmarks.targets --dir D --dns 127.77.5.1 --https 127.77.5.10,127.77.5.11`;
prints one JSON line (`{"ready": true, ...}`) once every socket listens, runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import signal
import socket
import ssl
import sys
import time
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trustme
from aiohttp import web

ZONE = "bench.test"
HTTPS_PORT = 8443
BODY = b"ok\n" * 100  # 300 bytes, like a small API answer


class DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, addresses: list[str], delay: float, pool: concurrent.futures.Executor):
        self._addresses = addresses
        self._delay = delay
        self._pool = pool
        self._transport: asyncio.DatagramTransport | None = None
        self._raw: socket.socket | None = None  # a dup of the socket, for delayed replies

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        self._raw = socket.fromfd(sock.fileno(), sock.family, sock.type)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        t0 = time.perf_counter()
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        response = dns.message.make_response(query)
        question = query.question[0] if len(query.question) else None  # an RRset: falsy
        name = question.name.to_text().rstrip(".").lower() if question is not None else ""
        host = name.split(".", 1)[0]
        if name.endswith("." + ZONE) and host[:1] in ("h", "d"):
            digits = "".join(c for c in host if c.isdigit()) or "0"
            if question is not None and question.rdtype == dns.rdatatype.A:
                address = self._addresses[int(digits) % len(self._addresses)]
                response.answer.append(
                    dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, "A", address)
                )
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        wire = response.to_wire()
        assert self._transport is not None
        if host.startswith("dslow") and self._raw is not None:
            self._pool.submit(_send_later, self._raw, wire, addr, self._delay, t0)
        else:
            self._transport.sendto(wire, addr)


#: Seconds each delayed answer was really held (received -> sent), minus the delay: the
#: targets' own timing error, which every side's measured error includes.
HOLD_ERRORS: dict[str, list[float]] = {"dns": [], "http": []}


def _send_later(
    sock: socket.socket, wire: bytes, addr: tuple[str, int], delay: float, t0: float
) -> None:
    time.sleep(max(0.0, t0 + delay - time.perf_counter()))
    sock.sendto(wire, addr)  # a UDP send: never blocks for long, thread-safe in the kernel
    HOLD_ERRORS["dns"].append(time.perf_counter() - t0 - delay)


def make_app(delay: float, pool: concurrent.futures.Executor) -> web.Application:
    async def index(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="text/plain")

    async def slow(request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(pool, time.sleep, delay)
        response = web.Response(body=BODY, content_type="text/plain")
        await response.prepare(request)
        await response.write_eof()
        HOLD_ERRORS["http"].append(time.perf_counter() - t0 - delay)
        return response

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/slow", slow)
    return app


async def serve(args: argparse.Namespace, directory: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(f"*.{ZONE}").configure_cert(server_ctx)
    https = [a for a in args.https.split(",") if a]
    delay = args.delay_ms / 1000.0
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=64)
    loop = asyncio.get_running_loop()
    dns_proto = DnsProtocol(https, delay, pool)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: dns_proto, local_addr=(args.dns, args.dns_port)
    )
    runner = web.AppRunner(make_app(delay, pool), access_log=None)
    await runner.setup()
    for address in https:
        await web.TCPSite(runner, address, HTTPS_PORT, ssl_context=server_ctx, backlog=1024).start()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(json.dumps({"ready": True, "dns": args.dns, "https": https}), flush=True)
    await stop.wait()
    print(json.dumps({"hold_errors": HOLD_ERRORS}), flush=True)
    transport.close()
    await runner.cleanup()
    pool.shutdown(wait=False, cancel_futures=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--dns", required=True, help="address of the DNS server (port 53)")
    parser.add_argument("--dns-port", type=int, default=53)
    parser.add_argument("--https", required=True, help="comma-separated HTTPS addresses")
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args()
    # A delayed answer is sent from a worker thread, which needs the GIL to run: hand it
    # over sooner than the default 5 ms.
    sys.setswitchinterval(0.0002)
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import uvloop  # optional: cheaper servers leave more of the machine to the sides

        uvloop.run(serve(args, directory))
    except ImportError:
        asyncio.run(serve(args, directory))
    sys.exit(0)


if __name__ == "__main__":
    main()
