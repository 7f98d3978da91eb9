"""Build and tear down the censorship lab (docs/lab.md has the diagram and every technique).

Fourteen network namespaces, all named with a random per-run prefix (`mxl-3fa2-vantage`, ...):

    vantage ──clean0── isp-clean  ── transit-clean-1  ── transit-clean-2  ──┐
            ──censor0─ isp-censor ── transit-censor-1 ── transit-censor-2 ──┤
            ──dnsint0─ isp-dnsint ── transit-dnsint-1 ── transit-dnsint-2 ──┼── internet
            ──dead0─── isp-dead ─ ✗ ─ transit-dead-1 ─── transit-dead-2 ───┘
     TTL:              1              2                   3                 4 (services on lo)

Every router answers time-exceeded from its interface facing the vantage (`Uplink.routers`).

None of them has a link to the host: every address, however public it looks, lives inside
the lab. Every `ip` command runs with `-n <lab namespace>` and every `nft`/`sysctl` under
`ip netns exec <lab namespace>`; `_guard` refuses anything else, so the root namespace is
never touched.

The vantage namespace picks an uplink by source address (`ip rule from <addr> lookup <table>`)
or by interface (`ip rule oif <dev> lookup <table>`, what SO_BINDTODEVICE needs); its main
table has no default route, so a socket that names neither goes nowhere.

Censorship is nftables rules in each ISP's `inet lab` table (chains `prefilter`, `dstnat`,
`forward`, `output`, `srcnat`, created empty everywhere) plus the ISP's own server process
(lying resolver, blockpage server, SNI filter, TLS interceptor). A new technique is a `Rule`
in `RULES` (and, if it needs userspace, a listener in `_isp_spec`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tests.fakes.certs import Pki, make_pki

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Every lab namespace starts with this; a run adds 4 random hex digits (`mxl-3fa2-`).
PREFIX_BASE = "mxl-"
#: How long a server process may take to bind everything and print "ready".
READY_TIMEOUT = 30.0


class LabError(RuntimeError):
    """The lab could not be built or a command inside it failed."""


class LabUnavailable(LabError):
    """This machine cannot run the lab (not root, `ip` or `nft` missing)."""


def check_host() -> None:
    """Raise LabUnavailable naming everything missing for the lab."""
    problems = []
    if os.geteuid() != 0:
        problems.append("it must run as root (it creates network namespaces)")
    if shutil.which("ip") is None:
        problems.append("`ip` is missing (apt-get install iproute2)")
    if shutil.which("nft") is None:
        problems.append("`nft` is missing (apt-get install nftables)")
    if problems:
        raise LabUnavailable("the censorship lab cannot run here: " + "; ".join(problems))


# --- address plan ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Uplink:
    """One network of the vantage point: a veth to an ISP router, and that ISP's way on to
    the internet through two transit routers of its own. Index i gives 100.64.i.0/30 (vantage
    .2, ISP .1), then the links 10.i.1.0/30 (ISP .1, transit-1 .2), 10.i.2.0/30 (transit-1
    .1, transit-2 .2) and 10.i.3.0/30 (transit-2 .1, internet .2), and routing table 100+i in
    the vantage namespace. Hop k (1 = the ISP) answers time-exceeded from `routers[k-1]`, the
    address of its interface facing the vantage; a service address is `distance` hops away."""

    network: str
    isp: str
    index: int
    internet_link_up: bool = True

    @property
    def interface(self) -> str:  # in vantage; its peer in the ISP is `vantage0`
        return f"{self.network}0"

    @property
    def vantage_address(self) -> str:
        return f"100.64.{self.index}.2"

    @property
    def isp_address(self) -> str:  # the ISP router, also its resolver
        return f"100.64.{self.index}.1"

    @property
    def subnet(self) -> str:
        return f"100.64.{self.index}.0/30"

    @property
    def isp_internet_address(self) -> str:  # on `inet0` in the ISP, towards transit-1
        return self.link_address(1, 1)

    @property
    def transits(self) -> tuple[str, ...]:  # roles of the transit routers, ISP side first
        return tuple(f"transit-{self.network}-{k}" for k in range(1, TRANSIT_HOPS + 1))

    def link_address(self, link: int, host: int) -> str:
        """Link k (1 = ISP-transit-1, ..., TRANSIT_HOPS + 1 = last transit-internet) is
        10.i.k.0/30: `host` 1 is its vantage side, 2 its internet side (0: the network)."""
        return f"10.{self.index}.{link}.{host}"

    @property
    def internet_address(self) -> str:  # on `<network>0` in the internet namespace
        return self.link_address(TRANSIT_HOPS + 1, 2)

    @property
    def internal(self) -> str:  # every link of this uplink beyond the ISP
        return f"10.{self.index}.0.0/16"

    @property
    def routers(self) -> tuple[str, ...]:
        """What answers time-exceeded at hop 1, 2, ...: the ISP, then each transit router,
        each from its interface facing the vantage."""
        transits = (self.link_address(k, 2) for k in range(1, TRANSIT_HOPS + 1))
        return (self.isp_address, *transits)

    @property
    def distance(self) -> int:  # the TTL that reaches a service address (routers + 1)
        return len(self.routers) + 1

    @property
    def table(self) -> int:
        return 100 + self.index


#: Transit routers between each ISP and the internet namespace (hops 2 and 3).
TRANSIT_HOPS = 2


UPLINKS = (
    Uplink("clean", "isp-clean", 1),
    Uplink("censor", "isp-censor", 2),
    Uplink("dnsint", "isp-dnsint", 3),
    Uplink("dead", "isp-dead", 4, internet_link_up=False),
)
UPLINK = {u.network: u for u in UPLINKS}
#: Every namespace of the lab (extra vantage points come and go: `Lab.add_vantage`).
ROLES = (
    "vantage",
    *(u.isp for u in UPLINKS),
    *(t for u in UPLINKS for t in u.transits),
    "internet",
)
#: role → the uplink it routes for (the ISP and its transit routers).
ROUTER_UPLINK = {role: u for u in UPLINKS for role in (u.isp, *u.transits)}

#: Extra vantage points (`Lab.add_vantage`): the n-th added is 100.65.n.2, the interface to
#: its ISP `uplink0` there and `vp<n>` in the ISP router.
EXTRA_VANTAGE_NET = "100.65"

#: Iran's DNS-injection answer (peyvandha blockpage host); hosted in the censoring ISPs.
BOGON = "10.10.34.35"
#: Turk Telekom's DNS sinkhole; hosted in the censoring ISPs.
SINKHOLE = "195.175.254.2"
#: Where the censoring ISP terminates intercepted TLS (foreign-CA certificates).
MITM_ADDRESS = "10.10.34.36"
#: Port of the SNI filter on the censoring ISP's own address (nft `redirect` target).
SNI_FILTER_PORT = 8443
#: Runs no DNS at all: queries to it time out (UDP) or are refused (TCP), unless intercepted.
SILENT = "4.2.2.2"
#: No listener anywhere: an outage, not censorship.
OUTAGE_ADDRESS = "76.223.0.99"

#: A Telegram data centre, IP-blocked with TCP resets on `censor` (TCP only: UDP and ICMP
#: pass, as with real RST injectors).
DC_RESET = "91.108.56.100"
DC_DROP = "91.108.56.101"  # another, IP-blocked by dropping TCP on `censor` (a SYN dropper)
#: core.telegram.lab: its TCP 443 redirected on `censor` to a local listener of the ISP that
#: accepts and never answers (a stalling transparent proxy, without any rule on a name).
STALL_HOST = "core.telegram.lab"
STALL_ADDRESS = "149.154.167.99"
#: Port of that listener on the censoring ISP's own address (nft `redirect` target).
STALL_PORT = 8444
SNI_ADDRESS = "13.248.0.10"  # web.whatsapp.lab: SNI-filtered on `censor`
SNI_RESIDUAL_ADDRESS = "76.223.0.20"  # cdn.signal.lab: SNI-filtered with residual blocking
BLOCKPAGE_ADDRESS = "157.240.0.35"  # edge.messenger.lab: HTTP answered by a blockpage
MITM_TARGET = "157.240.0.36"  # api.messenger.lab: TLS intercepted
QUIC_ADDRESS = "157.240.0.37"  # chat.messenger.lab: HTTP/3 too; QUIC dropped on `censor`
#: cdsi.signal.lab: its certificate chains to a private root (`Lab.private_root_file`), as
#: Signal's real servers chain to Signal's own root CA and not to a public one.
PRIVATE_ROOT_ADDRESS = "76.223.0.11"
#: geo.messenger.lab, geo-DNS: the public resolvers answer one site, the ISP resolvers another
#: site of the same service in another /24 (a CDN's nearby node). Both serve the name.
GEO_HOST = "geo.messenger.lab"
GEO_PUBLIC = "157.240.0.38"
GEO_ISP = "157.240.1.38"
#: desktop.telegram.lab: the liars answer the address of ANOTHER lab HTTPS server
#: (media.whatsapp.lab's), whose certificate does not cover the name.
FORGED_HOST = "desktop.telegram.lab"
FORGED_REAL = "91.108.56.11"
FORGED_TARGET = "13.248.0.30"
#: updates.whatsapp.lab: the liars answer a real, global address that does not serve it (the
#: outage address: nothing listens there, so a connection is refused).
INJECTED_HOST = "updates.whatsapp.lab"
INJECTED_REAL = "13.248.0.31"
INJECTED_TARGET = OUTAGE_ADDRESS

#: The public DNS look-alikes: (name, address, TLS server name). All transports on each.
PROVIDERS = (
    ("google", "8.8.8.8", "dns.google.lab"),
    ("cloudflare", "1.1.1.1", "cloudflare-dns.lab"),
    ("quad9", "9.9.9.9", "dns.quad9.lab"),
)
DOH_PATH = "/dns-query"

#: HTTPS look-alikes in the internet namespace: address → certificate names (first = host).
WEB_HOSTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "91.108.56.10": ("web.telegram.lab",),
        STALL_ADDRESS: (STALL_HOST,),
        SNI_ADDRESS: ("web.whatsapp.lab", "static.whatsapp.lab"),
        "13.248.0.30": ("media.whatsapp.lab",),
        BLOCKPAGE_ADDRESS: ("edge.messenger.lab",),
        MITM_TARGET: ("api.messenger.lab",),
        "76.223.0.10": ("chat.signal.lab",),
        SNI_RESIDUAL_ADDRESS: ("cdn.signal.lab", "updates.signal.lab"),
        "93.184.216.34": ("example.lab", "www.example.lab"),
        QUIC_ADDRESS: ("chat.messenger.lab",),
        GEO_PUBLIC: (GEO_HOST,),
        GEO_ISP: (GEO_HOST,),
        FORGED_REAL: (FORGED_HOST,),
        INJECTED_REAL: (INJECTED_HOST,),
    }
)
#: HTTPS look-alikes whose certificate is issued by the lab's PRIVATE root (not the lab CA):
#: address → certificate names. Verified only by a client that adds that root.
PRIVATE_ROOT_HOSTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {PRIVATE_ROOT_ADDRESS: ("cdsi.signal.lab",)}
)
#: These also serve HTTP/3 (QUIC, UDP 443; tests.fakes.h3_server) with the same certificate,
#: page and large object as their HTTPS listener.
H3_HOSTS = (QUIC_ADDRESS, "93.184.216.34")
#: These also serve plain HTTP on port 80.
HTTP_HOSTS = (BLOCKPAGE_ADDRESS, "93.184.216.34")
#: Telegram-DC style: plain HTTP (no TLS) on 80 and 443, answering any request with 404.
TELEGRAM_DCS = (DC_RESET, DC_DROP)
DC_STATUS = 404
#: Plain TCP listeners that accept and read (WhatsApp's chat port).
TCP_LISTENERS = (("13.248.0.20", 5222),)
#: Every HTTPS look-alike also serves a large object here (for throughput checks).
LARGE_PATH = "/large"
LARGE_SIZE = 1024 * 1024

#: STUN (the `stun` check, the call path): every STUN look-alike listens on UDP 3478.
STUN_PORT = 3478
#: stun.messenger.lab: a messenger's STUN/TURN relay (coturn, `--stun-only`); its UDP 3478 is
#: dropped on `censor` (`stun-drop`), as Russia dropped WhatsApp's and Telegram's calls.
STUN_RELAY_HOST = "stun.messenger.lab"
STUN_RELAY = "157.240.0.50"
#: Public STUN look-alikes (coturn too), the exporter's UDP canaries: untouched everywhere.
STUN_PUBLIC: Mapping[str, str] = MappingProxyType(
    {"stun.l.google.lab": "74.125.250.129", "stun.cloudflare.lab": "162.159.207.1"}
)
#: relay.whatsapp.lab: a STUN relay that loses the first request of every transaction (the
#: lab's own responder, `stun` listener kind with `drop_first`): a retransmission gets through.
STUN_LOSSY_HOST = "relay.whatsapp.lab"
STUN_LOSSY = "13.248.0.50"
#: Telegram data-centre look-alikes speaking MTProto on 443 (tests.fakes.mtproto_server), in
#: Telegram's 149.154.160.0/20: address → the fake's mode. DC2 and DC4 answer resPQ; the
#: impostor answers a resPQ with another nonce (what only something in the DC's place does).
TELEGRAM_PREFIX = "149.154.160.0/20"
MTPROTO_PORT = 443
MTPROTO_DC = "149.154.167.50"
MTPROTO_DC4 = "149.154.167.91"
MTPROTO_IMPOSTOR = "149.154.167.51"
MTPROTO_DCS: Mapping[str, str] = MappingProxyType(
    {MTPROTO_DC: "normal", MTPROTO_DC4: "normal", MTPROTO_IMPOSTOR: "wrong_nonce"}
)
#: A DC address where nothing listens (an outage: the internet namespace's kernel resets).
MTPROTO_GONE = "149.154.167.52"
#: The plain intermediate transport's tag, the first 4 bytes of its first segment (nft value,
#: wire order; docs/mtproto.md).
INTERMEDIATE_TAG = "0xeeeeeeee"
#: The obfuscated form's first segment: a 64-byte init + the 44-byte framed req_pq_multi,
#: no fixed byte. Its IPv4 length with TCP timestamps (doff 8: a 32-byte TCP header).
OBFUSCATED_PAYLOAD = 64 + 44
OBFUSCATED_IP_LENGTH = 20 + 32 + OBFUSCATED_PAYLOAD

#: The zone every honest resolver serves (A records only; AAAA gets NOERROR/no data).
ZONE: Mapping[str, str] = MappingProxyType(
    {
        **{name: address for address, names in WEB_HOSTS.items() for name in names},
        **{name: address for address, names in PRIVATE_ROOT_HOSTS.items() for name in names},
        GEO_HOST: GEO_PUBLIC,  # the public resolvers' site (the ISPs' is in ISP_ZONE)
        "chat.whatsapp.lab": "13.248.0.20",
        "storage.signal.lab": OUTAGE_ADDRESS,
        "blocked.lab": SINKHOLE,
        **{server_name: address for _, address, server_name in PROVIDERS},
        STUN_RELAY_HOST: STUN_RELAY,
        **STUN_PUBLIC,
        STUN_LOSSY_HOST: STUN_LOSSY,
    }
)
#: What the censoring resolvers say instead: an address, or None for NXDOMAIN.
LIES: Mapping[str, str | None] = MappingProxyType(
    {
        "web.telegram.lab": BOGON,
        "media.whatsapp.lab": SINKHOLE,
        "chat.signal.lab": None,
        FORGED_HOST: FORGED_TARGET,
        INJECTED_HOST: INJECTED_TARGET,
    }
)
#: What every ISP resolver (honest or lying, not the dead one) answers instead of ZONE: not a
#: lie, another real site of the same service (geo-DNS, as CDNs and Meta do).
ISP_ZONE: Mapping[str, str] = MappingProxyType({GEO_HOST: GEO_ISP})

BLOCKPAGE_TITLE = "Access denied"
BLOCKPAGE_BODY = (
    "<!doctype html><html><head><title>Access denied</title></head><body>"
    "<h1>Access denied</h1><p>Access to this website has been blocked by order of the Lab "
    "Telecommunications Regulatory Authority.</p></body></html>"
)
BLOCKPAGE_REDIRECT = "http://blocked.lab/"


def normal_page(host: str) -> str:
    return (
        f"<!doctype html><html><head><title>{host}</title></head><body><h1>{host}</h1>"
        "<p>A lab look-alike of a real service.</p></body></html>"
    )


# --- censorship techniques -------------------------------------------------------------------

#: technique → what it is and how the lab does it (also the values of endpoint `expect`).
TECHNIQUES: Mapping[str, str] = MappingProxyType(
    {
        "ok": "not interfered with",
        "dns-bogon": (
            f"the censoring resolver answers {BOGON} (Iran-style private bogon); on `censor` "
            "only the ISP resolver lies, on `dnsint` every plain (udp/tcp 53) resolver does"
        ),
        "dns-sinkhole": f"the censoring resolver answers the sinkhole {SINKHOLE} (Turkey-style)",
        "dns-nxdomain": "the censoring resolver answers NXDOMAIN",
        "dns-interception": (
            "nft `dnat` of udp/tcp port 53 to any destination onto the ISP's lying resolver "
            "(isp-dnsint); DoT/DoH/DoQ untouched"
        ),
        "ip-reset": (
            "nft `meta l4proto tcp reject with tcp reset` in forward: connect() is refused; "
            "UDP and ICMP to the address pass"
        ),
        "ip-drop": (
            "nft `meta l4proto tcp drop` in forward: connect() times out; UDP and ICMP to the "
            "address pass"
        ),
        "tcp-proxy-stall": (
            "nft `redirect` of tcp/443 to a listener on the ISP that accepts the connection "
            "and never answers: connect() works, the TLS handshake times out (no name rule)"
        ),
        "sni-reset": (
            "nft `redirect` of tcp/443 to the SNI filter, which reads the ClientHello and "
            "resets (SO_LINGER 0) when the SNI is blocked, else splices to the real server"
        ),
        "sni-reset-residual": (
            "sni-reset, and after a hit the (client, server, port) triple is put in nft set "
            "`residual` with a timeout: every new connection is reset until it expires"
        ),
        "blockpage": (
            f"nft `dnat` of tcp/80 to the ISP's blockpage server on {BOGON}: 200 "
            f"'{BLOCKPAGE_TITLE}' page"
        ),
        "tls-mitm": (
            f"nft `dnat` of tcp/443 to the ISP's TLS interceptor on {MITM_ADDRESS}, which "
            "presents a certificate for the requested name from a foreign CA and relays"
        ),
        "outage": "no listener anywhere: refused on every live network (not censorship)",
        "unreachable": (
            "isp-dead's link to the internet is down and what is left is a blackhole default "
            "route: everything beyond the ISP times out (its own resolver answers SERVFAIL)"
        ),
        "throttle": (
            "nft `limit rate over <bytes>/second ... drop` in forward on what a service's "
            "address sends: the flow works, slowly (Russia's 2021 Twitter throttling); added "
            "at run time with `lab.technique(police(address))`"
        ),
        "icmp-filter": (
            "not censorship: a router drops the ICMP time-exceeded it would send (nft "
            "`icmp type time-exceeded drop` in output), so a trace through it has a gap at its "
            "hop; added at run time with `lab.technique(icmp_filter(role))`"
        ),
        "quic-drop": (
            "nft `udp dport 443 drop` in forward for one service address: QUIC vanishes while "
            "TCP 443 to the same address passes, so apps fall back to TCP (where SNI "
            "filtering works)"
        ),
        "geo-dns": (
            f"not censorship: the ISP resolvers answer one real site ({GEO_ISP}), the public "
            f"ones (every transport) another ({GEO_PUBLIC}), in another /24; both serve the "
            "name with a valid certificate"
        ),
        "dns-forged": (
            f"the censoring resolver answers the address of another real server "
            f"({FORGED_TARGET}, media.whatsapp.lab), whose certificate is for another name: "
            "the TLS handshake fails with a hostname mismatch"
        ),
        "stun-drop": (
            f"nft `ip daddr {STUN_RELAY} udp dport {STUN_PORT} drop` in forward: the relay's "
            "STUN (the call path) vanishes; TCP, other UDP and the public STUN servers pass"
        ),
        "stun-loss": (
            "not censorship: the relay ignores the first copy of every STUN transaction (a "
            "lost datagram); the client's retransmission is answered"
        ),
        "mtproto-dpi": (
            f"nft `tcp dport {MTPROTO_PORT} @ih,0,32 {INTERMEDIATE_TAG} reject with tcp reset` "
            "in forward: a segment opening with the plain intermediate transport's tag is reset "
            "(to any address); the obfuscated form, with no fixed byte, passes"
        ),
        "mtproto-length": (
            f"nft `ip daddr {TELEGRAM_PREFIX} tcp dport {MTPROTO_PORT} ip length "
            f"{OBFUSCATED_IP_LENGTH} tcp doff 8 reject with tcp reset` in forward: a segment "
            f"of exactly {OBFUSCATED_PAYLOAD} payload bytes to Telegram's prefix (the "
            "obfuscated opening) is reset; added at run time with "
            "`lab.technique(mtproto_length_reset())`"
        ),
        "mtproto-impostor": (
            "the DC look-alike answers resPQ with another nonce than the request's, as only "
            "something answering in the DC's place does"
        ),
        "udp-blackout": (
            "nft `ip daddr . udp dport != { <public resolvers> . 53 } ip saddr . udp sport != "
            "{ <the same> } drop` in forward: no UDP at all but DNS with the lab's public "
            "resolvers; added at run time with "
            "`lab.technique(udp_blackout(isp))`"
        ),
        "dns-foreign": (
            f"the censoring resolver (on `dnsint`: every plain resolver) answers a real, "
            f"global address that does not serve the name ({INJECTED_TARGET}: refused), as "
            "China's injector answers foreign addresses"
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One nftables rule of a technique: `nft add rule inet lab <chain> <text>` in the router
    of role `isp` (an ISP, or a transit router such as `transit-censor-1`). `{isp}` in the
    text is the ISP's own address."""

    isp: str
    technique: str
    chain: str
    text: str


RULES: tuple[Rule, ...] = (
    # IP blocking
    Rule(
        "isp-censor",
        "ip-reset",
        "forward",
        f"ip daddr {DC_RESET} meta l4proto tcp reject with tcp reset",
    ),
    Rule("isp-censor", "ip-drop", "forward", f"ip daddr {DC_DROP} meta l4proto tcp drop"),
    # HTTP blockpage and TLS interception: steer the flow to the ISP's own servers
    Rule(
        "isp-censor",
        "blockpage",
        "dstnat",
        f"ip daddr {BLOCKPAGE_ADDRESS} tcp dport 80 dnat ip to {BOGON}:80",
    ),
    Rule(
        "isp-censor",
        "tls-mitm",
        "dstnat",
        f"ip daddr {MITM_TARGET} tcp dport 443 dnat ip to {MITM_ADDRESS}:443",
    ),
    # A transparent proxy that takes the connection and never answers: no rule on a name
    Rule(
        "isp-censor",
        "tcp-proxy-stall",
        "dstnat",
        f"ip daddr {STALL_ADDRESS} tcp dport 443 redirect to :{STALL_PORT}",
    ),
    # SNI filtering: through the userspace filter (nftables cannot parse a ClientHello)
    Rule(
        "isp-censor",
        "sni-reset",
        "dstnat",
        f"ip daddr {SNI_ADDRESS} tcp dport 443 redirect to :{SNI_FILTER_PORT}",
    ),
    Rule(
        "isp-censor",
        "sni-reset-residual",
        "dstnat",
        f"ip daddr {SNI_RESIDUAL_ADDRESS} tcp dport 443 redirect to :{SNI_FILTER_PORT}",
    ),
    Rule(
        "isp-censor",
        "sni-reset-residual",
        "prefilter",
        "meta l4proto tcp ip saddr . ip daddr . tcp dport @residual reject with tcp reset",
    ),
    # QUIC blocking: UDP 443 to one service address vanishes, TCP 443 passes
    Rule("isp-censor", "quic-drop", "forward", f"ip daddr {QUIC_ADDRESS} udp dport 443 drop"),
    # The call path: the relay's STUN dropped (UDP has no reset), TCP and other UDP pass
    Rule(
        "isp-censor",
        "stun-drop",
        "forward",
        f"ip daddr {STUN_RELAY} udp dport {STUN_PORT} drop",
    ),
    # DPI on Telegram's protocol: the plain intermediate tag opening a segment is reset
    Rule(
        "isp-censor",
        "mtproto-dpi",
        "forward",
        f"tcp dport {MTPROTO_PORT} @ih,0,32 {INTERMEDIATE_TAG} reject with tcp reset",
    ),
    # Transparent DNS interception
    Rule("isp-dnsint", "dns-interception", "dstnat", "udp dport 53 dnat ip to {isp}:53"),
    Rule("isp-dnsint", "dns-interception", "dstnat", "tcp dport 53 dnat ip to {isp}:53"),
)


def mtproto_length_reset(isp: str = "isp-censor") -> Rule:
    """`mtproto-length`: the ISP resets a segment to Telegram's prefix, port 443, whose
    payload is exactly the obfuscated opening's 108 bytes (IPv4 length 160 with the 32-byte
    TCP header of a connection with timestamps, as Linux makes by default). nft has no
    payload-length or entropy expression, so the length comes through the IP length and the
    TCP header size. Not in `RULES`: `with lab.technique(mtproto_length_reset()): ...`."""
    text = (
        f"ip daddr {TELEGRAM_PREFIX} tcp dport {MTPROTO_PORT} ip length {OBFUSCATED_IP_LENGTH} "
        "tcp doff 8 reject with tcp reset"
    )
    return Rule(isp, "mtproto-length", "forward", text)


def udp_blackout(isp: str) -> Rule:
    """`udp-blackout`: the ISP forwards no UDP at all but DNS (port 53) to the lab's public
    resolvers and their answers; its own resolver (local, not forwarded) still answers. Not
    in `RULES`: `with lab.technique(udp_blackout("isp-clean")): ...`."""
    allowed = ", ".join(f"{address} . 53" for _, address, _ in PROVIDERS)
    text = f"ip daddr . udp dport != {{ {allowed} }} ip saddr . udp sport != {{ {allowed} }} drop"
    return Rule(isp, "udp-blackout", "forward", text)


def icmp_filter(router: str) -> Rule:
    """An ICMP-filtering router: `router` (an ISP or a transit role, e.g. `transit-censor-1`)
    drops the time-exceeded errors it sends (nft `output`), so a trace through it has a gap
    at its hop. Not in `RULES`: `with lab.technique(icmp_filter(role)): ...`."""
    return Rule(router, "icmp-filter", "output", "icmp type time-exceeded drop")


def police(
    address: str, *, isp: str = "isp-censor", rate: str = "256 kbytes/second burst 64 kbytes"
) -> Rule:
    """A `throttle` technique: the ISP drops what `address` sends from port 443 beyond `rate`
    (counted in bytes, so GSO super-packets over veth count for what they carry). Not in
    `RULES`: a test applies it for its body with `lab.technique(police(address))`."""
    text = f"ip saddr {address} tcp sport 443 limit rate over {rate} drop"
    return Rule(isp, "throttle", "forward", text)


#: The SNI filter's blocklist: name (exact, or `*.suffix`) → its technique (`sni-reset-residual`
#: names get `residual_seconds` of residual blocking after a hit, the others none).
SNI_BLOCKLIST: Mapping[str, str] = MappingProxyType(
    {"web.whatsapp.lab": "sni-reset", "cdn.signal.lab": "sni-reset-residual"}
)


def base_ruleset() -> str:
    """The `inet lab` table every lab router gets: empty chains at the usual hooks, and the
    `residual` set the SNI filter fills. Techniques add rules to these chains."""
    return """
table inet lab {
    set residual {
        type ipv4_addr . ipv4_addr . inet_service
        flags timeout
    }
    chain prefilter { type filter hook prerouting priority -150; policy accept; }
    chain dstnat { type nat hook prerouting priority dstnat; policy accept; }
    chain forward { type filter hook forward priority filter; policy accept; }
    chain output { type filter hook output priority filter; policy accept; }
    chain srcnat { type nat hook postrouting priority srcnat; policy accept; }
}
"""


# --- endpoints -------------------------------------------------------------------------------


def _endpoint(
    service: str,
    host: str | None,
    address: str,
    port: int,
    scheme: str,
    *,
    censor: str = "ok",
    dnsint: str = "ok",
    everywhere: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    expect = {
        "clean": everywhere or "ok",
        "censor": everywhere or censor,
        "dnsint": everywhere or dnsint,
        "dead": "unreachable",
    }
    return {
        "service": service,
        "host": host,
        "address": address,
        "port": port,
        "scheme": scheme,
        "expect": expect,
        **extra,
    }


def _endpoints() -> dict[str, dict[str, Any]]:
    """Every endpoint, what it runs, and the technique that hits it on each network."""
    return {
        "telegram-web": _endpoint(
            "telegram",
            "web.telegram.lab",
            "91.108.56.10",
            443,
            "https",
            censor="dns-bogon",
            dnsint="dns-bogon",
            lie=BOGON,
        ),
        "telegram-core": _endpoint(
            "telegram", STALL_HOST, STALL_ADDRESS, 443, "https", censor="tcp-proxy-stall"
        ),
        "telegram-dc": _endpoint(
            "telegram", None, DC_RESET, 443, "http", censor="ip-reset", status=DC_STATUS
        ),
        "telegram-dc-80": _endpoint(
            "telegram", None, DC_RESET, 80, "http", censor="ip-reset", status=DC_STATUS
        ),
        "telegram-dc2": _endpoint(
            "telegram", None, DC_DROP, 443, "http", censor="ip-drop", status=DC_STATUS
        ),
        "whatsapp-web": _endpoint(
            "whatsapp",
            "web.whatsapp.lab",
            SNI_ADDRESS,
            443,
            "https",
            censor="sni-reset",
            control_sni="static.whatsapp.lab",
        ),
        "whatsapp-media": _endpoint(
            "whatsapp",
            "media.whatsapp.lab",
            "13.248.0.30",
            443,
            "https",
            censor="dns-sinkhole",
            dnsint="dns-sinkhole",
            lie=SINKHOLE,
        ),
        "whatsapp-chat": _endpoint("whatsapp", "chat.whatsapp.lab", "13.248.0.20", 5222, "tcp"),
        "messenger-web": _endpoint(
            "messenger", "edge.messenger.lab", BLOCKPAGE_ADDRESS, 80, "http", censor="blockpage"
        ),
        "messenger-web-tls": _endpoint(
            "messenger", "edge.messenger.lab", BLOCKPAGE_ADDRESS, 443, "https"
        ),
        "messenger-api": _endpoint(
            "messenger", "api.messenger.lab", MITM_TARGET, 443, "https", censor="tls-mitm"
        ),
        "signal-chat": _endpoint(
            "signal",
            "chat.signal.lab",
            "76.223.0.10",
            443,
            "https",
            censor="dns-nxdomain",
            dnsint="dns-nxdomain",
            lie="NXDOMAIN",
        ),
        "signal-cdn": _endpoint(
            "signal",
            "cdn.signal.lab",
            SNI_RESIDUAL_ADDRESS,
            443,
            "https",
            censor="sni-reset-residual",
            control_sni="updates.signal.lab",
        ),
        "signal-storage": _endpoint(
            "signal", "storage.signal.lab", OUTAGE_ADDRESS, 443, "https", everywhere="outage"
        ),
        "messenger-chat": _endpoint(
            "messenger",
            "chat.messenger.lab",
            QUIC_ADDRESS,
            443,
            "https",
            censor="quic-drop",
            http3=True,
        ),
        "signal-cdsi": _endpoint(
            "signal", "cdsi.signal.lab", PRIVATE_ROOT_ADDRESS, 443, "https"
        ),  # + ca_file: the private root (set by Lab)
        "messenger-geo": _endpoint(
            "messenger",
            GEO_HOST,
            GEO_PUBLIC,
            443,
            "https",
            everywhere="geo-dns",
            isp_address=GEO_ISP,
        ),
        "telegram-desktop": _endpoint(
            "telegram",
            FORGED_HOST,
            FORGED_REAL,
            443,
            "https",
            censor="dns-forged",
            dnsint="dns-forged",
            lie=FORGED_TARGET,
        ),
        "whatsapp-updates": _endpoint(
            "whatsapp",
            INJECTED_HOST,
            INJECTED_REAL,
            443,
            "https",
            censor="dns-foreign",
            dnsint="dns-foreign",
            lie=INJECTED_TARGET,
        ),
        "canary": _endpoint("canary", "example.lab", "93.184.216.34", 443, "https", http3=True),
        "canary-http": _endpoint("canary", "example.lab", "93.184.216.34", 80, "http"),
        # STUN (UDP 3478) and MTProto (TCP 443): tests/test_lab_protocols.py
        "messenger-stun": _endpoint(
            "messenger", STUN_RELAY_HOST, STUN_RELAY, STUN_PORT, "stun", censor="stun-drop"
        ),
        "whatsapp-relay": _endpoint(
            "whatsapp", STUN_LOSSY_HOST, STUN_LOSSY, STUN_PORT, "stun", everywhere="stun-loss"
        ),
        **{
            f"stun-{host.split('.')[-2]}": _endpoint("canary", host, address, STUN_PORT, "stun")
            for host, address in STUN_PUBLIC.items()
        },
        "telegram-mtproto": _endpoint(
            "telegram", None, MTPROTO_DC, MTPROTO_PORT, "mtproto", censor="mtproto-dpi", dc=2
        ),
        "telegram-mtproto4": _endpoint(
            "telegram", None, MTPROTO_DC4, MTPROTO_PORT, "mtproto", censor="mtproto-dpi", dc=4
        ),
        "telegram-impostor": _endpoint(
            "telegram",
            None,
            MTPROTO_IMPOSTOR,
            MTPROTO_PORT,
            "mtproto",
            everywhere="mtproto-impostor",
        ),
        "telegram-mtproto-gone": _endpoint(
            "telegram", None, MTPROTO_GONE, MTPROTO_PORT, "mtproto", everywhere="outage"
        ),
    }


# --- commands --------------------------------------------------------------------------------


def _run(
    argv: Sequence[str], *, stdin: str | None = None, check: bool = True, timeout: float = 30
) -> str:
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabError(f"`{' '.join(argv)}` failed ({proc.returncode}): {detail}")
    return proc.stdout


def _guard(ns: str) -> str:
    """Every command the lab runs names a lab namespace: never the root namespace."""
    if not ns.startswith(PREFIX_BASE) or "/" in ns:
        raise LabError(f"refusing to act outside a lab namespace: {ns!r}")
    return ns


def _ip_batch(ns: str, commands: Iterable[str]) -> None:
    """`ip -n NS -batch -`: one fork for a namespace's whole configuration."""
    _run(["ip", "-n", _guard(ns), "-batch", "-"], stdin="\n".join(commands) + "\n")


def _nft(ns: str, script: str, *flags: str) -> str:
    return _run(["ip", "netns", "exec", _guard(ns), "nft", *flags, "-f", "-"], stdin=script)


def _sysctl(ns: str, settings: Mapping[str, str]) -> None:
    _run(
        ["ip", "netns", "exec", _guard(ns), "sysctl", "-q", "-w"]
        + [f"{key}={value}" for key, value in settings.items()]
    )


def lab_namespaces(prefix: str = PREFIX_BASE) -> list[str]:
    """The namespaces whose name starts with `prefix` (a lab prefix, `mxl-` by default)."""
    _guard(prefix)
    out = _run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [name for name in names if name.startswith(prefix)]


def _kill_namespace_processes(ns: str) -> None:
    """End the processes still inside a lab namespace (servers, or whatever `run_in` started
    there), by pid."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in _run(["ip", "netns", "pids", _guard(ns)], check=False).split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            alive = [pid for pid in pids if _pid_alive(pid)]
            if not alive:
                return
            time.sleep(0.02)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still "exists"; reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    return True


def down(prefix: str = PREFIX_BASE) -> list[str]:
    """Remove every lab namespace starting with `prefix` (leftovers of a crashed run), ending
    the processes inside them first. Returns the names removed."""
    removed = []
    for ns in lab_namespaces(prefix):
        _kill_namespace_processes(ns)
        _run(["ip", "netns", "delete", ns], check=False)
        removed.append(ns)
    return removed


# --- server processes ------------------------------------------------------------------------


class ServerProcess:
    """`python -m tests.lab.servers --spec FILE` inside a namespace. It prints "ready" once
    every listener is bound, and exits when its stdin closes (so it never outlives us)."""

    def __init__(self, ns: str, spec_file: Path, log_file: Path) -> None:
        self.ns = ns
        self.spec_file = spec_file
        self.log_file = log_file
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        with log_file.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    _guard(ns),
                    sys.executable,
                    "-m",
                    "tests.lab.servers",
                    "--spec",
                    str(spec_file),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=REPO_ROOT,
                env=env,
            )

    def wait_ready(self, deadline: float) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                if b"ready\n" in buffer:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LabError(f"server in {self.ns} not ready in time; {self._tail()}")
                if not sel.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(5)
                    raise LabError(
                        f"server in {self.ns} exited ({self.proc.returncode}) before ready; "
                        f"{self._tail()}"
                    )
                buffer += chunk

    def _tail(self) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return f"log {self.log_file}:\n{text[-3000:]}" if text else f"log {self.log_file} empty"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the server exits on EOF
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(3)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


# --- the lab ---------------------------------------------------------------------------------


class Lab:
    """A built, running lab. Build with `Lab.start(dir)` (sync, also a context manager) or
    `await Lab.create(dir)`; tear down with `shutdown()` / `await close()` (idempotent; also
    run at interpreter exit)."""

    def __init__(self, directory: Path, prefix: str, residual_seconds: float) -> None:
        self.directory = directory
        self.prefix = prefix
        self.residual_seconds = residual_seconds
        #: role ("vantage", "isp-censor", ...) → namespace name.
        self.namespaces = {role: f"{prefix}{role}" for role in ROLES}
        self.vantage = self.namespaces["vantage"]
        self.networks: dict[str, dict[str, Any]] = {
            u.network: {
                "netns": self.vantage,
                "source_address": u.vantage_address,
                "interface": u.interface,
                "gateway": u.isp_address,
                "isp_namespace": self.namespaces[u.isp],
                "table": u.table,
                # hop k (TTL k) answers time-exceeded from routers[k-1]; a service address is
                # `distance` hops away (a TTL of `distance` reaches it)
                "routers": list(u.routers),
                "transit_namespaces": [self.namespaces[t] for t in u.transits],
                "distance": u.distance,
            }
            for u in UPLINKS
        }
        self.endpoints = _endpoints()
        if residual_seconds <= 0:  # the residual variant switched off: a plain SNI reset
            self.endpoints["signal-cdn"]["expect"]["censor"] = "sni-reset"
        self.techniques = dict(TECHNIQUES)
        self.rules = RULES
        self.zone = dict(ZONE)
        self.lies = dict(LIES)
        self.isp_zone = dict(ISP_ZONE)
        self.pki: Pki | None = None
        self.foreign_pki: Pki | None = None
        self.private_pki: Pki | None = None
        self.ca_file = directory / "lab-ca.pem"
        self.foreign_ca_file = directory / "foreign-ca.pem"
        #: The private root (Signal-style): trusted by no one unless added (`extra_ca_file`).
        self.private_root_file = directory / "private-root.pem"
        self.endpoints["signal-cdsi"]["ca_file"] = str(self.private_root_file)
        self.resolvers: dict[str, dict[str, Any]] = {}
        #: What serves the relay and the public STUN look-alikes: "coturn" (Debian's
        #: turnserver, a real STUN server), or "fake" (the lab's own responder) without it.
        self.stun_server = "coturn" if shutil.which("turnserver") else "fake"
        self._servers: list[ServerProcess] = []
        self._spawned: list[subprocess.Popen[Any]] = []
        self._closed = False
        self._built: list[str] = []
        #: name → facts of the vantage points added with `add_vantage` (and not removed).
        self.extra_vantages: dict[str, dict[str, Any]] = {}
        self._extra_count = 0

    # construction ------------------------------------------------------------------------

    @classmethod
    def start(
        cls, directory: Path | str, *, prefix: str | None = None, residual_seconds: float = 2.0
    ) -> Lab:
        """Build everything and start every server; returns once all are ready.

        `residual_seconds`: how long the SNI filter keeps resetting a (client, server, port)
        after a hit on cdn.signal.lab (`sni-reset-residual`); whatsapp's SNI rule has none.
        """
        check_host()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if prefix is None:
            prefix = f"{PREFIX_BASE}{secrets.token_hex(2)}-"
            while lab_namespaces(prefix):  # another run's: never share (nor delete) them
                prefix = f"{PREFIX_BASE}{secrets.token_hex(2)}-"
        elif lab_namespaces(prefix):
            raise LabError(
                f"namespaces starting with {prefix!r} exist already (a leftover? "
                f"`python -m tests.lab down --prefix {prefix}` removes them)"
            )
        lab = cls(directory, prefix, residual_seconds)
        atexit.register(lab.shutdown)
        try:
            lab._build()
        except BaseException:
            lab.shutdown()
            raise
        return lab

    @classmethod
    async def create(cls, directory: Path | str, **options: Any) -> Lab:
        return await asyncio.to_thread(cls.start, directory, **options)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    async def close(self) -> None:
        await asyncio.to_thread(self.shutdown)

    def _build(self) -> None:
        self.pki = make_pki(self.directory, "lab-ca")
        self.foreign_pki = make_pki(self.directory, "foreign-ca")
        self.private_pki = make_pki(self.directory, "private-root")
        self.resolvers = self._resolvers()
        names = [_guard(self.namespaces[role]) for role in ROLES]
        self._built += names  # deleted at shutdown even if this fails half-way
        _run(["ip", "-batch", "-"], stdin="".join(f"netns add {ns}\n" for ns in names))
        self._wire()
        # The servers take a second to start (Python, certificates, aioquic): they start as
        # soon as their addresses exist, and the routers' settings and rules go in meanwhile.
        self._spawn_servers()
        for role in ROLES:
            self._settle(role)
        deadline = time.monotonic() + READY_TIMEOUT
        for server in self._servers:
            server.wait_ready(deadline)

    def _settle(self, role: str) -> None:
        """A namespace's sysctls, its `inet lab` table and its technique rules, in one go."""
        settings = {
            "net.ipv4.conf.all.rp_filter": "0",
            "net.ipv4.conf.default.rp_filter": "0",
            # Every ICMP error is sent (no per-peer or global rate limit): deterministic
            # "port unreachable" for the silent resolver and the outage, and a time-exceeded
            # from every hop of every trace, test after test.
            "net.ipv4.icmp_ratemask": "0",
        }
        if role in ROUTER_UPLINK:
            settings["net.ipv4.ip_forward"] = "1"  # inside the routers only
        script = base_ruleset() + "".join(
            f"add rule inet lab {rule.chain} {self._rule_text(rule)}\n"
            for rule in self.rules
            if rule.isp == role
        )
        ns = _guard(self.namespaces[role])
        sysctl = " ".join(f"{key}={value}" for key, value in settings.items())
        _run(
            ["ip", "netns", "exec", ns, "sh", "-c", f"sysctl -q -w {sysctl} && exec nft -f -"],
            stdin=script,
        )

    def _wire(self) -> None:
        ns = self.namespaces
        batch: dict[str, list[str]] = {role: ["link set lo up"] for role in ROLES}
        for u in UPLINKS:
            isp_ns, t1_ns = ns[u.isp], ns[u.transits[0]]
            # Both ends are created inside lab namespaces: nothing ever appears on the host.
            batch["vantage"] += [
                f"link add {u.interface} type veth peer name vantage0 netns {isp_ns}",
                f"addr add {u.vantage_address}/30 dev {u.interface}",
                f"link set {u.interface} up",
                f"route add {u.subnet} dev {u.interface} src {u.vantage_address} table {u.table}",
                f"route add default via {u.isp_address} dev {u.interface} table {u.table}",
                f"rule add from {u.vantage_address} lookup {u.table} pref {1000 + u.index}",
                f"rule add oif {u.interface} lookup {u.table} pref {1100 + u.index}",
            ]
            batch[u.isp] += [
                f"addr add {u.isp_address}/30 dev vantage0",
                "link set vantage0 up",
                f"link add inet0 type veth peer name down0 netns {t1_ns}",
                f"addr add {u.isp_internet_address}/30 dev inet0",
            ]
            if u.isp in ("isp-censor", "isp-dnsint"):
                batch[u.isp] += [f"addr add {a}/32 dev lo" for a in (BOGON, MITM_ADDRESS, SINKHOLE)]
            # Transit k: `down0` towards the vantage (on link k), `up0` on towards the internet
            # (link k+1). Upstream by default; the vantage's side (its subnet, the extra
            # vantage points, links 1..k-1) routed back down. What is not routed back while
            # link 1 is cut falls into the blackholes (100.64.0.0/10 and link k), instead of
            # bouncing up and down between two transits until its TTL runs out.
            for k, role in enumerate(u.transits, start=1):
                last = k == len(u.transits)
                upstream = ns["internet"] if last else ns[u.transits[k]]
                peer = u.interface if last else "down0"
                batch[role] += [
                    f"addr add {u.link_address(k, 2)}/30 dev down0",
                    f"link add up0 type veth peer name {peer} netns {upstream}",
                    f"addr add {u.link_address(k + 1, 1)}/30 dev up0",
                    "link set up0 up",
                    f"route add default via {u.link_address(k + 1, 2)} dev up0",
                    "route add blackhole 100.64.0.0/10",
                    # its vantage-side link too, under the connected route while it is up
                    f"route add blackhole {u.link_address(k, 0)}/30 metric 100",
                ]
                if k > 1:  # link 1 (ISP - transit-1) is the one `set_internet_link` cuts
                    batch[role] += ["link set down0 up", *self._routes_down(u, k, replace=False)]
            batch["internet"] += [
                f"addr add {u.internet_address}/30 dev {u.interface}",
                f"link set {u.interface} up",
                f"route add {u.subnet} via {u.link_address(len(u.routers), 1)} dev {u.interface}",
                f"route add {u.internal} via {u.link_address(len(u.routers), 1)} dev {u.interface}",
            ]
            for role, commands in self._internet_link(u, up=u.internet_link_up).items():
                batch[role] += commands
        addresses = {SILENT, OUTAGE_ADDRESS, *WEB_HOSTS, *PRIVATE_ROOT_HOSTS, *TELEGRAM_DCS}
        addresses |= {a for a, _ in TCP_LISTENERS} | {a for _, a, _ in PROVIDERS}
        addresses |= {STUN_RELAY, STUN_LOSSY, *STUN_PUBLIC.values(), *MTPROTO_DCS, MTPROTO_GONE}
        batch["internet"] += [f"addr add {a}/32 dev lo" for a in sorted(addresses)]
        # In this order: each batch configures the veth ends the ones before it created.
        for role in ROLES:
            _ip_batch(ns[role], batch[role])

    @staticmethod
    def _routes_down(u: Uplink, k: int, *, replace: bool) -> list[str]:
        """Transit k's routes back towards the vantage, over its `down0`: the vantage's subnet,
        the extra vantage points (`add_vantage`) and the links before k."""
        verb = "replace" if replace else "add"
        via = f"via {u.link_address(k, 1)} dev down0"
        routes = [u.subnet, f"{EXTRA_VANTAGE_NET}.0.0/16"]
        routes += [f"{u.link_address(j, 0)}/30" for j in range(1, k)]
        return [f"route {verb} {route} {via}" for route in routes]

    def _internet_link(self, u: Uplink, *, up: bool) -> dict[str, list[str]]:
        """The commands (role → ip batch lines, ISP first) that bring the link between the ISP
        and its first transit router up, or cut it."""
        isp, t1 = u.isp, u.transits[0]
        if up:
            return {
                isp: [
                    "link set inet0 up",
                    f"route replace default via {u.link_address(1, 2)} dev inet0",
                ],
                t1: ["link set down0 up", *self._routes_down(u, 1, replace=True)],
            }
        # What is left of the way out is a black hole: packets vanish, callers time out.
        # (Not an ICMP unreachable: over veth the ICMP comes back while connect() still
        # holds the socket lock, becomes a soft error, and the failure then shows after
        # the 1 s SYN retransmission or not at all: nondeterministic.) The kernel drops the
        # routes over a link that goes down; the transit's blackholes catch the way back.
        return {
            isp: ["link set inet0 down", "route replace blackhole default"],
            t1: ["link set down0 down"],
        }

    def set_internet_link(self, network: str, *, up: bool) -> None:
        """Bring an ISP's link to the internet (its link to its first transit router, both
        veth ends, and the routes over it) up or down: `dead` starts down; a later test can
        cut any uplink mid-run. Down, the ISP's default route is a blackhole: everything
        beyond the ISP times out, even a packet whose TTL would expire there (the route
        lookup comes before the TTL check)."""
        u = UPLINK[network]
        for role, commands in self._internet_link(u, up=up).items():
            _ip_batch(self.namespaces[role], commands)

    def add_vantage(self, name: str, network: str) -> dict[str, Any]:
        """Another vantage point, for a fleet of exporters: a namespace of its own
        (`<prefix>vp-<name>`, role `vp-<name>`) whose only link is a veth to the ISP router of
        `network`. It is another customer of that ISP behind the same gateway address (the
        ISP's own address, on a /32 of its own), so the ISP's resolver and every technique of
        that ISP apply to it as to the lab's vantage on that network (the SNI filter's
        `redirect` lands on that address too). Its main table has a default route to the ISP:
        a process there needs no network selection. The internet namespace routes its address
        back through the ISP, so a central Prometheus there can scrape it. Removed by
        `remove_vantage`, or at shutdown."""
        if name in self.extra_vantages or not re.fullmatch(r"[a-z0-9-]{1,20}", name):
            raise LabError(f"bad or duplicate vantage name {name!r}")
        u = UPLINK[network]
        self._extra_count += 1
        n = self._extra_count
        role = f"vp-{name}"
        ns = f"{self.prefix}{role}"
        isp_ns, internet_ns = self.namespaces[u.isp], self.namespaces["internet"]
        address, gateway, isp_dev = f"{EXTRA_VANTAGE_NET}.{n}.2", u.isp_address, f"vp{n}"
        _run(["ip", "netns", "add", _guard(ns)])
        self._built.append(ns)
        self.namespaces[role] = ns
        facts = {
            "name": name,
            "role": role,
            "netns": ns,
            "network": network,
            "address": address,
            "interface": "uplink0",
            "gateway": gateway,
            "isp_namespace": isp_ns,
            "isp_interface": isp_dev,
        }
        self.extra_vantages[name] = facts
        _ip_batch(
            ns,
            [
                "link set lo up",
                f"link add uplink0 type veth peer name {isp_dev} netns {isp_ns}",
                f"addr add {address}/32 dev uplink0",
                "link set uplink0 up",
                f"route add {gateway}/32 dev uplink0 scope link src {address}",
                f"route add default via {gateway} dev uplink0 src {address}",
            ],
        )
        _ip_batch(
            isp_ns,
            [
                f"addr add {gateway}/32 dev {isp_dev}",
                f"link set {isp_dev} up",
                f"route add {address}/32 dev {isp_dev} scope link src {gateway}",
            ],
        )
        _ip_batch(
            internet_ns,
            [
                f"route replace {address}/32 via {u.link_address(len(u.routers), 1)} "
                f"dev {u.interface}"
            ],
        )
        _sysctl(
            ns,
            {
                "net.ipv4.conf.all.rp_filter": "0",
                "net.ipv4.conf.default.rp_filter": "0",
                "net.ipv4.icmp_ratemask": "0",
            },
        )
        return facts

    def remove_vantage(self, name: str) -> None:
        """Undo `add_vantage`: end the processes in its namespace and delete it (its veth and
        the ISP's end go with it), and the internet's route back to it."""
        facts = self.extra_vantages.pop(name)
        ns = facts["netns"]
        _kill_namespace_processes(ns)
        _run(["ip", "netns", "delete", _guard(ns)], check=False)
        self._built.remove(ns)
        del self.namespaces[facts["role"]]
        _run(
            ["ip", "-n", self._ns("internet"), "route", "del", f"{facts['address']}/32"],
            check=False,
        )

    def add_rule(self, rule: Rule) -> int:
        """Append one technique rule to its router's `inet lab` table (at build time, or at
        run time for a test of its own); returns the nft rule handle for `remove_rule`."""
        text = self._rule_text(rule)
        echo = _nft(
            self._ns(rule.isp), f"add rule inet lab {rule.chain} {text}\n", "--echo", "--handle"
        )
        match = re.search(r"# handle (\d+)", echo)
        if match is None:
            raise LabError(f"nft did not echo a handle for {rule}: {echo!r}")
        return int(match.group(1))

    @staticmethod
    def _rule_text(rule: Rule) -> str:
        isp_address = next((u.isp_address for u in UPLINKS if u.isp == rule.isp), "")
        return rule.text.replace("{isp}", isp_address)

    def remove_rule(self, rule: Rule, handle: int) -> None:
        _nft(self._ns(rule.isp), f"delete rule inet lab {rule.chain} handle {handle}\n")

    @contextlib.contextmanager
    def technique(self, *rules: Rule) -> Iterator[None]:
        """Apply extra rules for the body only (e.g. a QUIC drop, a rate policer)."""
        added: list[tuple[Rule, int]] = []
        try:
            for rule in rules:
                added.append((rule, self.add_rule(rule)))
            yield
        finally:
            for rule, handle in reversed(added):
                self.remove_rule(rule, handle)

    def nft(self, role: str, script: str) -> str:
        """Run an nft script inside a lab namespace (role or full name); its output."""
        return _nft(self._ns(role), script)

    # facts ---------------------------------------------------------------------------------

    def _resolvers(self) -> dict[str, dict[str, Any]]:
        ca = str(self.ca_file)
        plain_lies = ["dnsint"]
        resolvers: dict[str, dict[str, Any]] = {
            "isp": {
                u.network: {
                    "type": "udp",
                    "address": u.isp_address,
                    "port": 53,
                    "also": ["tcp"],
                    "behaviour": {
                        "clean": "honest",
                        "censor": "lies",
                        "dnsint": "lies",
                        "dead": "servfail (its upstream is down)",
                    }[u.network],
                }
                for u in UPLINKS
            }
        }
        for name, address, server_name in PROVIDERS:
            resolvers[name] = {"type": "udp", "address": address, "port": 53, "lies_on": plain_lies}
            resolvers[f"{name}-tcp"] = {
                "type": "tcp",
                "address": address,
                "port": 53,
                "lies_on": plain_lies,
            }
            for kind, port in (("dot", 853), ("doh", 443), ("doq", 853)):
                entry: dict[str, Any] = {
                    "type": kind,
                    "address": address,
                    "port": port,
                    "server_name": server_name,
                    "ca_file": ca,
                    "lies_on": [],
                }
                if kind == "doh":
                    entry["url"] = f"https://{server_name}{DOH_PATH}"
                resolvers[f"{name}-{kind}"] = entry
        resolvers["silent"] = {
            "type": "udp",
            "address": SILENT,
            "port": 53,
            "lies_on": plain_lies,
            "note": "runs no DNS: times out (udp) / refused (tcp) unless intercepted",
        }
        return resolvers

    def facts(self) -> dict[str, Any]:
        """Everything a test or a person needs, JSON-serialisable."""
        return {
            "prefix": self.prefix,
            "namespaces": self.namespaces,
            "vantage": self.vantage,
            "networks": self.networks,
            "resolvers": self.resolvers,
            "endpoints": self.endpoints,
            "ca_file": str(self.ca_file),
            "foreign_ca_file": str(self.foreign_ca_file),
            "private_root_file": str(self.private_root_file),
            "zone": self.zone,
            "isp_zone": self.isp_zone,
            "lies": self.lies,
            "stun_server": self.stun_server,
            "techniques": self.techniques,
            "rules": [
                {"isp": r.isp, "technique": r.technique, "chain": r.chain, "rule": r.text}
                for r in self.rules
            ],
        }

    # server processes ----------------------------------------------------------------------

    def _cert(self, *names: str, pki: Pki | None = None) -> dict[str, str]:
        """A certificate for `names` (chain and key files) from `pki`, the lab CA by default."""
        pki = pki or self.pki
        assert pki is not None
        certs = self.directory / ("certs" if pki is self.pki else "private-certs")
        certs.mkdir(exist_ok=True)
        chain, key = pki.cert_files(*names, directory=certs)
        return {"cert": str(chain), "key": str(key)}

    def _ca_files(self) -> dict[str, str]:
        """The lab CA's certificate and key, for servers that mint their own certificates."""
        assert self.pki is not None
        key = self.directory / "lab-ca.key.pem"
        if not key.exists():
            self.pki.ca.private_key_pem.write_to_path(str(key))
        return {"cert": str(self.ca_file), "key": str(key)}

    def _internet_spec(self) -> dict[str, Any]:
        listeners: list[dict[str, Any]] = []
        for _, address, server_name in PROVIDERS:
            listeners.append(
                {
                    "kind": "dns",
                    "address": address,
                    "transports": ["udp", "tcp", "dot", "doh", "doq"],
                    "zone": dict(ZONE),
                    "server_name": server_name,
                    "ca": self._ca_files(),
                }
            )
        private = {address: self.private_pki for address in PRIVATE_ROOT_HOSTS}
        for address, names in {**WEB_HOSTS, **PRIVATE_ROOT_HOSTS}.items():
            host = names[0]
            page = {"status": 200, "body": normal_page(host)}
            tls = self._cert(*names, pki=private.get(address))
            listeners.append(
                {"kind": "http", "address": address, "port": 443, "tls": tls}
                | page
                | {"objects": {LARGE_PATH: LARGE_SIZE}}
            )
            if address in HTTP_HOSTS:
                listeners.append({"kind": "http", "address": address, "port": 80} | page)
            if address in H3_HOSTS:
                listeners.append(
                    {"kind": "http3", "address": address, "port": 443, "tls": self._cert(*names)}
                    | page
                    | {"objects": {LARGE_PATH: LARGE_SIZE}}
                )
        for address in TELEGRAM_DCS:
            for port in (80, 443):
                listeners.append(
                    {
                        "kind": "http",
                        "address": address,
                        "port": port,
                        "status": DC_STATUS,
                        "body": "",
                    }
                )
        for address, port in TCP_LISTENERS:
            listeners.append({"kind": "tcp", "address": address, "port": port})
        listeners += self._stun_listeners()
        for address, mode in MTPROTO_DCS.items():
            listeners.append(
                {"kind": "mtproto", "address": address, "port": MTPROTO_PORT, "mode": mode}
            )
        return {"listeners": listeners}

    def _stun_listeners(self) -> list[dict[str, Any]]:
        """The relay and the public STUN look-alikes: one coturn (a real STUN server) on all
        three addresses, or the lab's own responder where `turnserver` is not installed
        (`Lab.stun_server` says which); the lossy relay is always the lab's own."""
        real = [STUN_RELAY, *STUN_PUBLIC.values()]
        lossy = {"kind": "stun", "address": STUN_LOSSY, "port": STUN_PORT, "drop_first": True}
        turnserver = shutil.which("turnserver")
        if turnserver is None:
            self.stun_server = "fake"
            return [{"kind": "stun", "address": address, "port": STUN_PORT} for address in real] + [
                lossy
            ]
        self.stun_server = "coturn"
        home = self.directory / "coturn"
        home.mkdir(exist_ok=True)
        coturn = {
            "kind": "coturn",
            "binary": turnserver,
            "addresses": real,
            "port": STUN_PORT,
            "directory": str(home),
        }
        return [coturn, lossy]

    def _isp_spec(self, u: Uplink) -> dict[str, Any]:
        resolver: dict[str, Any] = {
            "kind": "dns",
            "address": u.isp_address,
            "transports": ["udp", "tcp"],
            "zone": {**ZONE, **ISP_ZONE},
            "ca": self._ca_files(),
        }
        listeners: list[dict[str, Any]] = [resolver]
        if u.isp in ("isp-censor", "isp-dnsint"):
            resolver["lies"] = dict(LIES)
            listeners += [
                {
                    "kind": "http",
                    "address": BOGON,
                    "port": 80,
                    "status": 200,
                    "body": BLOCKPAGE_BODY,
                },
                {
                    "kind": "http",
                    "address": SINKHOLE,
                    "port": 80,
                    "status": 302,
                    "body": "",
                    "headers": {"Location": BLOCKPAGE_REDIRECT},
                    "hosts": {"blocked.lab": {"status": 200, "body": BLOCKPAGE_BODY}},
                },
            ]
        if u.isp == "isp-dead":
            resolver["zone"] = {}
            resolver["default_rcode"] = "SERVFAIL"
        if u.isp == "isp-censor":
            assert self.foreign_pki is not None
            foreign_key = self.directory / "foreign-ca.key.pem"
            self.foreign_pki.ca.private_key_pem.write_to_path(str(foreign_key))
            listeners += [
                {
                    "kind": "sni-filter",
                    "address": u.isp_address,
                    "port": SNI_FILTER_PORT,
                    "blocked": {
                        name: (self.residual_seconds if tech == "sni-reset-residual" else 0.0)
                        for name, tech in SNI_BLOCKLIST.items()
                    },
                    "residual_set": "inet lab residual",
                },
                {"kind": "tcp", "address": u.isp_address, "port": STALL_PORT},
                {
                    "kind": "tls-mitm",
                    "address": MITM_ADDRESS,
                    "port": 443,
                    "ca_cert": str(self.foreign_ca_file),
                    "ca_key": str(foreign_key),
                },
            ]
        return {"listeners": listeners}

    def _spawn_servers(self) -> None:
        specs = {"internet": self._internet_spec()}
        for u in UPLINKS:
            specs[u.isp] = self._isp_spec(u)
        for role, spec in specs.items():
            spec_file = self.directory / f"{role}.json"
            spec_file.write_text(json.dumps(spec, indent=2))
            self._servers.append(
                ServerProcess(self.namespaces[role], spec_file, self.directory / f"{role}.log")
            )

    # running things inside -----------------------------------------------------------------

    def _ns(self, ns: str) -> str:
        return _guard(self.namespaces.get(ns, ns))

    def run_in(self, ns: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside a lab namespace (role like "vantage" or a full name). The lab
        terminates it at shutdown if it still runs."""
        proc = subprocess.Popen(["ip", "netns", "exec", self._ns(ns), *argv], **popen)
        self._spawned.append(proc)
        return proc

    def check_in(self, ns: str, argv: Sequence[str], timeout: float = 30) -> str:
        """Run `argv` to completion inside a lab namespace; its stdout (raises on failure)."""
        return _run(["ip", "netns", "exec", self._ns(ns), *argv], timeout=timeout)

    # teardown ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.shutdown)
        for proc in self._spawned:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(3)
        for server in self._servers:
            server.stop()
        # Only what this run created: a clashing prefix must not cost another run its lab.
        for ns in reversed(self._built):
            _kill_namespace_processes(ns)
        # One `ip` for all (-force: on past a namespace that is already gone).
        deletes = "".join(f"netns delete {_guard(ns)}\n" for ns in reversed(self._built))
        _run(["ip", "-force", "-batch", "-"], stdin=deletes, check=False)
        self._built.clear()
