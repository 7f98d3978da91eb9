"""The Prober: probe one tuple (endpoint, network, resolver, family) into an Observation.

A probe runs the endpoint's checks in order (dns → connect → tls → http → quic, a QUIC
handshake over UDP to the same address, `exporter.quic`; then the optional throughput
download on a connection of its own, `exporter.throughput`) over fresh sockets
from the tuple's `Dialer`, and records facts: every connect attempt, the certificate seen (and,
when verification fails, the one presented to an unverified handshake: MITM evidence), the
control-SNI handshake (`Endpoint.control_sni`, made before the real ClientHello), the HTTP
status and body head, phase durations, and its own log. It never judges beyond naming
the failure (`ErrorKind`) and the phase it happened in; telling censorship from outage is a
later, pure step.

Invariants:
- `probe()` never raises except CancelledError, and takes at most `config.timeout` seconds
  (plus scheduling noise): one `asyncio.timeout` covers the whole probe, both attempts
  included. On timeout the observation is *partial*: finished phases are kept, the running
  one is recorded with its duration until the deadline, error `timeout`.
- Every socket is made by the Dialer for this probe only and is closed before `probe()`
  returns, whatever happens (success, failure, timeout, cancellation).
- TLS runs over the connected socket through `ssl.MemoryBIO`s, so the probe owns the socket
  outright: no transports, no background TLS shutdown keeping descriptors open, and the
  handshake fails exactly where the peer misbehaved (reset, EOF, silence, garbage).
- Nothing that can be shared is built per probe: one `TlsContexts` (contexts never resume
  sessions, so every handshake is a full one) and one `Dialer` per network.
- Logs never show proxy credentials (only `Dialer.describe()` is logged), are at most
  `MAX_LOG_LINES` lines of at most `MAX_LOG_LINE` characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import ssl
import sys
import time
import weakref
from types import MappingProxyType

from exporter import __version__
from exporter.config import Check, Config, Endpoint, IdentityCheck, Network, Resolver, TlsOptions
from exporter.difference import title_of
from exporter.errors import classify, describe
from exporter.http import HttpExchange, authority
from exporter.matrix import Target, TargetKind
from exporter.model import (
    Certificate,
    ConnectAttempt,
    DnsObservation,
    ErrorKind,
    HttpObservation,
    Log,
    Observation,
    PathObservation,
    PathOutcome,
    Phase,
    QuicObservation,
    ThroughputObservation,
    TlsObservation,
    TupleKey,
)
from exporter.network import Dialer, sock_recv_stamped, stamp_arrivals, stamping_keeper
from exporter.path import Localiser
from exporter.quic import QuicProbe, QuicTrust
from exporter.resolvers import ask_identity, query
from exporter.throughput import measure
from exporter.tls import TlsContexts, client_hello
from exporter.units import format_rate

USER_AGENT = f"messaging-exporter/{__version__}"
#: Addresses of a DNS answer tried, in answer order.
MAX_ADDRESSES = 4
#: A failed probe is retried when at least this fraction of its budget is left.
RETRY_MIN_FRACTION = 1 / 3
#: The first attempt's connect phase may use at most this fraction of the budget left when
#: it begins; a connect still pending then (lost SYNs: the kernel resends one after 1 s, the
#: next after 3 s) ends that attempt as a timeout, which is retried at once with a fresh
#: socket, so the retry always has the rest (docs/verdicts.md, rule 13 and the retry note).
FIRST_CONNECT_SHARE = 0.5
MAX_LOG_LINES = 50
#: Characters per log line.
MAX_LOG_LINE = 300
#: Characters kept of an exception text in an observation's `detail`.
MAX_DETAIL = 300
#: Bytes asked of a socket per read.
RECV_CHUNK = 64 * 1024
#: ALPN offered when an HTTP/1.1 request follows the handshake.
HTTP_ALPN = ("http/1.1",)
#: Largest fraction of the remaining budget the control-SNI handshake may use, so that a
#: silent control still leaves the real handshake time to run.
CONTROL_SHARE = 0.5
#: The throughput download ends this long before the probe's deadline (at most this fraction
#: of the budget), so that a slow download is measured, never the probe's own timeout.
THROUGHPUT_MARGIN = 0.2
THROUGHPUT_MARGIN_FRACTION = 0.05

#: A control handshake already made in this probe: (address, its observation).
Control = tuple[str, TlsObservation]


@dataclasses.dataclass(slots=True)
class _Previous:
    """What a retry takes over from the first attempt: its DNS answer (the name resolved;
    asking again only adds exposure to loss) and its control handshake."""

    dns: DnsObservation | None = None
    control: Control | None = None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail(exc: BaseException) -> str:
    return _cut(describe(exc), MAX_DETAIL)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


class ProbeLog:
    """The probe's own log, blackbox_exporter style: `+0.040s connect 1.2.3.4:443 ok`.

    Offsets are seconds since the probe began (monotonic). Bounded: at most `MAX_LOG_LINES`
    lines (the last one says how many were dropped), each at most `MAX_LOG_LINE` characters.
    """

    def __init__(self, t0: float) -> None:
        self._t0 = t0  # perf_counter seconds at probe start
        self._lines: list[str] = []
        self._dropped = 0

    def add(self, text: str) -> None:
        if len(self._lines) >= MAX_LOG_LINES - 1:
            self._dropped += 1
            return
        line = f"+{time.perf_counter() - self._t0:.3f}s {text}"
        self._lines.append(_cut(" ".join(line.split()), MAX_LOG_LINE))

    def lines(self) -> Log:
        if self._dropped:
            return Log((*self._lines, f"... {self._dropped} more log lines dropped"))
        return Log(self._lines)


class _Reader:
    """Reads of a probe's socket, with the kernel's arrival stamps when `stamped`: how long
    the newest data read sat in the kernel before the event loop came to read it. That wait
    is the exporter's lateness, not the peer's, and `lag()` lets a phase leave it out."""

    def __init__(self, sock: socket.socket, *, stamped: bool = False) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._stamped = stamped and stamp_arrivals(sock)
        self._read_at = 0.0  # perf_counter seconds of the newest stamped read with data
        self._arrived = 0.0  # perf_counter seconds when that data arrived, by its stamp

    async def _read(self, max_bytes: int) -> bytes:
        if not self._stamped:
            return await self._loop.sock_recv(self._sock, max_bytes)
        data, waited = await sock_recv_stamped(self._sock, max_bytes)
        if waited is not None:
            self._read_at = time.perf_counter()
            self._arrived = self._read_at - waited
        return data

    def lag(self, since: float) -> float:
        """`unread_time` of the newest data read, for a phase that began at `since`."""
        return unread_time(read_at=self._read_at, arrived=self._arrived, since=since)


def unread_time(*, read_at: float, arrived: float, since: float) -> float:
    """Seconds data sat in the kernel unread, for a phase that began at `since`: from its
    arrival (or `since`, when it arrived earlier) to its read; 0.0 when it was read before
    the phase began (not the phase's data). All on one clock (perf_counter seconds)."""
    if read_at <= since:
        return 0.0
    return read_at - max(arrived, since)


class SocketStream(_Reader):
    """Plain TCP as a `ByteStream` (exporter.http)."""

    async def send(self, data: bytes) -> None:
        await self._loop.sock_sendall(self._sock, data)

    async def recv(self, max_bytes: int) -> bytes:
        return await self._read(max_bytes)


class TlsStream(_Reader):
    """TLS client over a connected non-blocking socket, through memory BIOs.

    The socket stays the caller's: closing it ends the stream. Reads treat a close without
    close_notify like a clean close (as `suppress_ragged_eofs` does): HTTP framing, checked
    by h11, tells a cut body from a complete one.
    """

    def __init__(
        self,
        sock: socket.socket,
        ctx: ssl.SSLContext,
        server_hostname: str,
        *,
        stamped: bool = False,
    ) -> None:
        super().__init__(sock, stamped=stamped)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        # An IP literal as server_hostname: CPython sends no SNI and checks the IP SANs.
        self.ssl_object = ctx.wrap_bio(self._in, self._out, server_hostname=server_hostname)

    async def _flush(self) -> None:
        data = self._out.read()
        if data:
            await self._loop.sock_sendall(self._sock, data)

    async def _fill(self) -> None:
        data = await self._read(RECV_CHUNK)
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()

    def _send_alert(self) -> None:
        """Best effort, never blocking: let the peer see our alert (e.g. bad certificate)."""
        data = self._out.read()
        if data:
            with contextlib.suppress(OSError):
                self._sock.send(data)

    async def handshake(self) -> None:
        while True:
            try:
                self.ssl_object.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except ssl.SSLError:
                self._send_alert()
                raise
        await self._flush()  # TLS 1.3: our Finished

    async def send(self, data: bytes) -> None:
        self.ssl_object.write(data)
        await self._flush()

    async def recv(self, max_bytes: int) -> bytes:
        while True:
            try:
                return self.ssl_object.read(max_bytes)
            except ssl.SSLWantReadError:
                await self._flush()  # e.g. a key update answer
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""


def _resolver_server(resolver: Resolver) -> str:
    """Where a DNS query goes, for an observation built when the query was cut short."""
    if resolver.url:
        return resolver.url
    if resolver.address is None:
        return f"{resolver.type}://resolv.conf"
    host = f"[{resolver.address}]" if ":" in resolver.address else resolver.address
    return f"{resolver.type}://{host}:{resolver.port}"


class _Attempt:
    """Mutable record of one attempt, readable at any point: when the probe's timeout cuts
    the attempt, `timed_out()` turns the running phase into a timeout and keeps the rest."""

    def __init__(self, key: TupleKey, log: ProbeLog) -> None:
        self.key = key
        self.log = log
        self.phases: dict[Phase, float] = {}
        self.phase: Phase | None = None  # the phase running now
        self.phase_t0 = 0.0  # perf_counter seconds when it began
        self.overhead = 0.0  # seconds left out of the phase ended last (`end`)
        self.dns: DnsObservation | None = None
        self.connect_capped = False  # the last connect try was cut by its share, not the probe
        self.dns_question: tuple[str, str, str] | None = None  # qname, qtype, server
        self.connects: list[ConnectAttempt] = []
        self.pending_connect: tuple[str, int, float] | None = None  # address, port, t0
        self.address: str | None = None
        self.tls: TlsObservation | None = None
        self.control: TlsObservation | None = None
        self.tls_server_name: str | None = None
        self.exchange: HttpExchange | None = None
        self.http: HttpObservation | None = None
        self.throughput: ThroughputObservation | None = None
        self.quic_probe: QuicProbe | None = None
        self.quic: QuicObservation | None = None
        self.error: ErrorKind | None = None
        self.failed_phase: Phase | None = None
        self.sockets: list[socket.socket] = []

    @property
    def dns_answered(self) -> bool:
        """Whether this attempt's DNS phase ran and gave addresses."""
        dns = self.dns
        return dns is not None and dns.error is None and bool(dns.answers)

    def begin(self, phase: Phase) -> None:
        self.phase = phase
        self.phase_t0 = time.perf_counter()

    def end(self, reader: _Reader | None = None) -> float:
        """End the running phase; its duration, seconds. With the `reader` the phase waited
        on, the time the newest data it read sat in the kernel unread (the event loop's
        lateness) is left out, and kept in `overhead`."""
        now = time.perf_counter()
        self.overhead = reader.lag(self.phase_t0) if reader is not None else 0.0
        duration = max(now - self.phase_t0 - self.overhead, 0.0)
        if self.phase is not None:
            self.phases[self.phase] = duration
        self.phase = None
        return duration

    def fail(self, phase: Phase, kind: ErrorKind) -> None:
        self.error = kind
        self.failed_phase = phase

    def timed_out(self, budget: float) -> None:
        """The probe's deadline passed while this attempt was running."""
        if self.error is not None:
            # Already failed; only the extra unverified handshake was running.
            self.log.add("timeout before the unverified certificate was read")
            return
        phase = self.phase
        now = time.perf_counter()
        duration = self.end()
        detail = f"no result within the probe timeout of {budget:g}s"
        if phase is Phase.DNS and self.dns_question is not None:
            qname, qtype, server = self.dns_question
            self.dns = DnsObservation(
                qname=qname,
                qtype=qtype,
                server=server,
                error=ErrorKind.TIMEOUT,
                detail=detail,
                duration=duration,
            )
        elif phase is Phase.CONNECT and self.pending_connect is not None:
            address, port, t0 = self.pending_connect
            self.connects.append(
                ConnectAttempt(
                    address=address,
                    port=port,
                    error=ErrorKind.TIMEOUT,
                    detail=detail,
                    duration=now - t0,
                )
            )
        elif phase is Phase.TLS:
            self.tls = TlsObservation(
                server_name=self.tls_server_name,
                error=ErrorKind.TIMEOUT,
                detail=detail,
                duration=duration,
            )
        elif phase is Phase.HTTP and self.exchange is not None:
            self.http = self.exchange.observation(
                error=ErrorKind.TIMEOUT, detail=detail, duration=duration
            )
        elif phase is Phase.QUIC and self.quic_probe is not None:
            # UDP has no reset: silence (a censor dropping QUIC) ends here.
            self.quic = self.quic_probe.observation(
                error=ErrorKind.TIMEOUT, detail=detail, duration=duration
            )
        self.error = ErrorKind.TIMEOUT
        self.failed_phase = phase
        self.log.add(f"{phase or 'probe'}: timeout after {_ms(duration)} ({detail})")

    def crashed(self, exc: BaseException) -> None:
        """A bug, not a network fact: record it rather than kill the caller's loop."""
        phase = self.phase
        if phase is not None:
            self.end()
        self.error = ErrorKind.OTHER
        self.failed_phase = phase
        self.log.add(f"internal error: {_detail(exc)}")

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()  # idempotent; RST if unread data remains, which is fine
        self.sockets.clear()

    def observation(
        self, *, started: float, finished: float, total: float, attempts: int
    ) -> Observation:
        phases = dict(self.phases)
        phases[Phase.TOTAL] = total
        return Observation(
            key=self.key,
            started=started,
            finished=finished,
            error=self.error,
            failed_phase=self.failed_phase,
            phases=MappingProxyType(phases),
            dns=self.dns,
            connects=tuple(self.connects),
            address=self.address,
            tls=self.tls,
            control=self.control,
            http=self.http,
            throughput=self.throughput,
            quic=self.quic,
            attempts=attempts,
            log=self.log.lines(),
        )


class Prober:
    """Probes targets of one Config. Cheap per probe; safe to share between tasks."""

    def __init__(self, config: Config, *, resolv_conf: str | None = None) -> None:
        self._config = config
        self._resolv_conf = resolv_conf
        self._contexts = TlsContexts()
        self._quic_trust = QuicTrust()
        self._dialers = {name: Dialer(net) for name, net in config.networks.items()}
        self._localiser = Localiser(config.localisation, config.interval)
        #: Per plain-HTTP tuple, its last answer's status and title, and whether localisation
        #: settled it (found it at the destination, or could not tell after trying). A new
        #: answer is localised (a blockpage appearing); an unsettled one again each probe
        #: (the localiser's cache answers within its interval), so that a page from the path
        #: keeps its evidence round after round; a settled one is not.
        self._answers: dict[TupleKey, tuple[tuple[int | None, str], bool]] = {}
        keeper = stamping_keeper()  # arrival stamps on from now on, not from the first read
        self._release = weakref.finalize(self, keeper.close) if keeper is not None else None
        self._prewarm()

    def _prewarm(self) -> None:
        """Build every TLS context now (loading roots takes milliseconds and blocks the loop).
        A context that cannot be built is left for its probes to report."""
        for endpoint in self._config.endpoints():
            if Check.QUIC in endpoint.checks:
                with contextlib.suppress(OSError):
                    self._quic_trust.get(endpoint.tls)
            if Check.TLS not in endpoint.checks:
                continue
            alpn = HTTP_ALPN if Check.HTTP in endpoint.checks else ()
            for options in (endpoint.tls, _unverified(endpoint.tls)):
                with contextlib.suppress(OSError, ssl.SSLError):
                    self._contexts.get(options, alpn)

    def _dialer(self, network: Network) -> Dialer:
        dialer = self._dialers.get(network.name)
        if dialer is not None and dialer.network == network:
            return dialer
        return Dialer(network)  # a target from outside the config: cheap, not cached

    async def aclose(self) -> None:
        """Probes keep no connections; the localisations still running are cancelled, and
        the stamping keeper is closed (or at the latest when the prober is collected)."""
        await self._localiser.aclose()
        if self._release is not None:
            self._release()

    async def probe(self, target: Target) -> Observation:
        """Probe `target` within `config.timeout` seconds; never raises but CancelledError.

        A failure with at least a third of the budget left is retried once on fresh
        connections, and so is a first connect cut at `FIRST_CONNECT_SHARE` of what was left;
        the retry reuses the first attempt's DNS answer. The second attempt's facts are
        reported with `attempts=2` (the log keeps both). `phases[total]`, `started` and
        `finished` span the whole probe.
        """
        loop = asyncio.get_running_loop()
        budget = self._config.timeout
        t0 = time.perf_counter()
        started = time.time()
        deadline = loop.time() + budget
        dialer = self._dialer(target.network)
        log = ProbeLog(t0)
        key = target.key
        log.add(
            f"probe {key.service}/{key.endpoint} IPv{key.family} resolver {key.resolver} "
            f"network {dialer.name} ({dialer.describe()}) timeout {budget:g}s"
        )
        attempt = await self._attempt(target, dialer, log, deadline, budget, None, first=True)
        attempts = 1
        if attempt.error is not None:
            left = deadline - loop.time()
            if left >= budget * RETRY_MIN_FRACTION or (attempt.connect_capped and left > 0):
                log.add(
                    f"attempt 1 failed: {attempt.error} in {attempt.failed_phase}; "
                    f"retrying with {left:.3f}s left"
                )
                previous = _Previous(dns=attempt.dns if attempt.dns_answered else None)
                if attempt.control is not None and attempt.address is not None:
                    previous.control = (attempt.address, attempt.control)
                attempt = await self._attempt(
                    target, dialer, log, deadline, budget, previous, first=False
                )
                attempts = 2
            else:
                log.add(f"not retried: {max(left, 0.0):.3f}s of the budget left")
        total = time.perf_counter() - t0
        finished = time.time()
        log.add(
            f"{'success' if attempt.error is None else f'failed: {attempt.error}'} in {_ms(total)}"
        )
        path = await self._localise(target, dialer, attempt, log)
        observation = attempt.observation(
            started=started, finished=finished, total=total, attempts=attempts
        )
        return observation if path is None else dataclasses.replace(observation, path=path)

    async def _localise(
        self, target: Target, dialer: Dialer, attempt: _Attempt, log: ProbeLog
    ) -> PathObservation | None:
        """Where on the path the failing (or changed) exchange ends (exporter.path), under
        the localisation budget; None when the probe gives no reason to look. Its time is
        not the probe's: phases and `total` end before it."""
        if not self._config.localisation.enabled:
            return None
        what = self._suspect(target, attempt)
        if what is None:
            return None
        phase, address, payload = what
        port = target.endpoint.port
        path = await self._localiser.run(dialer, phase, address, port, payload)
        log.add(f"path ({phase} to {address}:{port}): {path.outcome}: {path.detail}")
        answer = self._answers.get(target.key)
        if phase is Phase.HTTP and answer is not None:
            settled = path.outcome is PathOutcome.AT_DESTINATION or (
                path.outcome is PathOutcome.INCONCLUSIVE and path.probes > 0
            )
            self._answers[target.key] = (answer[0], settled)
        return path

    def _suspect(self, target: Target, attempt: _Attempt) -> tuple[Phase, str, bytes] | None:
        """The exchange to localise: a connect, TLS or plain-HTTP failure, or a plain-HTTP
        answer that is not the one this tuple got last time (a blockpage appearing looks
        like that); the address the probe dialled, and what to send."""
        endpoint = target.endpoint
        phase = attempt.failed_phase
        if attempt.error in (ErrorKind.NETWORK_SETUP, ErrorKind.PROXY):
            return None
        if attempt.error is not None and phase is Phase.CONNECT and attempt.connects:
            return Phase.CONNECT, attempt.connects[-1].address, b""
        address = attempt.address
        if address is None:
            return None
        if attempt.error is not None and phase is Phase.TLS:
            alpn = HTTP_ALPN if Check.HTTP in endpoint.checks else ()
            context = self._contexts.get(_unverified(endpoint.tls), alpn)
            return Phase.TLS, address, client_hello(context, endpoint.server_name)
        plain = Check.HTTP in endpoint.checks and Check.TLS not in endpoint.checks
        exchange = attempt.exchange
        if not plain or exchange is None or attempt.http is None:
            return None
        if attempt.error is not None and phase is not Phase.HTTP:
            return None  # a later check failed: the HTTP answer is not in question
        seen = (attempt.http.status, title_of(attempt.http.body_head))
        if attempt.error is None and self._answers.get(target.key) == (seen, True):
            return None
        self._answers[target.key] = (seen, False)
        return Phase.HTTP, address, exchange.request()

    async def _attempt(
        self,
        target: Target,
        dialer: Dialer,
        log: ProbeLog,
        deadline: float,
        budget: float,
        previous: _Previous | None,
        *,
        first: bool,
    ) -> _Attempt:
        attempt = _Attempt(target.key, log)
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                await self._run(target, dialer, attempt, deadline, previous, first=first)
        except TimeoutError as exc:
            if timeout.expired():
                attempt.timed_out(budget)
            else:
                attempt.crashed(exc)
        except Exception as exc:
            attempt.crashed(exc)
        finally:
            attempt.close()
        return attempt

    async def _run(
        self,
        target: Target,
        dialer: Dialer,
        attempt: _Attempt,
        deadline: float,
        previous: _Previous | None,
        *,
        first: bool,
    ) -> None:
        endpoint = target.endpoint
        checks = endpoint.checks
        control = previous.control if previous is not None else None
        if endpoint.address is not None:
            addresses: tuple[str, ...] = (endpoint.address,)
        elif previous is not None and previous.dns is not None:
            # The name resolved in attempt 1: ask again only what failed after it.
            attempt.dns = previous.dns
            attempt.phases[Phase.DNS] = previous.dns.duration
            addresses = previous.dns.answers
            attempt.log.add(f"dns: reusing attempt 1's answer {', '.join(addresses)}")
        else:
            # Without an address every later check needs the DNS answer, so DNS runs even
            # if a config left it out of `checks`.
            found = await self._dns(target, dialer, attempt, deadline)
            if found is None:
                return
            addresses = found
        if not {Check.TCP, Check.TLS, Check.HTTP} & set(checks):
            if Check.QUIC in checks:  # QUIC alone: to the first address
                attempt.address = addresses[0]
                await self._quic(endpoint, dialer, addresses[0], attempt)
            return
        connect_deadline = deadline
        if first:
            loop = asyncio.get_running_loop()
            connect_deadline = loop.time() + (deadline - loop.time()) * FIRST_CONNECT_SHARE
        sock = await self._connect(
            endpoint, dialer, addresses, attempt, connect_deadline, capped=first
        )
        if sock is None:
            return
        assert attempt.address is not None  # set with the socket
        # Stamped when it carries the http phase itself; over TLS, the TlsStream reads.
        stream: SocketStream | TlsStream = SocketStream(sock, stamped=Check.TLS not in checks)
        if Check.TLS in checks:
            if endpoint.control_sni is not None:
                await self._control(endpoint, dialer, attempt, deadline, control)
            tls_stream = await self._tls(endpoint, dialer, sock, attempt.address, attempt)
            if tls_stream is None:
                return
            stream = tls_stream
        if Check.HTTP in checks:
            await self._http(endpoint, stream, attempt.address, attempt)
        if Check.QUIC in checks and attempt.error is None:
            # To the address TCP reached, before the throughput download (which may use
            # the budget up to its margin); its failure is the probe's.
            await self._quic(endpoint, dialer, attempt.address, attempt)
        if Check.THROUGHPUT in checks and attempt.error is None:  # it needs http
            sock.close()  # done with it (Connection: close); the download gets its own
            await self._throughput(endpoint, dialer, attempt.address, attempt, deadline)

    async def _dns(
        self, target: Target, dialer: Dialer, attempt: _Attempt, deadline: float
    ) -> tuple[str, ...] | None:
        """The addresses to dial, or None (the failure recorded)."""
        endpoint = target.endpoint
        resolver = target.resolver
        host = endpoint.host
        attempt.begin(Phase.DNS)
        if resolver is None or host is None:
            attempt.end()
            attempt.fail(Phase.DNS, ErrorKind.OTHER)
            attempt.log.add("dns: target has neither an address nor a host and resolver")
            return None
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
        if target.kind is TargetKind.RESOLVER_CHECK and resolver.identity is not None:
            await self._identity(resolver, resolver.identity, dialer, attempt, remaining)
            return None  # nothing to dial: the facts are the answer
        qtype = "AAAA" if target.key.family == 6 else "A"
        attempt.dns_question = (host, qtype, _resolver_server(resolver))
        result = await query(
            resolver,
            dialer,
            host,
            qtype,
            contexts=self._contexts,
            timeout=remaining,
            resolv_conf=self._resolv_conf,
        )
        duration = attempt.end()
        if result.overhead:  # the exporter's own time (a busy loop): not the resolver's
            duration = attempt.phases[Phase.DNS] = max(duration - result.overhead, 0.0)
        if result.error is None and not result.answers:
            result = dataclasses.replace(
                result, error=ErrorKind.DNS_NO_ANSWER, detail=result.detail or "no addresses"
            )
        attempt.dns = result
        if result.error is not None:
            attempt.fail(Phase.DNS, result.error)
            attempt.log.add(
                f"dns {host} {qtype} via {resolver.name} ({result.server}): {result.error} "
                f"rcode={result.rcode} in {_ms(duration)}: {result.detail or ''}"
            )
            return None
        attempt.log.add(
            f"resolved {host} {qtype} via {resolver.name} in {_ms(duration)}: "
            f"{', '.join(result.answers)}"
        )
        return result.answers

    async def _identity(
        self,
        resolver: Resolver,
        check: IdentityCheck,
        dialer: Dialer,
        attempt: _Attempt,
        remaining: float,
    ) -> None:
        """An interception check: the facts only (judged by `verdict`), never dialled."""
        attempt.dns_question = (check.qname, check.qtype, _resolver_server(resolver))
        result = await ask_identity(
            resolver,
            dialer,
            check,
            contexts=self._contexts,
            timeout=remaining,
            resolv_conf=self._resolv_conf,
        )
        duration = attempt.end()
        attempt.dns = result
        if result.error is not None:
            attempt.fail(Phase.DNS, result.error)
        attempt.log.add(
            f"identity {check.qname} {check.qclass} {check.qtype} via {resolver.name}: "
            f"rcode={result.rcode} answers={list(result.answers)} in {_ms(duration)}"
            + (f": {result.error}" if result.error else "")
        )

    async def _connect(
        self,
        endpoint: Endpoint,
        dialer: Dialer,
        addresses: tuple[str, ...],
        attempt: _Attempt,
        deadline: float,
        *,
        capped: bool,
    ) -> socket.socket | None:
        """Connect to the addresses in order until one answers by `deadline`: the probe's,
        or when `capped` the first attempt's share of it. Each try gets an equal share of what
        is left, so time a dead address does not use flows to the next; an uncapped last try
        runs until the probe's own timeout. A capped last try cut by `deadline` is a timeout
        that sets `connect_capped`, so the probe retries it."""
        loop = asyncio.get_running_loop()
        port = endpoint.port
        tries = addresses[:MAX_ADDRESSES]
        attempt.begin(Phase.CONNECT)
        last_kind = ErrorKind.OTHER
        for index, address in enumerate(tries):
            share = (deadline - loop.time()) / (len(tries) - index)
            t0 = time.perf_counter()
            attempt.pending_connect = (address, port, t0)
            last = index == len(tries) - 1
            scope = asyncio.timeout(None if last and not capped else share)
            try:
                async with scope:
                    sock = await dialer.connect_tcp(address, port)
            except Exception as exc:
                duration = time.perf_counter() - t0
                attempt.pending_connect = None
                last_kind = classify(exc)
                if scope.expired():
                    exc = TimeoutError(f"no connection within {share:.3g}s (this try's share)")
                    attempt.connect_capped = last
                attempt.connects.append(
                    ConnectAttempt(
                        address=address,
                        port=port,
                        error=last_kind,
                        detail=_detail(exc),
                        duration=duration,
                    )
                )
                attempt.log.add(
                    f"connect {address}:{port} {last_kind} in {_ms(duration)}: {_detail(exc)}"
                )
                continue
            duration = time.perf_counter() - t0
            attempt.sockets.append(sock)
            attempt.pending_connect = None
            attempt.connects.append(
                ConnectAttempt(
                    address=address,
                    port=port,
                    duration=duration,
                    rtt=dialer.handshake_rtt(sock),
                )
            )
            attempt.address = address
            attempt.end()
            attempt.log.add(f"connect {address}:{port} ok in {_ms(duration)}")
            return sock
        attempt.end()
        attempt.fail(Phase.CONNECT, last_kind)
        return None

    async def _tls(
        self,
        endpoint: Endpoint,
        dialer: Dialer,
        sock: socket.socket,
        address: str,
        attempt: _Attempt,
    ) -> TlsStream | None:
        """Handshake over `sock`. On a failed verification, read the certificate the peer
        presents through a second, unverified handshake (the MITM evidence) and still fail."""
        alpn = HTTP_ALPN if Check.HTTP in endpoint.checks else ()
        sni = endpoint.server_name
        check_name = sni or address  # IP: no SNI, verified against the IP SANs
        attempt.tls_server_name = sni
        attempt.begin(Phase.TLS)
        stream: TlsStream | None = None
        try:
            ctx = self._contexts.get(endpoint.tls, alpn)
            stream = TlsStream(sock, ctx, check_name, stamped=True)
            await stream.handshake()
        except Exception as exc:
            duration = attempt.end(stream)
            kind = classify(exc)
            attempt.tls = TlsObservation(
                server_name=sni,
                error=kind,
                detail=_detail(exc),
                duration=duration,
                overhead=attempt.overhead,
            )
            attempt.fail(Phase.TLS, kind)
            attempt.log.add(f"tls sni={sni}: {kind} in {_ms(duration)}: {_detail(exc)}")
            if isinstance(exc, ssl.SSLCertVerificationError):
                certificate = await self._unverified_certificate(
                    endpoint, dialer, address, check_name, alpn, attempt
                )
                attempt.tls = dataclasses.replace(attempt.tls, certificate=certificate)
            return None
        duration = attempt.end(stream)
        obj = stream.ssl_object
        verified = ctx.verify_mode != ssl.CERT_NONE
        certificate = self._contexts.certificate(
            obj.getpeercert(binary_form=True), verified=verified
        )
        tls_version, tls_cipher, tls_alpn = _negotiated(obj)
        attempt.tls = TlsObservation(
            server_name=sni,
            version=tls_version,
            cipher=tls_cipher,
            alpn=tls_alpn,
            certificate=certificate,
            duration=duration,
            overhead=attempt.overhead,
        )
        attempt.log.add(
            f"tls sni={sni} {attempt.tls.version} {attempt.tls.cipher} "
            f"alpn={attempt.tls.alpn} in {_ms(duration)}; {_describe_cert(certificate)}"
        )
        return stream

    async def _control(
        self,
        endpoint: Endpoint,
        dialer: Dialer,
        attempt: _Attempt,
        deadline: float,
        previous: Control | None,
    ) -> None:
        """The control: a handshake with `control_sni` (an innocuous name) to the address the
        real connection reached, on a fresh connection, made *before* the real ClientHello
        (a censor may keep blocking the flow for minutes after a hit on the real name). A
        retry reuses the first attempt's control when it reached the same address, for the
        same reason. Runs between the connect and tls phases (no phase of its own), with at
        most `CONTROL_SHARE` of the remaining budget; its failure is a fact, not the probe's.
        """
        address = attempt.address
        sni = endpoint.control_sni
        assert address is not None
        assert sni is not None
        if previous is not None and previous[0] == address:
            attempt.control = previous[1]
            attempt.log.add(f"control sni={sni}: reusing attempt 1's ({previous[1].error or 'ok'})")
            return
        alpn = HTTP_ALPN if Check.HTTP in endpoint.checks else ()
        share = (deadline - asyncio.get_running_loop().time()) * CONTROL_SHARE
        t0 = time.perf_counter()
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(share):
                ctx = self._contexts.get(endpoint.tls, alpn)
                sock = await dialer.connect_tcp(address, endpoint.port)
                attempt.sockets.append(sock)
                t0 = time.perf_counter()  # the handshake's own duration, as for tls
                stream = TlsStream(sock, ctx, sni)
                await stream.handshake()
        except Exception as exc:
            kind = classify(exc)
            where = "handshake" if sock is not None else "connect"
            attempt.control = TlsObservation(
                server_name=sni,
                error=kind,
                detail=_cut(f"{where}: {describe(exc)}", MAX_DETAIL),
                duration=time.perf_counter() - t0,
            )
            attempt.log.add(f"control sni={sni} to {address}: {kind} in {where}: {_detail(exc)}")
            return
        finally:
            if sock is not None:
                sock.close()
        duration = time.perf_counter() - t0
        obj = stream.ssl_object
        certificate = self._contexts.certificate(
            obj.getpeercert(binary_form=True), verified=ctx.verify_mode != ssl.CERT_NONE
        )
        tls_version, tls_cipher, tls_alpn = _negotiated(obj)
        attempt.control = TlsObservation(
            server_name=sni,
            version=tls_version,
            cipher=tls_cipher,
            alpn=tls_alpn,
            certificate=certificate,
            duration=duration,
        )
        attempt.log.add(
            f"control sni={sni} to {address}: ok {obj.version()} in {_ms(duration)}; "
            f"{_describe_cert(certificate)}"
        )

    async def _unverified_certificate(
        self,
        endpoint: Endpoint,
        dialer: Dialer,
        address: str,
        check_name: str,
        alpn: tuple[str, ...],
        attempt: _Attempt,
    ) -> Certificate | None:
        """The certificate `address` presents to the same ClientHello (same SNI and ALPN),
        unverified, over a fresh connection. Only logged on failure: the probe failed already.
        Bounded by the probe's deadline (the caller's timeout)."""
        try:
            ctx = self._contexts.get(_unverified(endpoint.tls), alpn)
            sock = await dialer.connect_tcp(address, endpoint.port)
            attempt.sockets.append(sock)
            try:
                stream = TlsStream(sock, ctx, check_name)
                await stream.handshake()
                der = stream.ssl_object.getpeercert(binary_form=True)
            finally:
                sock.close()
        except Exception as exc:
            attempt.log.add(f"unverified handshake failed: {_detail(exc)}")
            return None
        certificate = self._contexts.certificate(der, verified=False)
        attempt.log.add(f"unverified handshake: {_describe_cert(certificate)}")
        return certificate

    async def _http(
        self, endpoint: Endpoint, stream: SocketStream | TlsStream, address: str, attempt: _Attempt
    ) -> None:
        tls = Check.TLS in endpoint.checks
        exchange = HttpExchange(
            endpoint.http,
            authority=authority(endpoint.host or address, endpoint.port, tls=tls),
            scheme="https" if tls else "http",
            user_agent=USER_AGENT,
        )
        attempt.exchange = exchange
        attempt.begin(Phase.HTTP)
        result = await exchange.run(stream)
        duration = attempt.end(stream)
        result = dataclasses.replace(result, duration=duration, overhead=attempt.overhead)
        attempt.http = result
        summary = (
            f"http {result.method} {result.url} -> {result.status} {result.reason or ''}, "
            f"{result.body_bytes} body bytes{' (truncated)' if result.body_truncated else ''} "
            f"in {_ms(duration)}"
        )
        if result.error is not None:
            attempt.fail(Phase.HTTP, result.error)
            summary += f": {result.error}: {result.detail}"
        attempt.log.add(summary)

    async def _quic(
        self, endpoint: Endpoint, dialer: Dialer, address: str, attempt: _Attempt
    ) -> None:
        """The quic check (exporter.quic): a QUIC handshake with the endpoint's SNI and TLS
        options and ALPN h3 to `address`, and with `quic.http3` one HTTP/3 GET of
        `http.path`. Bounded by the probe's deadline (silence ends there as a timeout)."""
        port = endpoint.quic.port or endpoint.port
        probe = QuicProbe(
            dialer,
            address,
            port,
            server_name=endpoint.server_name,
            tls=endpoint.tls,
            trusts=self._quic_trust,
            http=endpoint.http if endpoint.quic.http3 else None,
            authority=authority(endpoint.host or address, port, tls=True),
            user_agent=USER_AGENT,
            idle_timeout=self._config.timeout,
        )
        attempt.quic_probe = probe
        attempt.begin(Phase.QUIC)
        result = await probe.run()
        duration = attempt.end()
        result = dataclasses.replace(result, duration=duration)
        attempt.quic = result
        summary = f"quic {address}:{port} sni={endpoint.server_name}"
        if result.connected:
            assert result.handshake_duration is not None
            summary += (
                f" v{result.version} alpn={result.alpn} handshake in "
                f"{_ms(result.handshake_duration)}"
            )
        if result.url is not None and result.connected:
            summary += (
                f"; GET {result.url} -> {result.status}, {result.body_bytes} body bytes"
                f"{' (truncated)' if result.body_truncated else ''}"
            )
        summary += f" in {_ms(duration)}"
        if result.error is not None:
            attempt.fail(Phase.QUIC, result.error)
            summary += f": {result.error}: {result.detail}"
        attempt.log.add(summary)

    async def _throughput(
        self,
        endpoint: Endpoint,
        dialer: Dialer,
        address: str,
        attempt: _Attempt,
        deadline: float,
    ) -> None:
        """The throughput check (exporter.throughput): a bounded GET on a fresh connection to
        `address`, with the endpoint's TLS options, ended `THROUGHPUT_MARGIN` before the
        probe's deadline. Runs after every other check passed, in no phase of its own (its
        time counts in `total`); its failure is recorded, never the probe's."""
        tls = Check.TLS in endpoint.checks
        margin = min(THROUGHPUT_MARGIN, self._config.timeout * THROUGHPUT_MARGIN_FRACTION)

        async def open_stream() -> SocketStream | TlsStream:
            sock = await dialer.connect_tcp(address, endpoint.port)
            attempt.sockets.append(sock)
            if not tls:
                return SocketStream(sock)
            ctx = self._contexts.get(endpoint.tls, HTTP_ALPN)
            stream = TlsStream(sock, ctx, endpoint.server_name or address)
            await stream.handshake()
            return stream

        result = await measure(
            open_stream,
            endpoint.throughput,
            authority=authority(endpoint.host or address, endpoint.port, tls=tls),
            scheme="https" if tls else "http",
            user_agent=USER_AGENT,
            until=deadline - margin,
            http=endpoint.http,
        )
        attempt.throughput = result
        rate = (
            "no rate" if result.bytes_per_second is None else format_rate(result.bytes_per_second)
        )
        summary = (
            f"throughput GET {result.url} -> {result.status}: {result.body_bytes} body bytes in "
            f"{_ms(result.duration)} = {rate}{' (complete)' if result.complete else ''}"
        )
        if result.error is not None:
            summary += f": {result.error}: {result.detail}"
        attempt.log.add(summary)


def _unverified(options: TlsOptions) -> TlsOptions:
    return dataclasses.replace(options, insecure_skip_verify=True)


def _negotiated(obj: ssl.SSLObject) -> tuple[str | None, str | None, str | None]:
    """The TLS version, cipher and ALPN protocol of a handshake, interned: every tuple keeps
    its last ones, and a few values repeat over thousands of tuples."""
    version, cipher, alpn = obj.version(), obj.cipher(), obj.selected_alpn_protocol()
    return (
        None if version is None else sys.intern(version),
        sys.intern(cipher[0]) if cipher else None,
        None if alpn is None else sys.intern(alpn),
    )


def _describe_cert(certificate: Certificate | None) -> str:
    if certificate is None:
        return "no certificate"
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(certificate.not_after))
    return (
        f"cert subject={certificate.subject!r} issuer={certificate.issuer!r} "
        f"expires {expires} verified={certificate.verified}"
    )
