"""The Prober: probe one tuple (endpoint, network, resolver, family) into an Observation.

A probe runs the endpoint's checks in order (dns → connect → tls → http → quic, a QUIC
handshake over UDP to the same address, `exporter.probes.quic`; then the optional throughput
download on a connection of its own, `exporter.probes.throughput`) over fresh sockets
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
  `MAX_LOG_LINES` lines of at most `MAX_LOG_LINE` characters (`exporter.probes.attempt`).

Here: the retry and the phase order (`Prober`), and the dns, connect, http, quic and
throughput phases. The attempt's record is `exporter.probes.attempt`, the sockets' byte
streams `exporter.probes.streams`, the TLS phases `exporter.probes.handshakes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import ssl
import time
import weakref

from exporter import __version__
from exporter.config.matrix import Target, TargetKind
from exporter.config.model import Check, Config, Endpoint, IdentityCheck, Network, Resolver
from exporter.model.observation import (
    ConnectAttempt,
    ErrorKind,
    Observation,
    PathObservation,
    PathOutcome,
    Phase,
    TupleKey,
)
from exporter.probes.attempt import (
    Attempt,
    Previous,
    ProbeLog,
    detail_of,
    resolver_server,
)
from exporter.probes.dns import ask_identity, query
from exporter.probes.errors import classify
from exporter.probes.handshakes import HTTP_ALPN, control_phase, tls_phase, unverified
from exporter.probes.http import HttpExchange, authority
from exporter.probes.localiser import Localiser
from exporter.probes.mtproto import first_packet
from exporter.probes.network import Dialer, stamping_keeper
from exporter.probes.protocols import mtproto_phase, quic_phase, stun_phase
from exporter.probes.quic import QuicTrust
from exporter.probes.streams import SocketStream, TlsStream
from exporter.probes.stun import binding_request
from exporter.probes.throughput import measure
from exporter.probes.tls import TlsContexts, client_hello
from exporter.units import format_ms, format_rate

__all__ = ["FIRST_CONNECT_SHARE", "USER_AGENT", "Prober"]

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
#: The throughput download ends this long before the probe's deadline (at most this fraction
#: of the budget), so that a slow download is measured, never the probe's own timeout.
THROUGHPUT_MARGIN = 0.2
THROUGHPUT_MARGIN_FRACTION = 0.05


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
            for options in (endpoint.tls, unverified(endpoint.tls)):
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
                previous = Previous(dns=attempt.dns if attempt.dns_answered else None)
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
            f"{'success' if attempt.error is None else f'failed: {attempt.error}'} in "
            f"{format_ms(total)}"
        )
        path = await self._localise(target, dialer, attempt, log)
        observation = attempt.observation(
            started=started, finished=finished, total=total, attempts=attempts
        )
        return observation if path is None else dataclasses.replace(observation, path=path)

    async def _localise(
        self, target: Target, dialer: Dialer, attempt: Attempt, log: ProbeLog
    ) -> PathObservation | None:
        """Where on the path the failing (or changed) exchange ends (exporter.probes.path), under
        the localisation budget; None when the probe gives no reason to look. Its time is
        not the probe's: phases and `total` end before it."""
        if not self._config.localisation.enabled:
            return None
        what = self._suspect(target, attempt)
        if what is None:
            return None
        phase, address, payload = what
        port = target.endpoint.port
        variant = target.endpoint.mtproto.transport.value if phase is Phase.MTPROTO else ""
        path = await self._localiser.run(dialer, phase, address, port, payload, variant=variant)
        log.add(f"path ({phase} to {address}:{port}): {path.outcome}: {path.detail}")
        answer = self._answers.get(target.key)
        if phase is Phase.HTTP and answer is not None:
            settled = path.outcome is PathOutcome.AT_DESTINATION or (
                path.outcome is PathOutcome.INCONCLUSIVE and path.probes > 0
            )
            self._answers[target.key] = (answer[0], settled)
        return path

    def _suspect(self, target: Target, attempt: Attempt) -> tuple[Phase, str, bytes] | None:
        """The exchange to localise: a connect, STUN, MTProto, TLS or plain-HTTP failure, or a
        plain-HTTP answer that localisation has not settled (one not seen last time, as a
        blockpage appearing is, or one last found on the path); the address the probe
        dialled, and what to send."""
        endpoint = target.endpoint
        phase = attempt.failed_phase
        if attempt.error in (ErrorKind.NETWORK_SETUP, ErrorKind.PROXY):
            return None
        if attempt.error is not None and phase is Phase.CONNECT and attempt.connects:
            return Phase.CONNECT, attempt.connects[-1].address, b""
        address = attempt.address
        if address is None:
            return None
        if attempt.error is not None and phase is Phase.STUN:
            return Phase.STUN, address, binding_request()
        if attempt.error is not None and phase is Phase.MTPROTO:
            options = endpoint.mtproto
            return Phase.MTPROTO, address, first_packet(options.transport, dc=options.dc)
        if attempt.error is not None and phase is Phase.TLS:
            alpn = HTTP_ALPN if Check.HTTP in endpoint.checks else ()
            context = self._contexts.get(unverified(endpoint.tls), alpn)
            return Phase.TLS, address, client_hello(context, endpoint.server_name)
        plain = Check.HTTP in endpoint.checks and Check.TLS not in endpoint.checks
        exchange = attempt.exchange
        if not plain or exchange is None or attempt.http is None:
            return None
        if attempt.error is not None and phase is not Phase.HTTP:
            return None  # a later check failed: the HTTP answer is not in question
        seen = (attempt.http.status, attempt.http.title)
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
        previous: Previous | None,
        *,
        first: bool,
    ) -> Attempt:
        attempt = Attempt(target.key, log)
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
        attempt: Attempt,
        deadline: float,
        previous: Previous | None,
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
            if Check.STUN in checks:  # the call path: a STUN server, by UDP
                attempt.address = addresses[0]
                await stun_phase(endpoint, dialer, addresses[0], attempt)
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
                await control_phase(self._contexts, endpoint, dialer, attempt, deadline, control)
            tls_stream = await tls_phase(
                self._contexts, endpoint, dialer, sock, attempt.address, attempt
            )
            if tls_stream is None:
                return
            stream = tls_stream
        if Check.MTPROTO in checks:  # Telegram's own first exchange, on this connection
            await mtproto_phase(endpoint, stream, attempt.address, attempt)
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
        self, target: Target, dialer: Dialer, attempt: Attempt, deadline: float
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
        attempt.dns_question = (host, qtype, resolver_server(resolver))
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
                f"rcode={result.rcode} in {format_ms(duration)}: {result.detail or ''}"
            )
            return None
        attempt.log.add(
            f"resolved {host} {qtype} via {resolver.name} in {format_ms(duration)}: "
            f"{', '.join(result.answers)}"
        )
        return result.answers

    async def _identity(
        self,
        resolver: Resolver,
        check: IdentityCheck,
        dialer: Dialer,
        attempt: Attempt,
        remaining: float,
    ) -> None:
        """An interception check: the facts only (judged by `verdict`), never dialled."""
        attempt.dns_question = (check.qname, check.qtype, resolver_server(resolver))
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
            f"rcode={result.rcode} answers={list(result.answers)} in {format_ms(duration)}"
            + (f": {result.error}" if result.error else "")
        )

    async def _connect(
        self,
        endpoint: Endpoint,
        dialer: Dialer,
        addresses: tuple[str, ...],
        attempt: Attempt,
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
                        detail=detail_of(exc),
                        duration=duration,
                    )
                )
                attempt.log.add(
                    f"connect {address}:{port} {last_kind} in {format_ms(duration)}: "
                    f"{detail_of(exc)}"
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
            attempt.log.add(f"connect {address}:{port} ok in {format_ms(duration)}")
            return sock
        attempt.end()
        attempt.fail(Phase.CONNECT, last_kind)
        return None

    async def _http(
        self, endpoint: Endpoint, stream: SocketStream | TlsStream, address: str, attempt: Attempt
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
            f"in {format_ms(duration)}"
        )
        if result.error is not None:
            attempt.fail(Phase.HTTP, result.error)
            summary += f": {result.error}: {result.detail}"
        attempt.log.add(summary)

    async def _quic(
        self, endpoint: Endpoint, dialer: Dialer, address: str, attempt: Attempt
    ) -> None:
        await quic_phase(
            endpoint,
            dialer,
            address,
            attempt,
            trusts=self._quic_trust,
            user_agent=USER_AGENT,
            idle_timeout=self._config.timeout,
        )

    async def _throughput(
        self,
        endpoint: Endpoint,
        dialer: Dialer,
        address: str,
        attempt: Attempt,
        deadline: float,
    ) -> None:
        """The throughput check (exporter.probes.throughput): a bounded GET on a fresh connection to
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
            f"{format_ms(result.duration)} = {rate}{' (complete)' if result.complete else ''}"
        )
        if result.error is not None:
            summary += f": {result.error}: {result.detail}"
        attempt.log.add(summary)
