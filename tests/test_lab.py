"""The censorship lab reproduces each technique at the socket level.

Every socket is made in the lab's vantage namespace by the exporter's own seam (`Dialer`, or
`exporter.probes.network.namespace` for dnspython's DoH/DoQ, which open their own sockets), bound
to the source address (or interface) of one uplink. DNS messages are dnspython's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import dns.asyncquery
import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import h11
import pytest

from exporter.config.model import Network
from exporter.model.observation import ErrorKind
from exporter.probes.errors import classify
from exporter.probes.network import Dialer, namespace
from tests.lab import ttl
from tests.lab.middlebox import NeedMore, NotClientHello, client_hello_sni
from tests.lab.topology import (
    BLOCKPAGE_ADDRESS,
    BLOCKPAGE_TITLE,
    BOGON,
    DC_DROP,
    DC_RESET,
    FORGED_HOST,
    FORGED_REAL,
    FORGED_TARGET,
    GEO_HOST,
    GEO_ISP,
    GEO_PUBLIC,
    INJECTED_HOST,
    INJECTED_REAL,
    INJECTED_TARGET,
    MITM_TARGET,
    SINKHOLE,
    SNI_ADDRESS,
    STALL_ADDRESS,
    STALL_HOST,
    TECHNIQUES,
    WEB_HOSTS,
    ZONE,
    Lab,
    Rule,
    down,
    icmp_filter,
    lab_namespaces,
)

pytest_plugins = ("tests.lab.conftest_plugin",)

#: Seconds allowed to a case expected to time out (and to each step of a working one).
SHORT = 1.0
DNS_MESSAGE = "application/dns-message"
T = TypeVar("T")


# --- helpers ---------------------------------------------------------------------------------


def dialer(lab: Lab, network: str, *, by: str = "source") -> Dialer:
    """The exporter's dialer for one uplink, selected by source address or by interface."""
    net = lab.networks[network]
    if by == "source":
        return Dialer(
            Network(name=network, netns=lab.vantage, source_address=net["source_address"])
        )
    return Dialer(Network(name=network, netns=lab.vantage, interface=net["interface"]))


def query(name: str) -> dns.message.Message:
    return dns.message.make_query(name, dns.rdatatype.A)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(rr.address for rrset in reply.answer for rr in rrset if hasattr(rr, "address"))


async def udp_dns(d: Dialer, server: str, name: str) -> dns.message.Message:
    sock = d.udp_socket(socket.AF_INET)
    try:
        return await asyncio.to_thread(dns.query.udp, query(name), server, SHORT, sock=sock)
    finally:
        sock.close()


async def connect(d: Dialer, address: str, port: int) -> socket.socket:
    async with asyncio.timeout(SHORT):
        return await d.connect_tcp(address, port)


async def tcp_dns(d: Dialer, server: str, name: str) -> dns.message.Message:
    sock = await connect(d, server, 53)
    try:
        return await asyncio.to_thread(dns.query.tcp, query(name), server, SHORT, sock=sock)
    finally:
        sock.close()


async def dot_dns(d: Dialer, resolver: dict[str, Any], name: str) -> dns.message.Message:
    sock = await connect(d, resolver["address"], resolver["port"])
    ctx = ssl.create_default_context(cafile=resolver["ca_file"])
    ctx.set_alpn_protocols(["dot"])

    def run() -> dns.message.Message:
        with ctx.wrap_socket(
            sock, server_hostname=resolver["server_name"], do_handshake_on_connect=False
        ) as tls:
            tls.settimeout(SHORT)
            tls.do_handshake()
            tls.setblocking(False)
            return dns.query.tls(query(name), resolver["address"], SHORT, sock=tls)

    try:
        return await asyncio.to_thread(run)
    finally:
        sock.close()


async def in_vantage(lab: Lab, fn: Callable[[], T]) -> T:
    """Run blocking `fn` on a worker thread that is inside the vantage namespace."""

    def run() -> T:
        with namespace(lab.vantage):
            return fn()

    return await asyncio.to_thread(run)


async def doh_dns(d: Dialer, resolver: dict[str, Any], name: str) -> dns.message.Message:
    """A DoH POST (RFC 8484) over HTTP/1.1: the lab's DoH servers checked without the
    exporter's own client."""
    url = urllib.parse.urlsplit(resolver["url"])
    status, headers, body = await http_request(
        d,
        resolver["address"],
        resolver["port"],
        method="POST",
        target=url.path,
        body=query(name).to_wire(),
        headers=(("Content-Type", DNS_MESSAGE), ("Accept", DNS_MESSAGE)),
        server_name=url.hostname,
        cafile=resolver["ca_file"],
    )
    assert (status, headers.get("content-type")) == (200, DNS_MESSAGE)
    return dns.message.from_wire(body)


async def doq_dns(lab: Lab, network: str, resolver: dict[str, Any], name: str) -> Any:
    # dnspython's sync DoQ leaks its wake-up socketpair (ResourceWarning): run the async one
    # on a private event loop in the namespaced worker thread.
    source = lab.networks[network]["source_address"]
    return await in_vantage(
        lab,
        lambda: asyncio.run(
            dns.asyncquery.quic(
                query(name),
                resolver["address"],
                timeout=SHORT * 2,
                port=resolver["port"],
                source=source,
                server_hostname=resolver["server_name"],
                verify=resolver["ca_file"],
            )
        ),
    )


async def open_stream(
    d: Dialer,
    address: str,
    port: int,
    *,
    server_name: str | None = None,
    cafile: Path | str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection through the Dialer, with a verified TLS handshake if `server_name`."""
    sock = await connect(d, address, port)
    ctx = None
    if server_name is not None:
        ctx = ssl.create_default_context(cafile=None if cafile is None else str(cafile))
        ctx.set_alpn_protocols(["http/1.1"])
    try:
        async with asyncio.timeout(SHORT * 2):
            return await asyncio.open_connection(
                sock=sock, ssl=ctx, server_hostname=server_name if ctx else None
            )
    except BaseException:
        sock.close()
        raise


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


async def http_get(
    d: Dialer,
    address: str,
    port: int,
    *,
    host: str | None = None,
    server_name: str | None = None,
    cafile: Path | str | None = None,
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of `GET /`."""
    status, headers, body = await http_request(
        d, address, port, host=host, server_name=server_name, cafile=cafile
    )
    return status, headers, body.decode()


async def http_request(
    d: Dialer,
    address: str,
    port: int,
    *,
    method: str = "GET",
    target: str = "/",
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
    host: str | None = None,
    server_name: str | None = None,
    cafile: Path | str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one HTTP/1.1 exchange, framed and parsed by h11."""
    reader, writer = await open_stream(d, address, port, server_name=server_name, cafile=cafile)
    conn = h11.Connection(h11.CLIENT)
    status, reply_headers, reply = 0, {}, b""
    sent = [("Host", host or server_name or address), ("Connection", "close"), *headers]
    if body:
        sent.append(("Content-Length", str(len(body))))
    try:
        async with asyncio.timeout(SHORT * 2):
            request = h11.Request(method=method, target=target, headers=sent)
            writer.write(
                conn.send(request)
                + (conn.send(h11.Data(data=body)) if body else b"")
                + (conn.send(h11.EndOfMessage()) or b"")
            )
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    reply_headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    reply += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
    finally:
        await close(writer)
    return status, reply_headers, reply


async def tls_handshake(
    d: Dialer, address: str, port: int, server_name: str, cafile: Path | str | None
) -> dict[str, Any]:
    """Handshake (verifying against `cafile`, or the system roots when None) and return the
    peer certificate."""
    _reader, writer = await open_stream(d, address, port, server_name=server_name, cafile=cafile)
    try:
        cert = writer.get_extra_info("peercert")
        assert isinstance(cert, dict)
        return cert
    finally:
        await close(writer)


# --- the lab itself --------------------------------------------------------------------------


def test_namespaces_carry_the_run_prefix_and_nothing_touches_the_host(lab: Lab) -> None:
    assert lab.prefix.startswith("mxl-")
    assert sorted(lab_namespaces(lab.prefix)) == sorted(lab.namespaces.values())
    # No lab link appears in the root namespace (it is only read here, never changed).
    host_links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("vantage0", "inet0", "censor0", "dnsint0"):
        assert f" {name}@" not in host_links
        assert f" {name}:" not in host_links
    # Routers forward; the vantage point and the internet do not.
    for role, forwarding in (("isp-censor", "1"), ("vantage", "0"), ("internet", "0")):
        value = lab.check_in(role, ["cat", "/proc/sys/net/ipv4/ip_forward"]).strip()
        assert value == forwarding, role


def test_facts_are_plain_data(lab: Lab) -> None:
    facts = json.loads(json.dumps(lab.facts()))
    assert set(facts["networks"]) == {"clean", "censor", "dnsint", "dead"}
    for endpoint in facts["endpoints"].values():
        assert set(endpoint["expect"]) == set(facts["networks"])
        assert set(endpoint["expect"].values()) <= set(TECHNIQUES)
    assert facts["resolvers"]["google"] == {
        "type": "udp",
        "address": "8.8.8.8",
        "port": 53,
        "lies_on": ["dnsint"],
    }
    assert Path(facts["ca_file"]).is_file()
    assert Path(facts["foreign_ca_file"]).is_file()
    assert Path(facts["private_root_file"]).is_file()
    assert facts["endpoints"]["signal-cdsi"]["ca_file"] == facts["private_root_file"]


def test_down_removes_leftovers_and_their_processes(lab: Lab) -> None:
    leftover = f"{lab.prefix}leftover-"
    subprocess.run(["ip", "netns", "add", f"{leftover}x"], check=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", f"{leftover}x", "sleep", "60"])
    try:
        assert down(leftover) == [f"{leftover}x"]
        assert sleeper.wait(5) is not None
        assert lab_namespaces(leftover) == []
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


async def test_an_unselected_socket_has_no_route(lab: Lab) -> None:
    """The vantage main table has no default route: a network must pick its uplink."""
    with pytest.raises(OSError, match="unreachable") as info:
        await connect(Dialer(Network(name="none", netns=lab.vantage)), "93.184.216.34", 443)
    assert info.value.errno == errno.ENETUNREACH


@pytest.mark.parametrize("by", ["source", "interface"])
async def test_uplink_selection(lab: Lab, by: str) -> None:
    """Source address (policy rule `from`) and interface (SO_BINDTODEVICE, rule `oif`)
    select the same uplink: the IP-blocked DC is refused through `censor` only."""
    dc = lab.endpoints["telegram-dc"]
    status, _, _ = await http_get(dialer(lab, "clean", by=by), dc["address"], dc["port"])
    assert status == dc["status"]
    with pytest.raises(ConnectionRefusedError):
        await connect(dialer(lab, "censor", by=by), dc["address"], dc["port"])


# --- clean: everything as it really is -------------------------------------------------------


async def test_clean_plain_resolvers_tell_the_truth(lab: Lab) -> None:
    d = dialer(lab, "clean")
    isp = lab.resolvers["isp"]["clean"]["address"]
    for name in ("web.telegram.lab", "media.whatsapp.lab", "chat.signal.lab"):
        for reply in (
            await udp_dns(d, isp, name),
            await udp_dns(d, "8.8.8.8", name),
            await tcp_dns(d, "1.1.1.1", name),
        ):
            assert reply.rcode() == dns.rcode.NOERROR
            assert addresses(reply) == [ZONE[name]]


async def test_clean_encrypted_resolvers_tell_the_truth(lab: Lab) -> None:
    d = dialer(lab, "clean")
    name = "web.telegram.lab"
    replies = [
        await dot_dns(d, lab.resolvers["quad9-dot"], name),
        await doh_dns(d, lab.resolvers["google-doh"], name),
        await doq_dns(lab, "clean", lab.resolvers["cloudflare-doq"], name),
    ]
    assert [addresses(r) for r in replies] == [[ZONE[name]]] * 3


async def test_clean_https_endpoints_validate_and_serve(lab: Lab) -> None:
    d = dialer(lab, "clean")
    for name, endpoint in lab.endpoints.items():
        if endpoint["scheme"] != "https" or endpoint["expect"]["clean"] != "ok":
            continue
        host = endpoint["host"]
        cafile = endpoint.get("ca_file", lab.ca_file)  # the private root's server has its own
        status, _, body = await http_get(
            d, endpoint["address"], endpoint["port"], server_name=host, cafile=cafile
        )
        assert (status, f"<title>{host}</title>" in body) == (200, True), name


async def test_clean_plain_http_and_tcp_endpoints(lab: Lab) -> None:
    d = dialer(lab, "clean")
    for name in ("telegram-dc", "telegram-dc-80", "telegram-dc2"):
        e = lab.endpoints[name]
        assert (await http_get(d, e["address"], e["port"]))[0] == e["status"]
    e = lab.endpoints["messenger-web"]
    status, _, body = await http_get(d, e["address"], e["port"], host=e["host"])
    assert status == 200
    assert BLOCKPAGE_TITLE not in body
    chat = lab.endpoints["whatsapp-chat"]
    sock = await connect(d, chat["address"], chat["port"])
    sock.close()


async def test_telegram_dc_speaks_plain_http_on_443(lab: Lab) -> None:
    """A TLS client meets an HTTP server there, as with real Telegram DCs."""
    e = lab.endpoints["telegram-dc"]
    with pytest.raises(ssl.SSLError):
        await tls_handshake(dialer(lab, "clean"), e["address"], 443, "dc.telegram.lab", lab.ca_file)


# --- censor: lying ISP resolver, IP blocking, SNI filtering, blockpage, interception ---------


async def test_censor_isp_resolver_lies(lab: Lab) -> None:
    d = dialer(lab, "censor")
    isp = lab.resolvers["isp"]["censor"]["address"]
    bogon = await udp_dns(d, isp, "web.telegram.lab")
    assert addresses(bogon) == [BOGON] == [lab.endpoints["telegram-web"]["lie"]]
    assert addresses(await tcp_dns(d, isp, "media.whatsapp.lab")) == [SINKHOLE]
    assert (await udp_dns(d, isp, "chat.signal.lab")).rcode() == dns.rcode.NXDOMAIN
    # Names it does not censor resolve truthfully.
    assert addresses(await udp_dns(d, isp, "example.lab")) == [ZONE["example.lab"]]


async def test_censor_does_not_intercept_other_resolvers(lab: Lab) -> None:
    d = dialer(lab, "censor")
    assert addresses(await udp_dns(d, "8.8.8.8", "web.telegram.lab")) == [ZONE["web.telegram.lab"]]
    with pytest.raises(dns.exception.Timeout):
        await udp_dns(d, lab.resolvers["silent"]["address"], "web.telegram.lab")


async def test_censor_lie_addresses_host_blockpages(lab: Lab) -> None:
    """What a client following the lie gets: the Iranian blockpage, the Turkish redirect."""
    d = dialer(lab, "censor")
    status, _, body = await http_get(d, BOGON, 80, host="web.telegram.lab")
    assert status == 200
    assert f"<title>{BLOCKPAGE_TITLE}</title>" in body
    status, headers, _ = await http_get(d, SINKHOLE, 80, host="media.whatsapp.lab")
    assert (status, headers["location"]) == (302, "http://blocked.lab/")


async def test_censor_ip_block_with_reset_is_refused(lab: Lab) -> None:
    d = dialer(lab, "censor")
    for name in ("telegram-dc", "telegram-dc-80"):
        e = lab.endpoints[name]
        assert e["expect"]["censor"] == "ip-reset"
        with pytest.raises(ConnectionRefusedError) as info:
            await connect(d, e["address"], e["port"])
        assert classify(info.value) is ErrorKind.REFUSED


async def test_censor_ip_block_with_drop_times_out(lab: Lab) -> None:
    e = lab.endpoints["telegram-dc2"]
    assert e["expect"]["censor"] == "ip-drop"
    with pytest.raises(TimeoutError):
        await connect(dialer(lab, "censor"), e["address"], e["port"])


async def test_censor_stalling_proxy_takes_the_connection_and_never_answers(lab: Lab) -> None:
    """No rule on a name: every TCP 443 connection to the address lands on a listener of the
    ISP that accepts and stays silent, so the TLS handshake times out."""
    e = lab.endpoints["telegram-core"]
    assert (e["host"], e["address"], e["expect"]["censor"]) == (
        STALL_HOST,
        STALL_ADDRESS,
        "tcp-proxy-stall",
    )
    d = dialer(lab, "censor")
    (await connect(d, e["address"], e["port"])).close()
    with pytest.raises(TimeoutError):
        await tls_handshake(d, e["address"], e["port"], e["host"], lab.ca_file)
    cert = await tls_handshake(dialer(lab, "clean"), e["address"], 443, e["host"], lab.ca_file)
    assert ("DNS", e["host"]) in cert["subjectAltName"]


async def test_censor_sni_filter_resets_the_blocked_name_only(lab: Lab) -> None:
    e = lab.endpoints["whatsapp-web"]
    d = dialer(lab, "censor")
    with pytest.raises(ConnectionResetError) as info:
        await tls_handshake(d, e["address"], e["port"], e["host"], lab.ca_file)
    assert classify(info.value) is ErrorKind.RESET
    # Same address, control name: through the filter to the real server (no residual here).
    cert = await tls_handshake(d, e["address"], e["port"], e["control_sni"], lab.ca_file)
    assert ("DNS", e["control_sni"]) in cert["subjectAltName"]
    status, _, _ = await http_get(
        d, e["address"], e["port"], server_name=e["control_sni"], cafile=lab.ca_file
    )
    assert status == 200
    # The blocked name passes on an uncensored network.
    cert = await tls_handshake(dialer(lab, "clean"), e["address"], 443, e["host"], lab.ca_file)
    assert ("DNS", e["host"]) in cert["subjectAltName"]


async def test_censor_sni_filter_residual_blocking(lab: Lab) -> None:
    e = lab.endpoints["signal-cdn"]
    d = dialer(lab, "censor")
    # Before any hit the control name passes.
    await tls_handshake(d, e["address"], e["port"], e["control_sni"], lab.ca_file)
    with pytest.raises(ConnectionResetError):
        await tls_handshake(d, e["address"], e["port"], e["host"], lab.ca_file)
    hit = time.monotonic()
    # Now even the control name is reset at the SYN: the (client, server, port) is banned.
    with pytest.raises(ConnectionRefusedError):
        await connect(d, e["address"], e["port"])
    # ... until the residual window ends.
    deadline = hit + lab.residual_seconds + 2
    while True:
        try:
            await tls_handshake(d, e["address"], e["port"], e["control_sni"], lab.ca_file)
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "residual block never expired"
            await asyncio.sleep(0.2)
    assert time.monotonic() - hit >= lab.residual_seconds - 0.5


async def test_censor_blockpage_replaces_http(lab: Lab) -> None:
    e = lab.endpoints["messenger-web"]
    assert e["expect"]["censor"] == "blockpage"
    d = dialer(lab, "censor")
    status, _, body = await http_get(d, e["address"], e["port"], host=e["host"])
    assert status == 200
    assert f"<title>{BLOCKPAGE_TITLE}</title>" in body
    assert "blocked by order of" in body
    # HTTPS to the same address is untouched.
    tls = lab.endpoints["messenger-web-tls"]
    status, _, body = await http_get(
        d, tls["address"], tls["port"], server_name=tls["host"], cafile=lab.ca_file
    )
    assert status == 200
    assert BLOCKPAGE_TITLE not in body


async def test_censor_tls_interception_presents_a_foreign_ca(lab: Lab) -> None:
    e = lab.endpoints["messenger-api"]
    d = dialer(lab, "censor")
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        await tls_handshake(d, e["address"], e["port"], e["host"], lab.ca_file)
    assert classify(info.value) is ErrorKind.CERT_UNKNOWN_AUTHORITY
    # Trusting the interceptor's CA shows what it does: a certificate minted for the name
    # asked, and the real server's page relayed behind it.
    cert = await tls_handshake(d, e["address"], e["port"], e["host"], lab.foreign_ca_file)
    assert ("DNS", e["host"]) in cert["subjectAltName"]
    status, _, body = await http_get(
        d, e["address"], e["port"], server_name=e["host"], cafile=lab.foreign_ca_file
    )
    assert status == 200
    assert f"<title>{e['host']}</title>" in body
    # Clean network: the real certificate, from the lab CA.
    clean = await tls_handshake(dialer(lab, "clean"), e["address"], 443, e["host"], lab.ca_file)
    assert clean["issuer"] != cert["issuer"]


# --- dnsint: transparent DNS interception ----------------------------------------------------


async def test_dnsint_intercepts_every_plain_resolver(lab: Lab) -> None:
    d = dialer(lab, "dnsint")
    silent = lab.resolvers["silent"]["address"]
    for server in ("8.8.8.8", "9.9.9.9", silent):
        assert addresses(await udp_dns(d, server, "web.telegram.lab")) == [BOGON], server
    assert addresses(await tcp_dns(d, "1.1.1.1", "media.whatsapp.lab")) == [SINKHOLE]
    assert (await tcp_dns(d, silent, "chat.signal.lab")).rcode() == dns.rcode.NXDOMAIN
    # The answers look as if they came from the address asked.
    reply = await udp_dns(d, silent, "example.lab")
    assert addresses(reply) == [ZONE["example.lab"]]


async def test_dnsint_leaves_encrypted_dns_alone(lab: Lab) -> None:
    d = dialer(lab, "dnsint")
    name = "web.telegram.lab"
    replies = [
        await dot_dns(d, lab.resolvers["google-dot"], name),
        await doh_dns(d, lab.resolvers["cloudflare-doh"], name),
        await doq_dns(lab, "dnsint", lab.resolvers["quad9-doq"], name),
    ]
    assert [addresses(r) for r in replies] == [[ZONE[name]]] * 3


async def test_dnsint_does_not_block_by_ip(lab: Lab) -> None:
    d = dialer(lab, "dnsint")
    e = lab.endpoints["telegram-dc"]
    assert (await http_get(d, e["address"], e["port"]))[0] == e["status"]


# --- dead: nothing beyond the ISP ------------------------------------------------------------


async def test_dead_uplink_times_out(lab: Lab) -> None:
    d = dialer(lab, "dead")
    canary = lab.endpoints["canary"]
    with pytest.raises(TimeoutError):
        await connect(d, canary["address"], canary["port"])
    with pytest.raises(dns.exception.Timeout):
        await udp_dns(d, "8.8.8.8", "example.lab")


async def test_dead_isp_resolver_fails_to_recurse(lab: Lab) -> None:
    isp = lab.resolvers["isp"]["dead"]["address"]
    reply = await udp_dns(dialer(lab, "dead"), isp, "example.lab")
    assert reply.rcode() == dns.rcode.SERVFAIL


# --- outage: not censorship ------------------------------------------------------------------


async def test_outage_is_refused_on_every_live_network(lab: Lab) -> None:
    e = lab.endpoints["signal-storage"]
    for network in ("clean", "censor", "dnsint"):
        assert e["expect"][network] == "outage"
        with pytest.raises(ConnectionRefusedError):
            await connect(dialer(lab, network), e["address"], e["port"])
    assert addresses(await udp_dns(dialer(lab, "clean"), "8.8.8.8", e["host"])) == [e["address"]]


async def test_silent_resolver_runs_no_dns(lab: Lab) -> None:
    d = dialer(lab, "clean")
    silent = lab.resolvers["silent"]["address"]
    with pytest.raises(dns.exception.Timeout):
        await udp_dns(d, silent, "example.lab")
    with pytest.raises(ConnectionRefusedError):
        await connect(d, silent, 53)


# --- a private root, geo-DNS, forged and injected answers ------------------------------------


async def test_private_root_server_verifies_only_with_its_root(lab: Lab) -> None:
    """cdsi.signal.lab chains to the lab's private root, as Signal's servers chain to Signal's
    own CA: unknown authority (verify code 20) to the system roots and to the lab CA, valid
    once the private root is trusted. Not interfered with anywhere."""
    e = lab.endpoints["signal-cdsi"]
    assert set(e["expect"].values()) == {"ok", "unreachable"}
    for network in ("clean", "censor", "dnsint"):
        d = dialer(lab, network)
        cert = await tls_handshake(d, e["address"], e["port"], e["host"], lab.private_root_file)
        assert ("DNS", e["host"]) in cert["subjectAltName"]
        for cafile in (None, lab.ca_file):
            with pytest.raises(ssl.SSLCertVerificationError) as info:
                await tls_handshake(d, e["address"], e["port"], e["host"], cafile)
            assert info.value.verify_code == 20, (network, cafile)
            assert classify(info.value) is ErrorKind.CERT_UNKNOWN_AUTHORITY
    status, _, body = await http_get(
        dialer(lab, "clean"),
        e["address"],
        e["port"],
        server_name=e["host"],
        cafile=lab.private_root_file,
    )
    assert (status, f"<title>{e['host']}</title>" in body) == (200, True)
    assert addresses(await udp_dns(dialer(lab, "clean"), "8.8.8.8", e["host"])) == [e["address"]]


async def test_geo_dns_isp_and_public_resolvers_answer_different_real_sites(lab: Lab) -> None:
    e = lab.endpoints["messenger-geo"]
    assert (e["host"], e["address"], e["isp_address"]) == (GEO_HOST, GEO_PUBLIC, GEO_ISP)
    assert GEO_PUBLIC.rsplit(".", 1)[0] != GEO_ISP.rsplit(".", 1)[0]  # different /24s
    clean = dialer(lab, "clean")
    # Every ISP resolver answers its site ...
    assert addresses(await udp_dns(clean, lab.resolvers["isp"]["clean"]["address"], GEO_HOST)) == [
        GEO_ISP
    ]
    assert addresses(await tcp_dns(clean, lab.resolvers["isp"]["clean"]["address"], GEO_HOST)) == [
        GEO_ISP
    ]
    censor_isp = lab.resolvers["isp"]["censor"]["address"]
    assert addresses(await udp_dns(dialer(lab, "censor"), censor_isp, GEO_HOST)) == [GEO_ISP]
    # ... (on dnsint even a query to 8.8.8.8 reaches the ISP's resolver) ...
    assert addresses(await udp_dns(dialer(lab, "dnsint"), "8.8.8.8", GEO_HOST)) == [GEO_ISP]
    # ... the public resolvers the other one, over every transport.
    assert addresses(await udp_dns(clean, "8.8.8.8", GEO_HOST)) == [GEO_PUBLIC]
    assert addresses(await tcp_dns(clean, "1.1.1.1", GEO_HOST)) == [GEO_PUBLIC]
    for network in ("clean", "dnsint"):
        reply = await doh_dns(dialer(lab, network), lab.resolvers["google-doh"], GEO_HOST)
        assert addresses(reply) == [GEO_PUBLIC], network
    assert addresses(await dot_dns(clean, lab.resolvers["quad9-dot"], GEO_HOST)) == [GEO_PUBLIC]
    # Both sites serve the name with a valid lab-CA certificate, on every live network.
    for network in ("clean", "censor", "dnsint"):
        for site in (GEO_PUBLIC, GEO_ISP):
            cert = await tls_handshake(dialer(lab, network), site, 443, GEO_HOST, lab.ca_file)
            assert ("DNS", GEO_HOST) in cert["subjectAltName"], (network, site)
    status, _, body = await http_get(clean, GEO_ISP, 443, server_name=GEO_HOST, cafile=lab.ca_file)
    assert (status, f"<title>{GEO_HOST}</title>" in body) == (200, True)


async def test_forged_answer_points_at_a_server_for_another_name(lab: Lab) -> None:
    e = lab.endpoints["telegram-desktop"]
    assert (e["host"], e["address"], e["lie"]) == (FORGED_HOST, FORGED_REAL, FORGED_TARGET)
    assert e["expect"]["censor"] == e["expect"]["dnsint"] == "dns-forged"
    censor_isp = lab.resolvers["isp"]["censor"]["address"]
    assert addresses(await udp_dns(dialer(lab, "censor"), censor_isp, FORGED_HOST)) == [
        FORGED_TARGET
    ]
    assert addresses(await udp_dns(dialer(lab, "dnsint"), "8.8.8.8", FORGED_HOST)) == [
        FORGED_TARGET
    ]
    # The truth: from 8.8.8.8 on censor, DoH on dnsint, the clean ISP.
    assert addresses(await udp_dns(dialer(lab, "censor"), "8.8.8.8", FORGED_HOST)) == [FORGED_REAL]
    reply = await doh_dns(dialer(lab, "dnsint"), lab.resolvers["google-doh"], FORGED_HOST)
    assert addresses(reply) == [FORGED_REAL]
    clean_isp = lab.resolvers["isp"]["clean"]["address"]
    assert addresses(await udp_dns(dialer(lab, "clean"), clean_isp, FORGED_HOST)) == [FORGED_REAL]
    # The forged address runs a real TLS server, but for another name: a hostname mismatch.
    assert FORGED_HOST not in WEB_HOSTS[FORGED_TARGET]
    for network in ("censor", "dnsint"):
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await tls_handshake(dialer(lab, network), FORGED_TARGET, 443, FORGED_HOST, lab.ca_file)
        assert info.value.verify_code == 62, network  # X509_V_ERR_HOSTNAME_MISMATCH
        assert classify(info.value) is ErrorKind.CERT_HOSTNAME
    cert = await tls_handshake(dialer(lab, "censor"), FORGED_REAL, 443, FORGED_HOST, lab.ca_file)
    assert ("DNS", FORGED_HOST) in cert["subjectAltName"]


async def test_injected_answer_is_a_foreign_address_that_does_not_serve_the_name(
    lab: Lab,
) -> None:
    e = lab.endpoints["whatsapp-updates"]
    assert (e["host"], e["address"], e["lie"]) == (INJECTED_HOST, INJECTED_REAL, INJECTED_TARGET)
    assert e["expect"]["dnsint"] == "dns-foreign"
    d = dialer(lab, "dnsint")
    silent = lab.resolvers["silent"]["address"]
    for server in ("8.8.8.8", "1.1.1.1", silent):
        assert addresses(await udp_dns(d, server, INJECTED_HOST)) == [INJECTED_TARGET], server
    assert addresses(await tcp_dns(d, "9.9.9.9", INJECTED_HOST)) == [INJECTED_TARGET]
    censor_isp = lab.resolvers["isp"]["censor"]["address"]
    assert addresses(await udp_dns(dialer(lab, "censor"), censor_isp, INJECTED_HOST)) == [
        INJECTED_TARGET
    ]
    assert addresses(await doh_dns(d, lab.resolvers["google-doh"], INJECTED_HOST)) == [
        INJECTED_REAL
    ]
    assert addresses(await udp_dns(dialer(lab, "clean"), "8.8.8.8", INJECTED_HOST)) == [
        INJECTED_REAL
    ]
    # Nothing serves the name at the injected address: refused on every live network.
    for network in ("clean", "censor", "dnsint"):
        with pytest.raises(ConnectionRefusedError):
            await connect(dialer(lab, network), INJECTED_TARGET, 443)
    cert = await tls_handshake(d, INJECTED_REAL, 443, INJECTED_HOST, lab.ca_file)
    assert ("DNS", INJECTED_HOST) in cert["subjectAltName"]


# --- techniques to come: rules at run time, a cut uplink -----------------------------------


async def test_a_technique_is_rules_added_at_run_time(lab: Lab) -> None:
    canary = lab.endpoints["canary"]
    d = dialer(lab, "clean")
    reset = Rule(
        "isp-clean",
        "test-reset",
        "forward",
        f"ip daddr {canary['address']} tcp dport {canary['port']} reject with tcp reset",
    )
    # What the next issues need is accepted by this kernel: QUIC drop, rate policing.
    quic_drop = Rule("isp-clean", "quic-drop", "forward", "udp dport 443 drop")
    police = Rule(
        "isp-clean", "police", "forward", "limit rate over 100/second burst 10 packets drop"
    )
    with lab.technique(reset, quic_drop, police):
        with pytest.raises(ConnectionRefusedError):
            await connect(d, canary["address"], canary["port"])
        assert "limit rate over 100/second" in lab.nft("isp-clean", "list chain inet lab forward")
    (await connect(d, canary["address"], canary["port"])).close()
    assert "limit rate" not in lab.nft("isp-clean", "list chain inet lab forward")


async def test_uplink_cut_mid_test_and_restored(lab: Lab) -> None:
    canary = lab.endpoints["canary"]
    d = dialer(lab, "clean")
    lab.set_internet_link("clean", up=False)
    try:
        with pytest.raises(TimeoutError):
            await connect(d, canary["address"], canary["port"])
    finally:
        lab.set_internet_link("clean", up=True)
    (await connect(d, canary["address"], canary["port"])).close()


# --- the SNI parser --------------------------------------------------------------------------


def client_hello(server_name: str) -> bytes:
    """The real first flight of Python's TLS client (OpenSSL), via memory BIOs."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_sni_parser_reads_a_real_client_hello() -> None:
    hello = client_hello("web.whatsapp.lab")
    assert client_hello_sni(hello) == "web.whatsapp.lab"
    for cut in (3, 10, len(hello) - 1):
        with pytest.raises(NeedMore):
            client_hello_sni(hello[:cut])
    with pytest.raises(NotClientHello):
        client_hello_sni(b"GET / HTTP/1.1\r\n\r\n")


def test_sni_parser_without_sni() -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    assert client_hello_sni(outgoing.read()) is None


# --- hops: TTL-limited exchanges find the interfering hop ------------------------------------
#
# Each uplink is vantage -> ISP (hop 1) -> transit-1 (hop 2) -> transit-2 (hop 3) -> the
# internet namespace, where a service address answers at TTL 4. Plain sockets with IP_TTL and
# IP_RECVERR (tests.lab.ttl), selected by source address, in the vantage namespace.

CANARY = "93.184.216.34"
#: The censor's transparent proxies on hop 1 (DNAT or redirect to a local socket of the ISP).
PROXIED = {
    "blockpage": (BLOCKPAGE_ADDRESS, 80),
    "tls-mitm": (MITM_TARGET, 443),
    "sni-reset": (SNI_ADDRESS, 443),
    "tcp-proxy-stall": (STALL_ADDRESS, 443),
}
HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: edge.messenger.lab\r\nConnection: close\r\n\r\n"


def source(lab: Lab, network: str) -> str:
    return str(lab.networks[network]["source_address"])


def expired(lab: Lab, network: str) -> list[tuple[str, str | None]]:
    """What a packet gets at TTL 1, 2, 3: time-exceeded from each router of the uplink."""
    return [("expired", router) for router in lab.networks[network]["routers"]]


def udp_trace(lab: Lab, network: str, address: str, **options: Any) -> list[ttl.Step]:
    return ttl.trace(lab.vantage, source(lab, network), address, **options)


def syn_steps(lab: Lab, network: str, address: str, port: int, **options: Any) -> list[ttl.Step]:
    return ttl.syn(lab.vantage, source(lab, network), address, port, **options)


def reaches_at_4(lab: Lab, network: str, address: str) -> None:
    """The UDP trace: time-exceeded from hops 1-3, port-unreachable from `address` itself from
    TTL 4 on (its distance is 4)."""
    steps = udp_trace(lab, network, address)
    assert [s.short for s in steps] == expired(lab, network) + [("reached", address)] * 3
    for step in steps[:3]:
        assert [(i.origin, i.type, i.code) for i in step.queued] == [(2, 11, 0)]
    assert [(i.origin, i.type, i.code) for i in steps[3].queued] == [(2, 3, 3)]


def test_every_uplink_but_dead_has_two_transit_routers(lab: Lab) -> None:
    for network, index in (("clean", 1), ("censor", 2), ("dnsint", 3), ("dead", 4)):
        net = lab.networks[network]
        assert net["routers"] == [f"100.64.{index}.1", f"10.{index}.1.2", f"10.{index}.2.2"]
        assert net["distance"] == 4
        assert net["transit_namespaces"] == [
            lab.namespaces[f"transit-{network}-1"],
            lab.namespaces[f"transit-{network}-2"],
        ]
        for role in (f"transit-{network}-1", f"transit-{network}-2"):
            assert lab.check_in(role, ["cat", "/proc/sys/net/ipv4/ip_forward"]).strip() == "1"
            assert lab.check_in(role, ["sysctl", "-n", "net.ipv4.icmp_ratemask"]).strip() == "0"
    # The dead uplink stays dead: nothing beyond its ISP answers, not even its transit
    # routers (the ISP's blackhole route is looked up before the TTL is checked).
    steps = udp_trace(lab, "dead", CANARY, ttls=(1, 2, 4), wait=0.3)
    assert [s.kind for s in steps] == [ttl.Kind.SILENCE] * 3


@pytest.mark.parametrize("network", ["clean", "censor", "dnsint"])
def test_udp_trace_finds_the_routers_and_the_destination_at_ttl_4(lab: Lab, network: str) -> None:
    reaches_at_4(lab, network, CANARY)


def test_transit_routers_open_no_path_between_isps(lab: Lab) -> None:
    """The censor's resolver (100.64.2.1) is hop 1 of `censor` and unreachable through
    `clean`: clean's transit-1 blackholes the customers' space (100.64.0.0/10) it does not
    route back to its own ISP, and the internet namespace does not forward."""
    censor_isp = lab.resolvers["isp"]["censor"]["address"]
    [own] = udp_trace(lab, "censor", censor_isp, ttls=[1])
    assert own.short == ("reached", censor_isp)
    steps = udp_trace(lab, "clean", censor_isp, wait=0.3)
    assert [s.short for s in steps] == expired(lab, "clean")[:1] + [("silence", None)] * 5


def test_ttl_syn_to_the_reset_address_is_refused_from_hop_2(lab: Lab) -> None:
    """The reset comes back to a SYN that expires at hop 2: the censor is hop 1. UDP to the
    same address passes it (the rule resets TCP only) and reaches the destination."""
    steps = syn_steps(lab, "censor", DC_RESET, 443)
    assert [s.short for s in steps] == expired(lab, "censor")[:1] + [("refused", None)] * 3
    assert steps[0].error == errno.EHOSTUNREACH
    assert [(i.origin, i.type) for i in steps[0].queued] == [(2, 11)]
    for step in steps[1:]:
        assert (step.error, step.queued) == (errno.ECONNREFUSED, ())
    reaches_at_4(lab, "censor", DC_RESET)


def test_ttl_syn_to_the_dropped_address_is_silent_from_hop_2(lab: Lab) -> None:
    steps = syn_steps(lab, "censor", DC_DROP, 443)
    assert [s.short for s in steps] == expired(lab, "censor")[:1] + [("silence", None)] * 3
    reaches_at_4(lab, "censor", DC_DROP)


@pytest.mark.parametrize("technique", list(PROXIED))
def test_ttl_syn_to_a_transparent_proxy_connects_at_hop_1(lab: Lab, technique: str) -> None:
    """A SYN-ACK to a SYN sent with TTL 1: a listener on the ISP router, not the destination
    (which the UDP trace finds at TTL 4)."""
    address, port = PROXIED[technique]
    assert [s.short for s in syn_steps(lab, "censor", address, port)] == [("connected", None)] * 4
    reaches_at_4(lab, "censor", address)


@pytest.mark.parametrize(("address", "port"), [(DC_RESET, 443), (DC_DROP, 443), *PROXIED.values()])
def test_ttl_through_clean_nothing_answers_before_the_destination(
    lab: Lab, address: str, port: int
) -> None:
    steps = syn_steps(lab, "clean", address, port)
    assert [s.short for s in steps] == [*expired(lab, "clean"), ("connected", None)]


def test_ttl_client_hello_is_reset_at_hop_1_by_the_sni_filter(lab: Lab) -> None:
    """A ClientHello with the blocked name, sent with TTL 1 on a connection made at full TTL,
    is reset: the SNI filter sits on hop 1. To a real HTTPS server 4 hops away the same
    ClientHello expires at hops 1-3 (EHOSTUNREACH after the first retransmission; nothing on
    the error queue for an established connection) and gets the ServerHello at TTL 4."""
    e = lab.endpoints["whatsapp-web"]
    blocked = ttl.exchange(
        lab.vantage, source(lab, "censor"), e["address"], 443, client_hello(e["host"]), ttls=[1]
    )
    assert [s.short for s in blocked] == [("reset", None)]
    for network, address, name in (
        ("censor", CANARY, "example.lab"),
        ("clean", e["address"], e["host"]),
    ):
        steps = ttl.exchange(lab.vantage, source(lab, network), address, 443, client_hello(name))
        assert [s.kind for s in steps] == [ttl.Kind.EXPIRED] * 3 + [ttl.Kind.ANSWER], network
        assert {(s.error, s.queued) for s in steps[:3]} == {(errno.EHOSTUNREACH, ())}
        hello = steps[3].data
        assert (hello[0], hello[5]) == (0x16, 0x02), network  # handshake record: ServerHello


def test_ttl_http_request_gets_the_blockpage_from_hop_1(lab: Lab) -> None:
    [censor] = ttl.exchange(
        lab.vantage, source(lab, "censor"), BLOCKPAGE_ADDRESS, 80, HTTP_REQUEST, ttls=[1]
    )
    assert censor.kind is ttl.Kind.ANSWER
    assert censor.data.startswith(b"HTTP/1.1 200")
    assert f"<title>{BLOCKPAGE_TITLE}</title>".encode() in censor.data
    steps = ttl.exchange(lab.vantage, source(lab, "clean"), BLOCKPAGE_ADDRESS, 80, HTTP_REQUEST)
    assert [s.kind for s in steps] == [ttl.Kind.EXPIRED] * 3 + [ttl.Kind.ANSWER]
    assert b"<title>edge.messenger.lab</title>" in steps[3].data


def test_ttl_stalling_proxy_takes_the_client_hello_at_hop_1_and_says_nothing(lab: Lab) -> None:
    steps = ttl.exchange(
        lab.vantage, source(lab, "censor"), STALL_ADDRESS, 443, client_hello(STALL_HOST)
    )
    assert [s.kind for s in steps] == [ttl.Kind.SILENCE] * 4
    assert all(s.queued == () for s in steps)


def test_a_drop_of_every_protocol_looks_like_the_end_of_the_path(lab: Lab) -> None:
    """The case one uplink cannot localise: when the censor drops every protocol to the
    address, the trace ends where the SYNs do, as if the path ended at hop 1."""
    drop_all = Rule("isp-censor", "drop-all", "forward", f"ip daddr {DC_DROP} drop")
    silent = expired(lab, "censor")[:1] + [("silence", None)] * 3
    with lab.technique(drop_all):
        trace = udp_trace(lab, "censor", DC_DROP, ttls=range(1, 5), wait=0.3)
        assert [s.short for s in trace] == silent
        assert [s.short for s in syn_steps(lab, "censor", DC_DROP, 443, wait=0.3)] == silent
    reaches_at_4(lab, "censor", DC_DROP)


def test_icmp_filter_leaves_a_gap_in_the_trace(lab: Lab) -> None:
    rule = icmp_filter("transit-censor-1")
    assert (rule.chain, rule.technique) == ("output", "icmp-filter")
    with lab.technique(rule):
        assert "icmp type time-exceeded drop" in lab.nft(
            "transit-censor-1", "list chain inet lab output"
        )
        steps = udp_trace(lab, "censor", CANARY, wait=0.3)
        routers = expired(lab, "censor")
        assert [s.short for s in steps] == [
            routers[0],
            ("silence", None),
            routers[2],
            *[("reached", CANARY)] * 3,
        ]
        # A SYN expiring there is silent too; the other uplinks are untouched.
        syns = syn_steps(lab, "censor", CANARY, 443, wait=0.3)
        assert [s.short for s in syns] == [
            routers[0],
            ("silence", None),
            routers[2],
            ("connected", None),
        ]
        reaches_at_4(lab, "clean", CANARY)
    reaches_at_4(lab, "censor", CANARY)


def test_a_cut_uplink_is_silent_from_hop_1_and_comes_back_with_its_hops(lab: Lab) -> None:
    lab.set_internet_link("clean", up=False)
    try:
        steps = udp_trace(lab, "clean", CANARY, ttls=(1, 2, 4), wait=0.3)
        assert [s.kind for s in steps] == [ttl.Kind.SILENCE] * 3
    finally:
        lab.set_internet_link("clean", up=True)
    reaches_at_4(lab, "clean", CANARY)


def test_an_extra_vantage_point_sees_the_same_hops(lab: Lab) -> None:
    """`add_vantage`: hop 1 is the ISP's address on the vantage's own veth; the transit
    routers and the internet route its address back through the chain."""
    vp = lab.add_vantage("tracer", "censor")
    try:
        steps = ttl.trace(vp["netns"], vp["address"], CANARY)
        assert [s.short for s in steps] == expired(lab, "censor") + [("reached", CANARY)] * 3
        syns = ttl.syn(vp["netns"], vp["address"], DC_RESET, 443)
        assert [s.short for s in syns] == expired(lab, "censor")[:1] + [("refused", None)] * 3
        [full] = ttl.syn(vp["netns"], vp["address"], CANARY, 443, ttls=[64])
        assert full.kind is ttl.Kind.CONNECTED
        # ... and the internet reaches it (a central Prometheus scraping it): from the
        # internet's own address on its link to transit-2, routed back through the chain.
        with namespace(vp["netns"]):
            server = socket.create_server((vp["address"], 0))
        with namespace(lab.namespaces["internet"]):
            client = socket.socket()
        with server, client:
            client.settimeout(SHORT)
            client.connect(server.getsockname())
            assert client.getsockname()[0] == "10.2.3.2"
    finally:
        lab.remove_vantage("tracer")
