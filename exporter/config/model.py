"""The configuration model: frozen dataclasses, every reference resolved at load time.

This module is pure: it imports no sockets. `load()` / `parse()` live in `exporter.config.loader`,
which turns YAML into these objects or into a list of `ConfigError`s naming the key path.

Invariants the rest of the code relies on:
- every name in `Endpoint.resolvers` / `Endpoint.networks` is a key of `Config.resolvers` /
  `Config.networks`;
- an endpoint with `address` has `resolvers == ()` (it skips DNS, resolver label "none");
- durations are float seconds, ports are 1-65535, `checks` is ordered dns < tcp < tls < http
  (< throughput, which needs http) < quic (which needs only an address: DNS or `address`);
  `stun` (UDP) goes with dns alone, `mtproto` with dns and tcp alone.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.model.observation import MtprotoTransport


class ResolverType(enum.StrEnum):
    SYSTEM = "system"
    UDP = "udp"
    TCP = "tcp"
    DOT = "dot"
    DOH = "doh"
    DOQ = "doq"
    DOH3 = "doh3"


#: Default port of each resolver transport.
DEFAULT_RESOLVER_PORT: Mapping[ResolverType, int] = MappingProxyType(
    {
        ResolverType.SYSTEM: 53,
        ResolverType.UDP: 53,
        ResolverType.TCP: 53,
        ResolverType.DOT: 853,
        ResolverType.DOH: 443,
        ResolverType.DOQ: 853,
        ResolverType.DOH3: 443,
    }
)

#: Transports that run over TLS (and so accept `server_name` and `tls:`).
ENCRYPTED_RESOLVER_TYPES = frozenset(
    {ResolverType.DOT, ResolverType.DOH, ResolverType.DOQ, ResolverType.DOH3}
)


class Check(enum.StrEnum):
    """The checks of one probe, in the order they run."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"
    #: A bounded download after the http check, on a fresh connection (exporter.probes.throughput).
    THROUGHPUT = "throughput"
    #: A QUIC handshake (ALPN h3), optionally with an HTTP/3 request (exporter.probes.quic).
    QUIC = "quic"
    #: A STUN Binding request over UDP: the call path (exporter.probes.stun).
    STUN = "stun"
    #: Telegram's first exchange on the TCP connection (exporter.probes.mtproto).
    MTPROTO = "mtproto"


CHECK_ORDER: tuple[Check, ...] = (
    Check.DNS,
    Check.TCP,
    Check.TLS,
    Check.HTTP,
    Check.THROUGHPUT,
    Check.QUIC,
    Check.STUN,
    Check.MTPROTO,
)

#: The checks `stun` and `mtproto` may go with: each is the whole probe of its endpoint.
ALONE_WITH: Mapping[Check, frozenset[Check]] = MappingProxyType(
    {
        Check.STUN: frozenset({Check.DNS}),
        Check.MTPROTO: frozenset({Check.DNS, Check.TCP}),
    }
)

#: The checks an endpoint given by host runs when its config lists none (the opt-in checks,
#: like throughput, are left out).
DEFAULT_CHECKS: tuple[Check, ...] = (Check.DNS, Check.TCP, Check.TLS, Check.HTTP)

#: Label value of the resolver of an endpoint given by `address` (no DNS).
NO_RESOLVER = "none"

#: The service name under which `canaries:` are probed: endpoints expected to work from
#: anywhere, on every network and through every resolver; they tell "network down" apart.
CANARY_SERVICE = "canary"


def _frozen_map() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsOptions:
    """How to verify a TLS peer.

    `ca_file` replaces the system roots; `extra_ca_file` adds to them (Signal serves
    certificates from its own private roots). `server_name` overrides the SNI and the name the
    certificate is checked against (default: the endpoint's host or the resolver's
    server_name).
    """

    ca_file: str | None = None
    extra_ca_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRange:
    """An accepted HTTP status: a single code (low == high) or a class like `2xx`."""

    low: int
    high: int

    def __contains__(self, status: object) -> bool:
        return isinstance(status, int) and self.low <= status <= self.high

    def __str__(self) -> str:
        if self.low == self.high:
            return str(self.low)
        return f"{self.low // 100}xx"


DEFAULT_EXPECT_STATUS: tuple[StatusRange, ...] = (
    StatusRange(low=200, high=299),
    StatusRange(low=300, high=399),
)

#: Default cap on the HTTP body read by a probe, bytes.
DEFAULT_BODY_LIMIT = 256 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpOptions:
    """One HTTP/1.1 request per probe over the probe's own connection."""

    method: str = "GET"
    path: str = "/"
    expect_status: tuple[StatusRange, ...] = DEFAULT_EXPECT_STATUS
    fail_if_body_matches: tuple[re.Pattern[bytes], ...] = ()
    # Request headers may carry a secret (`Authorization`, a token): kept out of repr() like
    # the proxy's credentials, so no Config or error text that embeds these options shows them.
    headers: Mapping[str, str] = field(default_factory=_frozen_map, repr=False)
    body_limit: int = DEFAULT_BODY_LIMIT

    def status_ok(self, status: int) -> bool:
        return any(status in r for r in self.expect_status)


#: Default and largest object a throughput check downloads, bytes.
DEFAULT_THROUGHPUT_BYTES = 1024 * 1024
MAX_THROUGHPUT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ThroughputOptions:
    """The download of the `throughput` check: GET `path` on a fresh connection to the address
    the http check reached, reading at most `bytes` body bytes (exporter.probes.throughput)."""

    path: str = "/"
    bytes: int = DEFAULT_THROUGHPUT_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class QuicOptions:
    """The `quic` check (exporter.probes.quic): a QUIC handshake to `port` (default: the endpoint's
    port) with the endpoint's SNI and TLS options and ALPN `h3`; with `http3`, then one
    HTTP/3 GET of `http.path` judged by `http.expect_status`, its body read up to
    `http.body_limit`."""

    port: int | None = None
    http3: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MtprotoOptions:
    """The `mtproto` check (exporter.probes.mtproto, docs/mtproto.md): `req_pq_multi` in the
    `transport`'s form on the tcp check's connection; `dc`, the data centre's number, goes
    into the obfuscated form's header when given (Telegram requires it only of proxies)."""

    transport: MtprotoTransport = MtprotoTransport.OBFUSCATED
    dc: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Throttling:
    """When a measured throughput is judged `throttled` (exporter.judge.verdict, docs/verdicts.md).

    Throttled when the rate is below `ratio` x the best rate of the same endpoint on another
    network in the same round, or below `ratio` x the median of this tuple's own last
    `baseline_rounds` rates (0: no baseline) while the drop is not seen on every other
    network; never when the rate is at least `min_bytes_per_second` (0: no such floor).
    """

    ratio: float = 0.25
    baseline_rounds: int = 10
    min_bytes_per_second: float = 0.0


#: Largest `localisation.max_hops` (the IP TTL field allows 255; real paths stay under 30).
MAX_LOCALISATION_HOPS = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class Localisation:
    """When a failing exchange is localised on the path (exporter.probes.path, docs/verdicts.md):
    after a failure at connect, TLS or plain HTTP, or a plain-HTTP answer that changed,
    at most once per network, address, port and phase per `interval` (None: the probe
    interval), `concurrency` at once, TTLs 1 to `max_hops`, within `timeout` seconds."""

    enabled: bool = True
    max_hops: int = 30
    concurrency: int = 4
    interval: float | None = None
    timeout: float = 8.0


class PhaseHistograms(enum.StrEnum):
    """What one `messaging_probe_phase_seconds` histogram covers (docs/metrics.md)."""

    #: One per tuple: labels service, endpoint, network, resolver, family.
    TUPLE = "tuple"
    #: One per endpoint and network, over its resolvers and IP families (the default): about
    #: 75 lines per tuple fewer on /metrics.
    ENDPOINT = "endpoint"
    #: None at all; the last probe's phases stay in `messaging_probe_duration_seconds`.
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsOptions:
    """What /metrics exposes beyond the fixed contract."""

    phase_histograms: PhaseHistograms = PhaseHistograms.ENDPOINT


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityCheck:
    """Ask the resolver who it is (`o-o.myaddr.l.google.com TXT`, `id.server CH TXT`, ...).

    An answer not matching `expect` means another server answered in the resolver's place:
    transparent interception.
    """

    qname: str
    qtype: str = "TXT"
    qclass: str = "IN"
    expect: re.Pattern[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolver:
    """A DNS resolver and the transport to reach it.

    For `system`, `address` is None and the nameservers come from resolv.conf at probe time.
    For `doh`, `url` is the full query URL; `address`, when given, is dialled instead of
    resolving the URL's host (which would need a resolver of its own).
    """

    name: str
    type: ResolverType
    address: str | None = None
    port: int = 53
    server_name: str | None = None
    url: str | None = None
    tls: TlsOptions = field(default_factory=TlsOptions)
    #: The address runs no DNS server at all: any answer proves an on-path injector.
    silent: bool = False
    #: A whoami-style query whose answer names the server that really answered.
    identity: IdentityCheck | None = None

    @property
    def encrypted(self) -> bool:
        return self.type in ENCRYPTED_RESOLVER_TYPES


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Proxy:
    """A SOCKS proxy. Names are resolved by the exporter and the proxy is given addresses, so
    the resolver under test, not the proxy, answers DNS.

    The credentials are secrets: `repr()`/`str()` (and so every Config, Network and error
    message that embeds a Proxy) show `<redacted>` in their place."""

    scheme: str  # "socks5" or "socks4"
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        def shown(secret: str | None) -> str:
            return "None" if secret is None else "'<redacted>'"

        return (
            f"Proxy(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r}, "
            f"username={shown(self.username)}, password={shown(self.password)})"
        )

    @property
    def redacted_url(self) -> str:
        """The URL with any credentials hidden, for logs and pages."""
        auth = "<redacted>@" if self.username or self.password else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    """The path every socket of a probe takes out of the machine.

    Any combination of `netns` (sockets created inside that Linux network namespace),
    `interface` (SO_BINDTODEVICE), `source_address` (bind) and `proxy` (SOCKS; the connection to
    the proxy itself honours the other three). The empty network is the host's default route.
    """

    name: str
    source_address: str | None = None
    interface: str | None = None
    proxy: Proxy | None = None
    netns: str | None = None


#: Resolver transports that need UDP (a SOCKS proxy carries TCP only).
UDP_RESOLVER_TYPES = frozenset(
    {ResolverType.SYSTEM, ResolverType.UDP, ResolverType.DOQ, ResolverType.DOH3}
)
#: Transports whose UDP socket dnspython's QUIC stack opens itself: only a source address
#: can be honoured, not an interface or a namespace.
OWN_SOCKET_RESOLVER_TYPES = frozenset({ResolverType.DOQ, ResolverType.DOH3})


def incompatibility(network: Network, resolver: Resolver) -> str | None:
    """Why `resolver` cannot be asked through `network`, or None when it can. Such pairs are
    left out of the probe matrix (and `check` lists them): a SOCKS proxy carries only TCP,
    and DoQ/DoH3 honour only a network's source address."""
    if network.proxy is not None and resolver.type in UDP_RESOLVER_TYPES:
        return "a SOCKS proxy carries only TCP"
    if resolver.type in OWN_SOCKET_RESOLVER_TYPES and (network.interface or network.netns):
        return "DoQ and DoH3 open their own socket and honour only a network's source_address"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One thing to reach. Exactly one of host/address drives dialling: with `address` the
    probe skips DNS and dials it, using `host` (if also given) only for SNI and Host."""

    service: str
    name: str
    host: str | None
    address: str | None
    port: int
    checks: tuple[Check, ...]
    tls: TlsOptions = field(default_factory=TlsOptions)
    http: HttpOptions = field(default_factory=HttpOptions)
    throughput: ThroughputOptions = field(default_factory=ThroughputOptions)
    quic: QuicOptions = field(default_factory=QuicOptions)
    mtproto: MtprotoOptions = field(default_factory=MtprotoOptions)
    #: Resolver names this endpoint is probed through; () when given by address.
    resolvers: tuple[str, ...] = ()
    #: Network names this endpoint is probed through.
    networks: tuple[str, ...] = ()
    #: IP families probed (4, 6); for an address endpoint, the address's own family, or ()
    #: when that family is not in the config's `ip_families` (the endpoint is then not
    #: probed: an IPv6 data centre runs only where IPv6 is asked for).
    families: tuple[int, ...] = (4,)
    #: Where the service's addresses may be (its own published ranges); () = unknown.
    expected_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    #: An innocuous SNI sent to the same address first, as OONI's SNI test does: when it
    #: gets further than the real name, the real name is filtered.
    control_sni: str | None = None

    @property
    def server_name(self) -> str | None:
        """The TLS SNI and name checked in the certificate."""
        return self.tls.server_name or self.host


def on_network(endpoint: Endpoint, network: Network) -> Endpoint | None:
    """`endpoint` as probed through `network`: without the quic and stun checks through a
    SOCKS proxy (it carries only TCP), and None when nothing of it but DNS would be left."""
    udp = {Check.QUIC, Check.STUN}
    if network.proxy is None or not udp & set(endpoint.checks):
        return endpoint
    checks = tuple(c for c in endpoint.checks if c not in udp)
    if not set(checks) - {Check.DNS}:
        return None
    return dataclasses.replace(endpoint, checks=checks)


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    name: str
    endpoints: Mapping[str, Endpoint]


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    interval: float = 60.0
    timeout: float = 10.0
    concurrency: int = 64
    ip_families: tuple[int, ...] = (4,)
    resolvers: Mapping[str, Resolver] = field(default_factory=lambda: MappingProxyType({}))
    networks: Mapping[str, Network] = field(default_factory=lambda: MappingProxyType({}))
    services: Mapping[str, Service] = field(default_factory=lambda: MappingProxyType({}))
    #: Addresses censors are documented to answer for blocked names (sinkholes, blockpages).
    blockpage_addresses: frozenset[str] = frozenset()
    #: Body/title/Location patterns of known blockpages.
    blockpage_patterns: tuple[re.Pattern[bytes], ...] = ()
    #: Lower-case header name -> patterns of that header's value sent only by blockpages
    #: (a filter's `Server`, its cookie).
    blockpage_headers: Mapping[str, tuple[re.Pattern[bytes], ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: When a low throughput counts as throttling.
    throttling: Throttling = field(default_factory=Throttling)
    metrics: MetricsOptions = field(default_factory=MetricsOptions)
    localisation: Localisation = field(default_factory=Localisation)

    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for s in self.services.values() for e in s.endpoints.values())
