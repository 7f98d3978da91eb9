"""The result model: what a probe observed, as facts. Pure: no sockets, no clocks.

A probe returns one `Observation` per tuple. Everything a later judgement (verdicts,
dashboards, the `/probes` page) needs is here; nothing here is an opinion beyond `error`,
which names *what* failed in a closed vocabulary, never free text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class ErrorKind(enum.StrEnum):
    """Closed set of failure kinds; a bounded label value (`messaging_probes_total{result}`).

    Names follow OONI's failure strings where one exists (netxlite errno.go), shortened.
    """

    TIMEOUT = "timeout"
    REFUSED = "refused"
    RESET = "reset"
    EOF = "eof"
    HOST_UNREACHABLE = "host_unreachable"
    NETWORK_UNREACHABLE = "network_unreachable"
    #: The network's source address / interface / namespace could not be used.
    NETWORK_SETUP = "network_setup"
    #: The SOCKS proxy refused, failed or could not be reached.
    PROXY = "proxy_error"
    DNS_NXDOMAIN = "dns_nxdomain"
    DNS_SERVFAIL = "dns_servfail"
    DNS_REFUSED = "dns_refused"
    #: NOERROR but no record of the asked type.
    DNS_NO_ANSWER = "dns_no_answer"
    #: Any other rcode, a malformed or mismatched reply, or a DoH HTTP error.
    DNS_BAD_RESPONSE = "dns_bad_response"
    #: The certificate chains to no trusted root.
    CERT_UNKNOWN_AUTHORITY = "cert_unknown_authority"
    #: The certificate is not valid for the name asked.
    CERT_HOSTNAME = "cert_hostname_mismatch"
    CERT_EXPIRED = "cert_expired"
    CERT_INVALID = "cert_invalid"
    #: The handshake failed on a TLS alert or a protocol error.
    TLS_ERROR = "tls_error"
    #: The status is not one of `http.expect_status`.
    HTTP_STATUS = "http_status"
    #: The body matched `http.fail_if_body_matches`.
    HTTP_BODY_MATCH = "http_body_match"
    #: The peer did not speak HTTP/1.x we could parse.
    HTTP_PROTOCOL = "http_protocol_error"
    #: A STUN or MTProto reply that is garbled or answers another request (a wrong
    #: transaction ID or nonce): tampering, never success.
    BAD_REPLY = "bad_reply"
    #: Anything not foreseen; the probe's log says what.
    OTHER = "other"


class Phase(enum.StrEnum):
    """Timed phases of a probe (label `phase`)."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    HTTP = "http"
    #: The `quic` check: the QUIC handshake and the optional HTTP/3 request (exporter.probes.quic).
    QUIC = "quic"
    #: The `stun` check: a STUN Binding request over UDP (exporter.probes.stun).
    STUN = "stun"
    #: The `mtproto` check: Telegram's first exchange on the TCP connection (probes.mtproto).
    MTPROTO = "mtproto"
    #: Always last: renderers list phases in this order, the whole probe at the end.
    TOTAL = "total"


PHASES: tuple[Phase, ...] = tuple(Phase)

#: Label value of `messaging_probes_total{result}` for a successful probe.
RESULT_SUCCESS = "success"
RESULTS: tuple[str, ...] = (RESULT_SUCCESS, *(k.value for k in ErrorKind))


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class TupleKey:
    """One cell of the probe matrix; its fields are the per-tuple labels."""

    service: str
    endpoint: str
    network: str
    resolver: str
    family: int

    def labels(self) -> tuple[str, str, str, str, str]:
        return (self.service, self.endpoint, self.network, self.resolver, str(self.family))


LABEL_NAMES: tuple[str, ...] = ("service", "endpoint", "network", "resolver", "family")


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class EndpointKey:
    """An endpoint as seen through one network: the tuples of every resolver and IP family
    of it. Keys the phase histograms under `metrics.phase_histograms: endpoint`."""

    service: str
    endpoint: str
    network: str

    @classmethod
    def of(cls, key: TupleKey) -> EndpointKey:
        return cls(service=key.service, endpoint=key.endpoint, network=key.network)

    def labels(self) -> tuple[str, str, str]:
        return (self.service, self.endpoint, self.network)


ENDPOINT_LABEL_NAMES: tuple[str, ...] = ("service", "endpoint", "network")


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsObservation:
    """One DNS question and what came back."""

    qname: str
    qtype: str  # "A" / "AAAA"
    server: str  # where the query went, e.g. "udp://8.8.8.8:53" (for detail pages only)
    rcode: str | None = None  # "NOERROR", "NXDOMAIN", ... None when no reply
    answers: tuple[str, ...] = ()  # addresses of the asked type, in reply order
    cnames: tuple[str, ...] = ()
    ttl: int | None = None
    error: ErrorKind | None = None
    detail: str | None = None  # exception text, for the detail page and logs only
    #: Seconds of the exchange: over UDP, from the query sent to the reply's arrival as the
    #: kernel stamped it; otherwise from the start until the reply was read.
    duration: float = 0.0
    #: Seconds the exporter spent around a UDP exchange and left out of `duration`: making
    #: the socket before the query left, and after the reply arrived, the wait until a busy
    #: event loop read it and the parsing.
    overhead: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectAttempt:
    address: str
    port: int
    error: ErrorKind | None = None
    detail: str | None = None
    duration: float = 0.0  # seconds
    #: The kernel's round-trip time of the handshake (TCP_INFO `tcpi_rtt`), seconds: the
    #: path alone, where `duration` also holds the event loop's wake-up. None when it failed,
    #: through a proxy (the kernel knows only the hop to the proxy) or off Linux.
    rtt: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Certificate:
    subject: str
    issuer: str
    not_after: float  # unix seconds
    not_before: float  # unix seconds
    sans: tuple[str, ...] = ()
    #: Whether the chain was verified (False under insecure_skip_verify or a failed check).
    verified: bool = False
    #: SHA-256 of the certificate's DER, hex: the evidence of what was presented.
    sha256: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsObservation:
    server_name: str | None
    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    certificate: Certificate | None = None
    error: ErrorKind | None = None
    detail: str | None = None
    duration: float = 0.0
    #: Seconds left out of `duration`: how long the newest data the phase read sat in the
    #: kernel (by its SO_TIMESTAMPNS stamp) before a busy event loop came to read it.
    overhead: float = 0.0


#: OONI's `webTitleRegexp` (ooni/probe-cli, internal/measurexlite/web.go), on bytes: a small
#: regex, never an HTML parser.
TITLE = re.compile(rb"(?i)<title>([^<]{1,512})</title>")


def title_of(body: bytes) -> str:
    """The first <title> of `body` (OONI's regex), decoded as UTF-8 with bad bytes
    replaced, whitespace collapsed; "" when there is none."""
    match = TITLE.search(body)
    if match is None:
        return ""
    return " ".join(match.group(1).decode("utf-8", errors="replace").split())


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpObservation:
    method: str
    url: str
    status: int | None = None
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body_bytes: int = 0
    body_truncated: bool = False
    #: The first bytes of the body (at most 4 KiB), for blockpage matching and the detail page.
    body_head: bytes = b""
    error: ErrorKind | None = None
    detail: str | None = None
    duration: float = 0.0
    #: Seconds left out of `duration`: how long the newest data the phase read sat in the
    #: kernel (by its SO_TIMESTAMPNS stamp) before a busy event loop came to read it.
    overhead: float = 0.0

    @property
    def title(self) -> str:
        """The page's <title> (`title_of` its first bytes); "" without one."""
        return title_of(self.body_head)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThroughputObservation:
    """The bounded download of the `throughput` check (exporter.probes.throughput), on a fresh
    connection after the http check. Its failure is a fact, not the probe's failure."""

    url: str
    #: The cap asked for (`throughput.bytes`).
    limit: int
    status: int | None = None
    #: Body bytes received (at most `limit`).
    body_bytes: int = 0
    #: The whole object, or `limit` bytes of it, arrived before the deadline.
    complete: bool = False
    #: Seconds from the request sent to the last body byte (complete) or to the moment the
    #: download ended (cut by the deadline, or failed).
    duration: float = 0.0
    #: `body_bytes / duration`; None when no 2xx response head arrived (nothing measured).
    bytes_per_second: float | None = None
    error: ErrorKind | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QuicObservation:
    """The `quic` check (exporter.probes.quic): a QUIC handshake (ALPN h3, the endpoint's SNI) over
    UDP to the address the tcp check reached (or the first DNS answer), and, with
    `quic.http3`, one HTTP/3 GET of `http.path`. Its failure is the probe's failure."""

    address: str
    port: int
    server_name: str | None
    #: QUIC version of the completed handshake ("1", "2"); None without one.
    version: str | None = None
    alpn: str | None = None
    #: Seconds from the first Initial to the completed handshake; None without one.
    handshake_duration: float | None = None
    #: The HTTP/3 request, when one was made (`quic.http3`).
    url: str | None = None
    status: int | None = None
    body_bytes: int = 0
    body_truncated: bool = False
    error: ErrorKind | None = None
    detail: str | None = None
    #: Seconds of the whole check (handshake and request): the `quic` phase.
    duration: float = 0.0

    @property
    def connected(self) -> bool:
        """Whether the QUIC handshake completed (whatever happened to the request)."""
        return self.handshake_duration is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class StunObservation:
    """The `stun` check (exporter.probes.stun): a STUN Binding request (RFC 8489) over UDP,
    retransmitted on loss, answered by a Binding success response with XOR-MAPPED-ADDRESS.
    The call path of the messengers (their STUN/TURN relays), which a censor can block while
    every TCP check stays green. Its failure is the probe's failure."""

    address: str
    port: int
    #: Binding requests sent: 1, plus one per retransmission after a lost datagram.
    requests: int = 0
    #: XOR-MAPPED-ADDRESS of the success response ("address:port", our address as the
    #: server saw it); None without one.
    mapped: str | None = None
    error: ErrorKind | None = None
    detail: str | None = None
    #: Seconds from the first request to the answer (or the failure): the `stun` phase.
    duration: float = 0.0


class MtprotoTransport(enum.StrEnum):
    """How the `mtproto` check frames its request (core.telegram.org/mtproto/mtproto-transports)."""

    #: The random 64-byte header and AES-256-CTR of the official clients: no fixed bytes.
    OBFUSCATED = "obfuscated"
    #: The plain intermediate transport: 0xeeeeeeee first, which DPI recognises easily.
    INTERMEDIATE = "intermediate"


@dataclass(frozen=True, slots=True, kw_only=True)
class MtprotoObservation:
    """The `mtproto` check (exporter.probes.mtproto): on the connection the tcp check made to
    a Telegram data centre, an unencrypted `req_pq_multi` with a random nonce, which the data
    centre answers with `resPQ` carrying the same nonce. Its failure is the probe's failure."""

    address: str
    port: int
    transport: MtprotoTransport
    #: Whether a `resPQ` with our nonce came back.
    answered: bool = False
    error: ErrorKind | None = None
    detail: str | None = None
    #: Seconds from sending the request to the answer (or the failure): the `mtproto` phase.
    duration: float = 0.0


class PathOutcome(enum.StrEnum):
    """Where on the path a failing exchange ended (exporter.probes.path), judged from the same
    exchange repeated with limited TTLs and a trace to the same address."""

    #: A reset, a handshake, a certificate or a page came back from a hop before the
    #: destination: something on the path answered in its place.
    BEFORE_DESTINATION = "before_destination"
    #: The exchange vanished at a hop that other traffic to the same address passes.
    DROPPED = "dropped"
    #: The exchange fails at the destination's own distance: the destination's doing.
    AT_DESTINATION = "at_destination"
    #: Nothing can be said (ICMP filtered, an uneven path, a proxy network, the budget).
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True, kw_only=True)
class PathObservation:
    """What localisation found for one failing exchange (exporter.probes.path): the exchange of
    `phase` (the SYN, the ClientHello on a connection made at full TTL, or the HTTP request)
    sent again with TTL 1, 2, ..., and a UDP trace to the same address."""

    phase: Phase
    outcome: PathOutcome
    #: TTL at which the destination itself answered the trace; None when it never did.
    distance: int | None = None
    #: The first TTL at which the exchange did not just expire at a router: it was answered
    #: there, or vanished; None when inconclusive before that.
    hop: int | None = None
    #: What came back at `hop`: "syn-ack", "reset", "unreachable", "answer", "closed" or
    #: "silence".
    answer: str | None = None
    #: The router addresses the trace found, by TTL from 1 (None where a hop sent no ICMP).
    routers: tuple[str | None, ...] = ()
    #: One sentence: what was seen, or why it is inconclusive (for /probes and the reason).
    detail: str = ""
    #: Packets and connections spent.
    probes: int = 0
    #: Seconds the localisation took (not part of the probe's phases).
    duration: float = 0.0

    def router(self, ttl: int | None) -> str | None:
        """The address of the router the trace found at `ttl`, if any."""
        if ttl is None or not 1 <= ttl <= len(self.routers):
            return None
        return self.routers[ttl - 1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """Everything one probe of one tuple saw. `error is None` means success."""

    key: TupleKey
    started: float  # unix seconds (wall clock), for display
    finished: float  # unix seconds (wall clock)
    error: ErrorKind | None = None
    failed_phase: Phase | None = None
    #: Phase durations in seconds; a phase that did not run is absent. `total` always present.
    phases: Mapping[Phase, float] = field(default_factory=lambda: MappingProxyType({}))
    dns: DnsObservation | None = None
    connects: tuple[ConnectAttempt, ...] = ()
    address: str | None = None  # the address the connection that counted went to
    tls: TlsObservation | None = None
    #: The control handshake to the same address with `control_sni`, made before the real one
    #: (censors may keep blocking a flow for minutes after a hit).
    control: TlsObservation | None = None
    http: HttpObservation | None = None
    attempts: int = 1  # 2 when the probe was retried after a failure
    #: What the probe did, a line per step (for /probes and the logs).
    log: tuple[str, ...] = ()
    #: The throughput download, when the endpoint has the check and every other check passed.
    throughput: ThroughputObservation | None = None
    #: The `quic` check, when the endpoint has it and every check before it passed.
    quic: QuicObservation | None = None
    #: The `stun` check, when the endpoint has it.
    stun: StunObservation | None = None
    #: The `mtproto` check, when the endpoint has it and its tcp check connected.
    mtproto: MtprotoObservation | None = None
    #: Where on the path the failing (or suspicious) exchange ended, when it was localised.
    path: PathObservation | None = None

    @property
    def success(self) -> bool:
        return self.error is None

    @property
    def result(self) -> str:
        """The `result` label of `messaging_probes_total`."""
        return RESULT_SUCCESS if self.error is None else self.error.value

    @property
    def tcp_rtt(self) -> float | None:
        """Kernel round-trip time (seconds) of the connection that counted, if known."""
        for attempt in reversed(self.connects):
            if attempt.error is None:
                return attempt.rtt
        return None

    @property
    def cert_not_after(self) -> float | None:
        if self.tls is not None and self.tls.certificate is not None and self.tls.error is None:
            return self.tls.certificate.not_after
        return None
