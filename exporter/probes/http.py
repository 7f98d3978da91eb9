"""One HTTP/1.1 request and its response over a byte stream the probe owns, with h11.

`Roundtrip` is the one HTTP/1.1 exchange of the probes: the http check (`HttpExchange`,
here), the throughput download (`exporter.probes.throughput`) and DoH
(`exporter.probes.dns.doh`) each read the response through it with their own
`ResponseReader`, which holds that caller's body limit and verdicts.

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

import time
from typing import Protocol

import h11

from exporter.config.model import HttpOptions
from exporter.model.observation import ErrorKind, HttpObservation
from exporter.probes.errors import classify, describe
from exporter.units import cut

#: Largest response head (status line + headers) accepted, bytes.
MAX_HEAD_BYTES = 64 * 1024
#: Body bytes kept in `HttpObservation.body_head`.
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


class ResponseReader(Protocol):
    """What a caller of `Roundtrip.run` does with the response as h11 parses it. Either
    method may raise to end the exchange; the exception leaves `run()` unchanged."""

    def head(self, response: h11.Response) -> None:
        """The final response's status line and headers (1xx responses are skipped)."""

    def body(self, data: bytes) -> bool:
        """A piece of the body; True when the caller has read enough (reading stops)."""


class Roundtrip:
    """One HTTP/1.1 request sent, and its response read, over h11: the one place the probes
    speak HTTP/1.1 (the http check, the throughput download, DoH).

    The caller keeps its own limits and verdicts in its `ResponseReader`; this keeps the
    facts of the wire that tell a peer hanging up from a malformed reply: `received` (bytes
    read from the stream, head and body), `eof` (the stream ended) and `head_done` (the
    final response head was parsed). The response head is bounded by `max_head` bytes.
    """

    def __init__(
        self, request: h11.Request, body: bytes = b"", *, max_head: int = MAX_HEAD_BYTES
    ) -> None:
        """Encode the request now (raises h11.LocalProtocolError when it is invalid)."""
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head)
        events: list[h11.Request | h11.Data | h11.EndOfMessage] = [request]
        if body:
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        #: The request's bytes, as sent.
        self.request = b"".join(self._conn.send(event) or b"" for event in events)
        self.received = 0
        self.eof = False
        self.head_done = False

    def hung_up(self) -> bool:
        """Whether a failed read is the peer closing (before any byte, or mid-body) rather
        than a malformed reply: a cut connection, not garbage."""
        return self.eof and (self.received == 0 or self.head_done)

    async def run(self, stream: ByteStream, reader: ResponseReader) -> None:
        """Send the request; read until the response ends or `reader.body` says enough.

        Raises the stream's errors, h11.RemoteProtocolError (a malformed reply, or the peer
        closing mid-reply: see `hung_up()`), PeerClosed, and whatever `reader` raised.
        """
        conn = self._conn
        await stream.send(self.request)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await stream.recv(RECV_CHUNK)
                if chunk:
                    self.received += len(chunk)
                else:
                    self.eof = True
                conn.receive_data(chunk)
                continue
            if isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue and the like: the final response follows
            if isinstance(event, h11.Response):
                self.head_done = True
                reader.head(event)
                continue
            if isinstance(event, h11.Data):
                if reader.body(event.data):
                    return  # enough: stop reading, the caller closes the connection
                continue
            if isinstance(event, h11.EndOfMessage):
                return
            if isinstance(event, h11.ConnectionClosed):
                raise PeerClosed("peer closed the connection before the end of the response")
            # h11.PAUSED: the peer switched protocols (101) though we asked for no upgrade.
            raise h11.RemoteProtocolError(f"unexpected {event!r} from peer")


def authority(host: str, port: int, *, tls: bool) -> str:
    """The `Host:` value: the name (or IP, bracketed if IPv6), with the port when it is not
    the scheme's default (so plain HTTP to port 443 says `:443`)."""
    name = f"[{host}]" if ":" in host else host
    default = 443 if tls else 80
    return name if port == default else f"{name}:{port}"


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
        self._wire: Roundtrip | None = None  # the exchange under way

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.options.path}"

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
            body_head=bytes(self._body[:BODY_HEAD_BYTES]),
            error=error,
            detail=None if detail is None else cut(detail, MAX_DETAIL),
            duration=duration,
        )

    async def run(self, stream: ByteStream) -> HttpObservation:
        """Send the request, read the response head and up to `body_limit` body bytes, and
        judge them (status, then body regexes). Never raises except CancelledError."""
        self._started = time.perf_counter()
        try:
            self._wire = Roundtrip(self._request_event())
            await self._wire.run(stream, self)
        except h11.LocalProtocolError as exc:  # our own request is invalid: a config problem
            return self.observation(error=ErrorKind.OTHER, detail=f"bad request: {exc}")
        except (h11.RemoteProtocolError, PeerClosed) as exc:
            if isinstance(exc, PeerClosed) or (self._wire is not None and self._wire.hung_up()):
                return self.observation(error=ErrorKind.EOF, detail=self._closed_detail())
            return self.observation(error=ErrorKind.HTTP_PROTOCOL, detail=describe(exc))
        except Exception as exc:  # OSError, ssl.SSLError: classified, not raised
            return self.observation(error=classify(exc), detail=describe(exc))
        error, detail = self._judge()
        return self.observation(error=error, detail=detail)

    def _closed_detail(self) -> str:
        if self._wire is None or self._wire.received == 0:
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

    def _request_event(self) -> h11.Request:
        return h11.Request(
            method=self.options.method, target=self.options.path, headers=self.request_headers()
        )

    def request(self) -> bytes:
        """The request's bytes as sent (also what localisation sends again, TTL-limited)."""
        return Roundtrip(self._request_event()).request

    # ResponseReader

    def head(self, response: h11.Response) -> None:
        self._status = response.status_code
        self._reason = cut(response.reason.decode("latin-1"), MAX_HEADER_VALUE)
        self._headers = tuple(
            (name.decode("latin-1"), cut(value.decode("latin-1"), MAX_HEADER_VALUE))
            for name, value in list(response.headers)[:MAX_HEADERS_KEPT]
        )

    def body(self, data: bytes) -> bool:
        """Keep the body up to `body_limit` bytes; past it, stop (`body_truncated`)."""
        room = self.options.body_limit - len(self._body)
        if len(data) > room:
            self._body += data[:room]
            self._truncated = True
            return True
        self._body += data
        return False
