"""The record of one probe attempt: every fact so far, readable at any moment.

A probe's phases write into an `Attempt` as they go (`begin` / `end` / `fail`), so that when
the probe's timeout cuts an attempt, `timed_out()` still turns what is known into an
observation: finished phases kept, the running one recorded as a timeout with its duration
until the deadline. `ProbeLog` is the probe's own bounded log.

Logs never show proxy credentials (only `Dialer.describe()` is logged), and are at most
`MAX_LOG_LINES` lines of at most `MAX_LOG_LINE` characters.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from types import MappingProxyType

from exporter.config.model import Resolver
from exporter.model.observation import (
    ConnectAttempt,
    DnsObservation,
    ErrorKind,
    HttpObservation,
    MtprotoObservation,
    MtprotoTransport,
    Observation,
    Phase,
    QuicObservation,
    StunObservation,
    ThroughputObservation,
    TlsObservation,
    TupleKey,
)
from exporter.probes.errors import describe
from exporter.probes.http import HttpExchange
from exporter.probes.quic import QuicProbe
from exporter.probes.streams import Reader
from exporter.probes.stun import StunProbe
from exporter.units import cut, format_ms

MAX_LOG_LINES = 50
#: Characters per log line.
MAX_LOG_LINE = 300
#: Characters kept of an exception text in an observation's `detail`.
MAX_DETAIL = 300

#: A control handshake already made in this probe: (address, its observation).
Control = tuple[str, TlsObservation]


@dataclasses.dataclass(slots=True)
class Previous:
    """What a retry takes over from the first attempt: its DNS answer (the name resolved;
    asking again only adds exposure to loss) and its control handshake."""

    dns: DnsObservation | None = None
    control: Control | None = None


def detail_of(exc: BaseException) -> str:
    return cut(describe(exc), MAX_DETAIL)


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
        self._lines.append(cut(" ".join(line.split()), MAX_LOG_LINE))

    def lines(self) -> tuple[str, ...]:
        if self._dropped:
            return (*self._lines, f"... {self._dropped} more log lines dropped")
        return tuple(self._lines)


def resolver_server(resolver: Resolver) -> str:
    """Where a DNS query goes, for an observation built when the query was cut short."""
    if resolver.url:
        return resolver.url
    if resolver.address is None:
        return f"{resolver.type}://resolv.conf"
    host = f"[{resolver.address}]" if ":" in resolver.address else resolver.address
    return f"{resolver.type}://{host}:{resolver.port}"


class Attempt:
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
        self.stun_probe: StunProbe | None = None
        self.stun: StunObservation | None = None
        #: The mtproto check under way: address, port and transport (for its timeout).
        self.mtproto_target: tuple[str, int, MtprotoTransport] | None = None
        self.mtproto: MtprotoObservation | None = None
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

    def end(self, reader: Reader | None = None) -> float:
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
        elif phase is Phase.STUN and self.stun_probe is not None:
            # What came before the deadline: silence, or only bad datagrams (tampering).
            stun = self.stun_probe.observation()
            self.stun = dataclasses.replace(stun, duration=duration)
            if stun.error is ErrorKind.BAD_REPLY:
                self.error, self.failed_phase = ErrorKind.BAD_REPLY, phase
                self.log.add(f"stun: {stun.detail}")
                return
        elif phase is Phase.MTPROTO and self.mtproto_target is not None:
            address, port, transport = self.mtproto_target
            self.mtproto = MtprotoObservation(
                address=address,
                port=port,
                transport=transport,
                error=ErrorKind.TIMEOUT,
                detail=detail,
                duration=duration,
            )
        self.error = ErrorKind.TIMEOUT
        self.failed_phase = phase
        self.log.add(f"{phase or 'probe'}: timeout after {format_ms(duration)} ({detail})")

    def crashed(self, exc: BaseException) -> None:
        """A bug, not a network fact: record it rather than kill the caller's loop."""
        phase = self.phase
        if phase is not None:
            self.end()
        self.error = ErrorKind.OTHER
        self.failed_phase = phase
        self.log.add(f"internal error: {detail_of(exc)}")

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
            stun=self.stun,
            mtproto=self.mtproto,
            attempts=attempts,
            log=self.log.lines(),
        )
