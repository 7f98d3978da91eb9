"""One HTTP/1.1 request and its response over a byte stream the probe owns, with h11.

h11 is sans-IO: it parses, we move bytes. The stream is the probe's own connection (a TLS
stream, or the bare TCP socket: Telegram data centres speak plain HTTP on port 443), so what
is measured is exactly the path the earlier phases saw; nothing is pooled or kept alive.

Everything a hostile peer controls is bounded:
- the response head (status line + headers) by `MAX_HEAD_BYTES` (h11's
  `max_incomplete_event_size`): endless headers fail as `http_protocol_error`;
- the body by `HttpOptions.body_limit`: past it we stop reading (`body_truncated`, no error);
- what is kept for pages and logs: `BODY_HEAD_BYTES` of body, `MAX_HEADERS_KEPT` headers with
  values cut at `MAX_HEADER_VALUE` characters, details cut at `MAX_DETAIL` characters;
- time is bounded by the caller (the probe's `asyncio.timeout`): a peer dripping one byte a
  second ends there.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol

import h11

from exporter.config import HttpOptions
from exporter.errors import classify, describe
from exporter.model import ErrorKind, HttpObservation, pack

#: Largest response head (status line + headers) accepted, bytes.
MAX_HEAD_BYTES = 64 * 1024
#: Body bytes kept (deflated) in `HttpObservation.body_head`.
BODY_HEAD_BYTES = 4 * 1024
#: Response headers kept in `HttpObservation.headers` (the first ones, in wire order).
MAX_HEADERS_KEPT = 20
#: Characters kept of a header value or the reason phrase.
MAX_HEADER_VALUE = 200
#: Characters kept of an error detail (it may quote peer bytes).
MAX_DETAIL = 300
#: Bytes asked of the stream per read.
RECV_CHUNK = 64 * 1024


class ByteStream(Protocol):
    """A connected, ordered byte stream (plain TCP or TLS) owned by the caller."""

    async def send(self, data: bytes) -> None:
        """Send all of `data`; raises OSError / ssl.SSLError on failure."""

    async def recv(self, max_bytes: int) -> bytes:
        """At most `max_bytes` bytes, at least one; b"" once the peer has closed."""


class PeerClosed(EOFError):
    """The peer closed the connection before a complete response (classified `eof`)."""


def authority(host: str, port: int, *, tls: bool) -> str:
    """The `Host:` value: the name (or IP, bracketed if IPv6), with the port when it is not
    the scheme's default (so plain HTTP to port 443 says `:443`)."""
    name = f"[{host}]" if ":" in host else host
    default = 443 if tls else 80
    return name if port == default else f"{name}:{port}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HttpExchange:
    """One request/response. `run()` never raises (except CancelledError); `observation()`
    returns what is known so far, so a caller whose timeout cancelled `run()` still gets the
    status and headers if they had arrived."""

    def __init__(
        self, options: HttpOptions, *, authority: str, scheme: str, user_agent: str
    ) -> None:
        self.options = options
        self.authority = authority
        self.scheme = scheme
        self.user_agent = user_agent
        self._started: float | None = None  # perf_counter seconds when run() began
        self._status: int | None = None
        self._reason: str | None = None
        self._headers: tuple[tuple[str, str], ...] = ()
        self._body = bytearray()
        self._truncated = False
        self._received = 0  # bytes received from the stream, head and body
        self._eof = False
        self._head_done = False

    @property
    def url(self) -> str:
        return sys.intern(f"{self.scheme}://{self.authority}{self.options.path}")  # kept per tuple

    def request_headers(self) -> list[tuple[str, str]]:
        """Our defaults, each replaced by a configured header of the same name (so a config
        can set its own Host for fronting tests); `Connection: close` always."""
        configured = {k.lower(): (k, v) for k, v in self.options.headers.items()}
        headers: list[tuple[str, str]] = []
        for name, value in (("Host", self.authority), ("User-Agent", self.user_agent)):
            headers.append(configured.pop(name.lower(), (name, value)))
        configured.pop("connection", None)
        headers.extend(configured.values())
        headers.append(("Connection", "close"))
        return headers

    def observation(
        self,
        *,
        error: ErrorKind | None = None,
        detail: str | None = None,
        duration: float | None = None,
    ) -> HttpObservation:
        """What is known now. `duration` defaults to the time since `run()` began, seconds."""
        if duration is None:
            duration = 0.0 if self._started is None else time.perf_counter() - self._started
        return HttpObservation(
            method=self.options.method,
            url=self.url,
            status=self._status,
            reason=self._reason,
            headers=self._headers,
            body_bytes=len(self._body),
            body_truncated=self._truncated,
            body_packed=pack(bytes(self._body[:BODY_HEAD_BYTES])),
            error=error,
            detail=None if detail is None else _cut(detail, MAX_DETAIL),
            duration=duration,
        )

    async def run(self, stream: ByteStream) -> HttpObservation:
        """Send the request, read the response head and up to `body_limit` body bytes, and
        judge them (status, then body regexes). Never raises except CancelledError."""
        self._started = time.perf_counter()
        try:
            await self._exchange(stream)
        except h11.LocalProtocolError as exc:  # our own request is invalid: a config problem
            return self.observation(error=ErrorKind.OTHER, detail=f"bad request: {exc}")
        except h11.RemoteProtocolError as exc:
            if self._eof and (self._received == 0 or self._head_done):
                # Closed before any byte or mid-body: a cut connection, not garbage.
                return self.observation(error=ErrorKind.EOF, detail=self._closed_detail())
            return self.observation(error=ErrorKind.HTTP_PROTOCOL, detail=describe(exc))
        except Exception as exc:  # OSError, ssl.SSLError, PeerClosed: classified, not raised
            return self.observation(error=classify(exc), detail=describe(exc))
        error, detail = self._judge()
        return self.observation(error=error, detail=detail)

    def _closed_detail(self) -> str:
        if self._received == 0:
            return "peer closed the connection without a response"
        return f"peer closed the connection mid-body after {len(self._body)} body bytes"

    def _judge(self) -> tuple[ErrorKind | None, str | None]:
        """The verdict on a complete read. A body regex match wins over a status mismatch:
        it is the config's explicit blockpage signature, the more specific fact."""
        body = bytes(self._body)
        for pattern in self.options.fail_if_body_matches:
            if pattern.search(body):
                return ErrorKind.HTTP_BODY_MATCH, f"body matches {pattern.pattern!r}"
        if self._status is not None and not self.options.status_ok(self._status):
            expected = ", ".join(str(r) for r in self.options.expect_status)
            return ErrorKind.HTTP_STATUS, f"status {self._status} not in [{expected}]"
        return None, None

    def request(self, conn: h11.Connection | None = None) -> bytes:
        """The request's bytes as sent (also what localisation sends again, TTL-limited)."""
        conn = conn or h11.Connection(h11.CLIENT)
        request = h11.Request(
            method=self.options.method, target=self.options.path, headers=self.request_headers()
        )
        return (conn.send(request) or b"") + (conn.send(h11.EndOfMessage()) or b"")

    async def _exchange(self, stream: ByteStream) -> None:
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        await stream.send(self.request(conn))
        limit = self.options.body_limit
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await stream.recv(RECV_CHUNK)
                if chunk:
                    self._received += len(chunk)
                else:
                    self._eof = True
                conn.receive_data(chunk)
                continue
            if isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue and the like: the final response follows
            if isinstance(event, h11.Response):
                self._head_done = True
                self._status = event.status_code
                self._reason = _cut(event.reason.decode("latin-1"), MAX_HEADER_VALUE)
                # Interned: the same names and most values (server, type, the second's date)
                # come back from every endpoint, and each tuple keeps its last headers.
                self._headers = tuple(
                    (
                        sys.intern(name.decode("latin-1")),
                        sys.intern(_cut(value.decode("latin-1"), MAX_HEADER_VALUE)),
                    )
                    for name, value in list(event.headers)[:MAX_HEADERS_KEPT]
                )
                continue
            if isinstance(event, h11.Data):
                room = limit - len(self._body)
                if len(event.data) > room:
                    self._body += event.data[:room]
                    self._truncated = True
                    return  # enough: stop reading, the caller closes the connection
                self._body += event.data
                continue
            if isinstance(event, h11.EndOfMessage):
                return
            if isinstance(event, h11.ConnectionClosed):
                raise PeerClosed(self._closed_detail())
            # h11.PAUSED: the peer switched protocols (101) though we asked for no upgrade.
            raise h11.RemoteProtocolError(f"unexpected {event!r} from peer")
