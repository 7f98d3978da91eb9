"""The `throughput` check: one bounded download, timed, over a connection the probe owns.

After the http check passed, the probe opens a *fresh* connection to the address the http
check reached (same network, same TLS options and SNI), sends one `GET throughput.path` with
`Connection: close` and reads at most `throughput.bytes` body bytes. Nothing is kept alive or
pooled, and the body is counted, never stored.

What is measured (`ThroughputObservation`):
- `duration`: from the moment the request is sent to the last body byte when the download
  completes (the whole object, or `bytes` of it), else to the moment it ended (the deadline,
  or a failure). Connection setup (TCP and TLS handshakes) is not counted: the rate is the
  rate of the transfer, one round trip included;
- `bytes_per_second = body_bytes / duration`, recorded whenever a 2xx response head arrived,
  even when the download was cut: a peer that drips bytes ends at the deadline with the rate
  measured so far. Without a 2xx head nothing was measured and the rate is None.

The HTTP/1.1 exchange is `exporter.probes.http.Roundtrip` (h11), shared with the http check
and DoH; the download is its `ResponseReader`, counting the body and dropping it.

Bounds: the response head by `exporter.probes.http.MAX_HEAD_BYTES`, the body by `throughput.bytes`
(at most `MAX_THROUGHPUT_BYTES`), the time by `until` (the caller passes the probe's deadline
less a margin, so the download never makes the probe itself time out).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable

import h11

from exporter.config.model import HttpOptions, ThroughputOptions
from exporter.model.observation import ErrorKind, ThroughputObservation
from exporter.probes.errors import classify, describe
from exporter.probes.http import ByteStream, HttpExchange, PeerClosed, Roundtrip
from exporter.units import cut

#: Characters kept of an error detail.
MAX_DETAIL = 300


class StatusError(Exception):
    """The response is not 2xx: there is nothing to measure."""


class Download:
    """One timed download. `run()` raises on failure; `observation()` says what is known at
    any point, so a caller whose deadline cut `run()` still gets the rate so far."""

    def __init__(
        self,
        options: ThroughputOptions,
        *,
        authority: str,
        scheme: str,
        user_agent: str,
        http: HttpOptions | None = None,
    ) -> None:
        self.options = options
        # The request headers follow the http check's (a configured Host, extra headers).
        self._exchange = HttpExchange(
            dataclasses.replace(http or HttpOptions(), method="GET", path=options.path),
            authority=authority,
            scheme=scheme,
            user_agent=user_agent,
        )
        self._t0: float | None = None  # perf_counter seconds when the request was sent
        self._t_last: float | None = None  # ... when the download completed
        self._status: int | None = None
        self._ok_head = False
        self._bytes = 0
        self._complete = False
        self._wire: Roundtrip | None = None  # the exchange under way

    @property
    def url(self) -> str:
        return self._exchange.url

    @property
    def body_bytes(self) -> int:
        return self._bytes

    @property
    def status(self) -> int | None:
        return self._status

    def observation(
        self, *, error: ErrorKind | None = None, detail: str | None = None
    ) -> ThroughputObservation:
        """What is known now: a complete download is timed to its last byte, anything else
        to this moment."""
        duration = 0.0
        if self._t0 is not None:
            end = self._t_last if self._complete and self._t_last is not None else None
            duration = (end if end is not None else time.perf_counter()) - self._t0
        rate: float | None = None
        if self._ok_head and duration > 0:
            rate = self._bytes / duration
        return ThroughputObservation(
            url=self.url,
            limit=self.options.bytes,
            status=self._status,
            body_bytes=self._bytes,
            complete=self._complete,
            duration=duration,
            bytes_per_second=rate,
            error=error,
            detail=None if detail is None else cut(detail, MAX_DETAIL),
        )

    def failed(self, exc: BaseException) -> ThroughputObservation:
        """The observation of a download that raised `exc`."""
        if isinstance(exc, StatusError):
            return self.observation(error=ErrorKind.HTTP_STATUS, detail=str(exc))
        if isinstance(exc, h11.LocalProtocolError):
            return self.observation(error=ErrorKind.OTHER, detail=f"bad request: {exc}")
        if isinstance(exc, PeerClosed) or (
            isinstance(exc, h11.RemoteProtocolError)
            and self._wire is not None
            and self._wire.hung_up()
        ):
            return self.observation(error=ErrorKind.EOF, detail=self._closed_detail())
        if isinstance(exc, h11.RemoteProtocolError):
            return self.observation(error=ErrorKind.HTTP_PROTOCOL, detail=describe(exc))
        return self.observation(error=classify(exc), detail=describe(exc))

    def _closed_detail(self) -> str:
        if self._wire is None or self._wire.received == 0:
            return "peer closed the connection without a response"
        return f"peer closed the connection after {self._bytes} body bytes"

    async def run(self, stream: ByteStream) -> None:
        """Send the request and count body bytes until the object ends or `bytes` arrived.
        Raises StatusError for a response that is not 2xx, else what `Roundtrip.run` raises."""
        request = h11.Request(
            method="GET", target=self.options.path, headers=self._exchange.request_headers()
        )
        self._wire = wire = Roundtrip(request)
        self._t0 = time.perf_counter()
        await wire.run(stream, self)
        if not self._complete:  # the response ended before `bytes` arrived: all of it
            self._done()

    # ResponseReader

    def head(self, response: h11.Response) -> None:
        self._status = response.status_code
        if not 200 <= response.status_code <= 299:
            raise StatusError(f"status {response.status_code}: nothing to measure (not 2xx)")
        self._ok_head = True

    def body(self, data: bytes) -> bool:
        """Count `data`, up to `bytes` in all; True (enough) once the cap is reached."""
        room = self.options.bytes - self._bytes
        self._bytes += min(len(data), room)
        if len(data) >= room:
            self._done()
            return True
        return False

    def _done(self) -> None:
        self._t_last = time.perf_counter()
        self._complete = True


async def measure(
    open_stream: Callable[[], Awaitable[ByteStream]],
    options: ThroughputOptions,
    *,
    authority: str,
    scheme: str,
    user_agent: str,
    until: float,
    http: HttpOptions | None = None,
) -> ThroughputObservation:
    """Open a stream with `open_stream()` (the caller owns and closes its socket) and download
    over it until `until` (event loop time). Never raises except CancelledError."""
    download = Download(
        options, authority=authority, scheme=scheme, user_agent=user_agent, http=http
    )
    timeout = asyncio.timeout_at(until)
    try:
        async with timeout:
            stream = await open_stream()
            await download.run(stream)
    except TimeoutError as exc:
        if not timeout.expired():
            return download.failed(exc)
        where = "before the response" if download.status is None else "mid-body"
        return download.observation(
            error=ErrorKind.TIMEOUT,
            detail=f"cut at the deadline {where} after {download.body_bytes} body bytes",
        )
    except Exception as exc:  # OSError, ssl.SSLError, h11 errors, PeerClosed, StatusError
        return download.failed(exc)
    return download.observation()
