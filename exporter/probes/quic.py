"""The `quic` check: a QUIC handshake, and optionally one HTTP/3 request, over UDP.

Censors block QUIC (UDP 443) so that apps fall back to TCP, where SNI filtering works. The
check makes a QUIC handshake (RFC 9000/9001) with the endpoint's SNI and ALPN `h3` to the
address the tcp check reached (or the first DNS answer) and, with `quic.http3`, one HTTP/3
GET of `http.path` (aioquic's `H3Connection`), the status judged by `http.expect_status`
and the body read up to `http.body_limit`.

How it is measured:
- the UDP socket comes from the network's `Dialer` (`udp_socket`), so a netns, interface or
  source address is honoured exactly as for TCP; a proxy network has no UDP (`network_setup`;
  the loader refuses the combination). The socket is *connected* to the address, so the kernel
  reports an ICMP port unreachable as `ECONNREFUSED` (`refused`) instead of dropping it;
- aioquic's sans-IO `QuicConnection` is driven by a small datagram protocol of our own (not
  `QuicConnectionProtocol`), which owns its retransmission timer: when the check ends,
  whatever the outcome, the timer is cancelled, the transport aborted and the socket closed
  before `QuicProbe.run` returns. Nothing of a connection outlives its probe;
- failures are named as the TCP phases name them: silence (UDP has no reset) is a `timeout`
  at the caller's deadline; an ICMP error is `refused` / `host_unreachable` / ...; a
  certificate our side rejects is one of the `cert_*` kinds; any other TLS alert or transport
  error during the handshake is `tls_error` (`refused` for QUIC's CONNECTION_REFUSED); after
  the handshake, a peer that closes or resets the request is `eof` / `reset`, an HTTP/3
  error `http_protocol_error`, a status not in `http.expect_status` `http_status`;
- aioquic only reports a connection close once the closing period (3 PTO) is over. To name
  a failure when it happens, the protocol reads the pending close of the connection (a
  private attribute, through `exporter.probes.compat`) after every datagram and timer; when
  a future aioquic renames it, failures are still reported, only later.

TLS verification follows the endpoint's `TlsOptions` like the TCP path: `ca_file` replaces
the system roots, `extra_ca_file` adds to them, `insecure_skip_verify` turns verification
off. The system roots are OpenSSL's default paths (certifi's bundle when there are none).
aioquic verifies every handshake against a store it builds from these files, so a QUIC
handshake with the system roots costs a few milliseconds of CPU more than a TCP one.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode, QuicProtocolVersion

from exporter.config.model import HttpOptions, TlsOptions
from exporter.model.observation import ErrorKind, QuicObservation
from exporter.probes.compat import close_is_local, pending_close, quic_version
from exporter.probes.errors import classify, describe
from exporter.probes.network import Dialer, family_of
from exporter.units import cut

#: The ALPN offered: HTTP/3 (RFC 9114), what a messaging app's QUIC stack offers.
H3_ALPN = ("h3",)
#: Characters kept of an error detail.
MAX_DETAIL = 300
#: TLS alerts (RFC 8446 §6.2) carried in a QUIC CRYPTO_ERROR (0x100 + alert).
_ALERT_BAD_CERTIFICATE = 42
_ALERT_CERTIFICATE_EXPIRED = 45
#: Reason phrases of aioquic's own certificate check (tls.verify_certificate): OpenSSL's
#: verify messages for a chain to no trusted root, and service_identity's for a name.
_UNKNOWN_AUTHORITY = re.compile(
    r"issuer certificate|self[- ]signed|unable to verify the first certificate|untrusted",
    re.IGNORECASE,
)
_HOSTNAME = re.compile(r"doesn't match|subjectAltName|does not match", re.IGNORECASE)
_EXPIRED = re.compile(r"has expired|not yet valid|no longer valid", re.IGNORECASE)
_VERSIONS = {
    int(QuicProtocolVersion.VERSION_1): "1",
    int(QuicProtocolVersion.VERSION_2): "2",
}


class QuicFailure(Exception):
    """The check failed in a way that has a name (`kind`) and a text (`detail`)."""

    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


# --- TLS trust ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Trust:
    """What aioquic is told to verify against (QuicConfiguration fields)."""

    cafile: str | None
    capath: str | None
    cadata: bytes | None
    verify_mode: int | None


def _system_roots() -> tuple[str | None, str | None]:
    """OpenSSL's default CA file and directory (what `ssl.create_default_context()` loads);
    certifi's bundle when neither exists (aioquic's own default)."""
    paths = ssl.get_default_verify_paths()
    if paths.cafile or paths.capath:
        return paths.cafile, paths.capath
    import certifi  # aioquic's dependency

    return certifi.where(), None


class QuicTrust:
    """The verification settings of each `TlsOptions`, computed once (CA files are read at
    the first probe that needs them, like `exporter.probes.tls.TlsContexts`)."""

    def __init__(self) -> None:
        self._cache: dict[TlsOptions, _Trust] = {}

    def get(self, options: TlsOptions) -> _Trust:
        trust = self._cache.get(options)
        if trust is None:
            trust = _trust(options)
            self._cache[options] = trust
        return trust


def _trust(options: TlsOptions) -> _Trust:
    if options.insecure_skip_verify:
        return _Trust(cafile=None, capath=None, cadata=None, verify_mode=ssl.CERT_NONE)
    if options.ca_file:
        return _Trust(cafile=options.ca_file, capath=None, cadata=None, verify_mode=None)
    cafile, capath = _system_roots()
    cadata = Path(options.extra_ca_file).read_bytes() if options.extra_ca_file else None
    return _Trust(cafile=cafile, capath=capath, cadata=cadata, verify_mode=None)


def configuration(
    trust: _Trust, server_name: str, *, alpn: Sequence[str] = H3_ALPN, idle_timeout: float = 30.0
) -> QuicConfiguration:
    """A client configuration: `server_name` is the SNI and the name checked in the
    certificate (an IP literal: no SNI, checked against the IP SANs, as for TCP)."""
    config = QuicConfiguration(
        is_client=True,
        alpn_protocols=list(alpn),
        server_name=server_name,
        idle_timeout=idle_timeout,
    )
    config.load_verify_locations(cafile=trust.cafile, capath=trust.capath, cadata=trust.cadata)
    config.verify_mode = trust.verify_mode
    return config


# --- failures ----------------------------------------------------------------------------------


def close_failure(
    error_code: int, frame_type: int | None, reason: str, *, local: bool, connected: bool
) -> QuicFailure:
    """The failure a CONNECTION_CLOSE names: sent by us (`local`, e.g. a certificate we
    rejected) or by the peer, before or after the handshake completed (`connected`)."""
    who = "we closed" if local else "the peer closed"
    text = f"{who} the connection: code 0x{error_code:x}" + (f" ({reason})" if reason else "")
    application = frame_type is None and connected
    crypto = QuicErrorCode.CRYPTO_ERROR <= error_code < QuicErrorCode.CRYPTO_ERROR + 0x100
    if crypto and not application:
        alert = error_code - QuicErrorCode.CRYPTO_ERROR
        if local and alert == _ALERT_CERTIFICATE_EXPIRED:
            return QuicFailure(ErrorKind.CERT_EXPIRED, text)
        if local and alert == _ALERT_BAD_CERTIFICATE:
            if _HOSTNAME.search(reason):
                return QuicFailure(ErrorKind.CERT_HOSTNAME, text)
            if _EXPIRED.search(reason):
                return QuicFailure(ErrorKind.CERT_EXPIRED, text)
            if _UNKNOWN_AUTHORITY.search(reason):
                return QuicFailure(ErrorKind.CERT_UNKNOWN_AUTHORITY, text)
            return QuicFailure(ErrorKind.CERT_INVALID, text)
        return QuicFailure(ErrorKind.TLS_ERROR, text)
    if reason == "Idle timeout" or error_code == QuicErrorCode.NO_VIABLE_PATH:
        return QuicFailure(ErrorKind.TIMEOUT, text)
    if not connected:
        if error_code == QuicErrorCode.CONNECTION_REFUSED:
            return QuicFailure(ErrorKind.REFUSED, text)
        return QuicFailure(ErrorKind.TLS_ERROR, text)
    if local:
        return QuicFailure(ErrorKind.HTTP_PROTOCOL, text)  # our H3 layer found a protocol error
    if error_code in (QuicErrorCode.NO_ERROR, 0x100):  # NO_ERROR / H3_NO_ERROR
        return QuicFailure(ErrorKind.EOF, text)
    return QuicFailure(ErrorKind.HTTP_PROTOCOL, text)


# --- the connection ----------------------------------------------------------------------------


class _Client(asyncio.DatagramProtocol):
    """Drives one client `QuicConnection` over a connected UDP socket: datagrams in and
    out, the retransmission timer, and the events the check waits for."""

    def __init__(self, quic: QuicConnection, peer: Any) -> None:
        self.quic = quic
        self.peer = peer
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._connected: asyncio.Future[str | None] = self._loop.create_future()
        self._changed = asyncio.Event()
        self.failure: QuicFailure | None = None
        self.h3: H3Connection | None = None
        self.h3_events: list[H3Event] = []
        self.reset_streams: dict[int, int] = {}  # stream id -> error code
        self._done = False

    # asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._done:
            return
        try:
            self.quic.receive_datagram(data, self.peer, now=self._loop.time())
        except Exception as exc:  # a bug of the library or a CA file gone: named, not raised
            self._fail(QuicFailure(ErrorKind.OTHER, cut(describe(exc), MAX_DETAIL)))
            return
        self._step()

    def error_received(self, exc: Exception) -> None:
        """An ICMP error on the connected socket: port unreachable is `refused`."""
        if not self._done:
            self._fail(QuicFailure(classify(exc), cut(describe(exc), MAX_DETAIL)))

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()

    # driving

    def start(self) -> None:
        self.quic.connect(self.peer, now=self._loop.time())
        self.transmit()

    def _step(self) -> None:
        """After input (a datagram, a timer): handle the events (data before a close in the
        same datagram), name a pending close, send what is due."""
        self._events()  # ends with _check_close()
        self.transmit()

    def _check_close(self) -> None:
        close = pending_close(self.quic)
        if close is None or self.failure is not None:
            return
        # A close we initiated is still pending (not yet sent) right after the input that
        # caused it; a close the peer sent has put the connection in its draining state.
        local = close_is_local(self.quic)
        self._fail(
            close_failure(
                close.error_code,
                close.frame_type,
                close.reason_phrase,
                local=local,
                connected=self.is_connected,
            )
        )

    @property
    def is_connected(self) -> bool:
        """Whether the handshake completed."""
        return self._connected.done() and self._connected.exception() is None

    def _events(self) -> None:
        while (event := self.quic.next_event()) is not None:
            if isinstance(event, events.HandshakeCompleted):
                if not self._connected.done():
                    self._connected.set_result(event.alpn_protocol)
            elif isinstance(event, events.ConnectionTerminated):
                if self.failure is None:
                    self._fail(
                        close_failure(
                            event.error_code,
                            event.frame_type,
                            event.reason_phrase,
                            local=False,
                            connected=self.is_connected,
                        )
                    )
            elif isinstance(event, events.StreamReset):
                self.reset_streams[event.stream_id] = event.error_code
            if self.h3 is not None:
                self.h3_events.extend(self.h3.handle_event(event))
            self._changed.set()
        self._check_close()  # the H3 layer may have closed the connection

    def transmit(self) -> None:
        if self._transport is None or self._done:
            return
        for data, _ in self.quic.datagrams_to_send(now=self._loop.time()):
            self._transport.sendto(data)
        at = self.quic.get_timer()
        if self._timer is not None and self._timer_at != at:
            self._cancel_timer()
        if self._timer is None and at is not None:
            self._timer = self._loop.call_at(at, self._on_timer)
        self._timer_at = at

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._done:
            return
        self.quic.handle_timer(now=self._loop.time())
        self._step()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _fail(self, failure: QuicFailure) -> None:
        if self.failure is None:
            self.failure = failure
        if not self._connected.done():
            self._connected.set_exception(failure)
            self._connected.exception()  # retrieved: no "never retrieved" warning
        self._changed.set()

    # waiting

    async def connected(self) -> str | None:
        """Wait for the handshake; the ALPN protocol chosen. Raises QuicFailure."""
        return await asyncio.shield(self._connected)

    async def changed(self) -> None:
        """Wait for the next event or failure."""
        if self.failure is not None:
            raise self.failure
        await self._changed.wait()
        self._changed.clear()
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        """End it now: a CONNECTION_CLOSE to the peer (best effort), then no more timers."""
        if self._done:
            return
        if self.failure is None:
            self.quic.close()
            self.transmit()
        self._done = True
        self._cancel_timer()


# --- the check ---------------------------------------------------------------------------------


class QuicProbe:
    """One `quic` check. `run()` never raises except CancelledError and closes everything it
    opened before returning (or before the cancellation propagates); `observation()` says
    what is known at any point, for a caller whose deadline cut `run()`."""

    def __init__(
        self,
        dialer: Dialer,
        address: str,
        port: int,
        *,
        server_name: str | None,
        tls: TlsOptions,
        trusts: QuicTrust | None = None,
        http: HttpOptions | None,
        authority: str,
        user_agent: str,
        idle_timeout: float = 30.0,
    ) -> None:
        self.dialer = dialer
        self.address = address
        self.port = port
        self.server_name = server_name
        self.tls = tls
        self.trusts = trusts or QuicTrust()  # a shared cache, or one of its own
        self.http = http  # None: handshake only
        self.authority = authority
        self.user_agent = user_agent
        self.idle_timeout = idle_timeout
        self._started: float | None = None
        self._version: str | None = None
        self._alpn: str | None = None
        self._handshake: float | None = None
        self._status: int | None = None
        self._body = 0
        self._truncated = False

    @property
    def url(self) -> str | None:
        if self.http is None:
            return None
        return f"https://{self.authority}{self.http.path}"

    def observation(
        self,
        *,
        error: ErrorKind | None = None,
        detail: str | None = None,
        duration: float | None = None,
    ) -> QuicObservation:
        """What is known now. `duration` defaults to the time since `run()` began."""
        if duration is None:
            duration = 0.0 if self._started is None else time.perf_counter() - self._started
        return QuicObservation(
            address=self.address,
            port=self.port,
            server_name=self.server_name,
            version=self._version,
            alpn=self._alpn,
            handshake_duration=self._handshake,
            url=self.url,
            status=self._status,
            body_bytes=self._body,
            body_truncated=self._truncated,
            error=error,
            detail=None if detail is None else cut(detail, MAX_DETAIL),
            duration=duration,
        )

    async def run(self) -> QuicObservation:
        self._started = time.perf_counter()
        try:
            await self._run()
        except QuicFailure as exc:
            return self.observation(error=exc.kind, detail=exc.detail)
        except Exception as exc:  # OSError from the socket, a bad CA file, ...
            return self.observation(error=classify(exc), detail=describe(exc))
        return self.observation(error=self._judge(), detail=self._judge_detail())

    def _judge(self) -> ErrorKind | None:
        if (
            self.http is not None
            and self._status is not None
            and not self.http.status_ok(self._status)
        ):
            return ErrorKind.HTTP_STATUS
        return None

    def _judge_detail(self) -> str | None:
        if self._judge() is None or self.http is None:
            return None
        expected = ", ".join(str(r) for r in self.http.expect_status)
        return f"status {self._status} not in [{expected}]"

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        sock = self.dialer.udp_socket(family_of(self.address))
        transport: asyncio.DatagramTransport | None = None
        client: _Client | None = None
        try:
            sock.connect((self.address, self.port))  # UDP: no packet, just the peer
            peer = sock.getpeername()  # the form recvfrom reports (4-tuple for IPv6)
            config = configuration(
                self.trusts.get(self.tls),  # reads an extra_ca_file once per cache
                self.server_name or self.address,
                idle_timeout=self.idle_timeout,
            )
            quic = QuicConnection(configuration=config)
            client = _Client(quic, peer)
            made = client
            transport, _ = await loop.create_datagram_endpoint(lambda: made, sock=sock)
            client.start()
            self._alpn = await client.connected()
            self._handshake = time.perf_counter() - self._started_at()
            version = quic_version(quic)
            self._version = _VERSIONS.get(version, hex(version)) if version else "?"
            if self.http is not None:
                await self._request(client)
        finally:
            if client is not None:
                client.close()
            if transport is not None:
                transport.abort()
            sock.close()  # now, not at the transport's next loop iteration

    def _started_at(self) -> float:
        assert self._started is not None
        return self._started

    def request_headers(self) -> list[tuple[bytes, bytes]]:
        """The pseudo-headers, then our defaults, each replaced by a configured header of the
        same name (`Host` becomes `:authority`); HTTP/3 has no `Connection`."""
        assert self.http is not None
        configured = {k.lower(): v for k, v in self.http.headers.items()}
        authority = configured.pop("host", self.authority)
        configured.pop("connection", None)
        user_agent = configured.pop("user-agent", self.user_agent)
        return [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", self.http.path.encode()),
            (b"user-agent", user_agent.encode()),
            *((k.encode(), v.encode()) for k, v in configured.items()),
        ]

    async def _request(self, client: _Client) -> None:
        """GET `http.path` over HTTP/3; read the status and up to `body_limit` body bytes."""
        assert self.http is not None
        limit = self.http.body_limit
        h3 = H3Connection(client.quic)
        client.h3 = h3
        stream_id = client.quic.get_next_available_stream_id()
        h3.send_headers(stream_id, self.request_headers(), end_stream=True)
        client.transmit()
        while not self._consume(client, stream_id, limit):
            try:
                await client.changed()
            except QuicFailure:
                # The peer may end the connection in the datagram that completes the
                # response: what arrived before the close still counts.
                if self._consume(client, stream_id, limit):
                    return
                raise

    def _consume(self, client: _Client, stream_id: int, limit: int) -> bool:
        """Take the HTTP/3 events received so far; True once the response is complete (or
        `limit` body bytes arrived). Raises QuicFailure for a reset or a malformed response."""
        pending, client.h3_events = client.h3_events, []
        for event in pending:
            if getattr(event, "stream_id", None) != stream_id:
                continue
            if isinstance(event, HeadersReceived):
                status = dict(event.headers).get(b":status", b"")
                try:
                    self._status = int(status)
                except ValueError:
                    raise QuicFailure(
                        ErrorKind.HTTP_PROTOCOL, f"bad :status {status[:20]!r}"
                    ) from None
            elif isinstance(event, DataReceived):
                room = limit - self._body
                if len(event.data) > room:
                    self._body += room
                    self._truncated = True
                    return True  # enough; closing the connection ends the stream
                self._body += len(event.data)
            if getattr(event, "stream_ended", False):
                if self._status is None:
                    raise QuicFailure(ErrorKind.HTTP_PROTOCOL, "the response had no head")
                return True
        if stream_id in client.reset_streams:
            code = client.reset_streams[stream_id]
            raise QuicFailure(ErrorKind.RESET, f"the peer reset the request (code 0x{code:x})")
        return False
