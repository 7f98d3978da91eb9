"""Look-alike targets for the benchmark, in a process of their own: one DNS server and a few
HTTPS servers on loopback addresses, with test certificates.

- DNS (UDP, port 53, dnspython messages, in a thread of its own): `hN.bench.test A` answers
  one of the HTTPS addresses (N modulo their number); a name starting with `dslow` is
  answered `--delay-ms` after the query's kernel arrival stamp; anything else is NXDOMAIN.
- HTTPS (aiohttp, TLS from a trustme CA whose PEM is written to `<dir>/ca.pem`): `GET /`
  answers 200 with a small body. On `SLOW_PORT` of the same addresses, threads of their own
  (`SlowHttps`) answer `GET /slow` `--delay-ms` after reading the request.

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
import contextlib
import http.server
import json
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trustme
from aiohttp import web

from exporter.probes.network import stamp_age, stamp_arrivals

ZONE = "bench.test"
HTTPS_PORT = 8443
#: Port of `GET /slow` on the same addresses (`SlowHttps`).
SLOW_PORT = 8444
BODY = b"ok\n" * 100  # 300 bytes, like a small API answer


class DnsServer:
    """UDP DNS in a thread of its own, reading with the kernel's arrival stamps
    (SO_TIMESTAMPNS): a delayed answer is held from the query's arrival, not from when this
    busy process came to read it, so the hold errors below include the targets' lateness in
    reading a query as well as in answering it."""

    def __init__(
        self,
        address: tuple[str, int],
        addresses: list[str],
        delay: float,
        pool: concurrent.futures.Executor,
    ) -> None:
        self._addresses = addresses
        self._delay = delay
        self._pool = pool
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self._stamped = stamp_arrivals(self.sock)
        self.sock.settimeout(0.2)  # how often the thread looks at `stop`
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, ancillary, _flags, addr = self.sock.recvmsg(4096, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            t0 = time.perf_counter()
            age = stamp_age(ancillary, time.time()) if self._stamped else None
            t0 -= age or 0.0
            reply = self._answer(data)
            if reply is None:
                continue
            wire, slow = reply
            if slow:
                self._pool.submit(_send_later, self.sock, wire, addr, self._delay, t0)
            else:
                self.sock.sendto(wire, addr)

    def _answer(self, data: bytes) -> tuple[bytes, bool] | None:
        """The reply's wire form, and whether it is to be delayed; None for garbage."""
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None
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
        return response.to_wire(), host.startswith("dslow")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


#: Seconds each delayed answer was really held (received -> sent), minus the delay: the
#: targets' own timing error, which every side's measured error includes.
HOLD_ERRORS: dict[str, list[float]] = {"dns": [], "http": []}


def _send_later(
    sock: socket.socket, wire: bytes, addr: tuple[str, int], delay: float, t0: float
) -> None:
    time.sleep(max(0.0, t0 + delay - time.perf_counter()))
    sock.sendto(wire, addr)  # a UDP send: never blocks for long, thread-safe in the kernel
    HOLD_ERRORS["dns"].append(time.perf_counter() - t0 - delay)


def make_app() -> web.Application:
    async def index(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/", index)
    return app


class SlowHttps(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """`GET /slow` on `SLOW_PORT`, a thread per connection over blocking TLS sockets: the
    response is written `delay` after the request was read with no event loop in between,
    so the hold is exact to a thread's wake-up (the aiohttp servers' loop, busy with every
    other tuple's handshake, answered a delayed request several ms late at load)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], ctx: ssl.SSLContext, delay: float) -> None:
        self.ctx = ctx
        self.delay = delay
        super().__init__(address, _SlowHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake in the connection's own thread, not the accepting one.
        request.settimeout(10)
        with contextlib.suppress(OSError):
            tls = self.ctx.wrap_socket(request, server_side=True)
            super().finish_request(tls, client_address)


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SlowHttps

    def do_GET(self) -> None:  # the name http.server calls
        t0 = time.perf_counter()
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
        self.wfile.flush()
        HOLD_ERRORS["http"].append(time.perf_counter() - t0 - self.server.delay)

    def log_message(self, format: str, *args: Any) -> None:  # the base class names it so
        pass


async def serve(args: argparse.Namespace, directory: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(f"*.{ZONE}").configure_cert(server_ctx)
    https = [a for a in args.https.split(",") if a]
    delay = args.delay_ms / 1000.0
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=64)
    loop = asyncio.get_running_loop()
    dns_server = DnsServer((args.dns, args.dns_port), https, delay, pool)
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    slow: list[SlowHttps] = []
    for address in https:
        await web.TCPSite(runner, address, HTTPS_PORT, ssl_context=server_ctx, backlog=1024).start()
        slow.append(SlowHttps((address, SLOW_PORT), server_ctx, delay))
        threading.Thread(target=slow[-1].serve_forever, args=(0.2,), daemon=True).start()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(json.dumps({"ready": True, "dns": args.dns, "https": https}), flush=True)
    await stop.wait()
    print(json.dumps({"hold_errors": HOLD_ERRORS}), flush=True)
    dns_server.close()
    for server in slow:
        server.shutdown()
        server.server_close()
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
