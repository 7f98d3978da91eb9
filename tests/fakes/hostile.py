"""Hostile peers on loopback: the broken and malicious servers an exporter in a censored
network meets by design (issue 8, docs/reliability.md#hostile-peers).

- `HostileDns`: a UDP DNS server on 127.0.0.1 answering every query the same hostile way
  (`DnsAttack`). Well-formed replies are built with dnspython; where malformation is the
  point, the bytes are made by hand on purpose (a header that lies, a message cut short, a
  compression pointer to itself), since no library writes those.
- TCP behaviours for `tests.fakes.peers.Peer` that peers.py does not have yet: a redirect
  loop, a gzip bomb, a peer that accepts and never reads. The other hostile HTTP/TLS peers
  (garbage, endless headers, endless body, one-byte drip) are peers.py's own.

Nothing here ever leaves 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import gzip
import ipaddress
import struct
from typing import Any, cast

import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import h11

from tests.fakes.peers import Behaviour, PeerConnection


class DnsAttack(enum.StrEnum):
    """How a `HostileDns` answers."""

    #: A reply header (right ID, QR set) saying one answer follows, then 7 bytes of noise.
    MALFORMED = "malformed"
    #: A valid reply cut in the middle of its answer record (no TC bit: the bytes just end).
    TRUNCATED = "truncated"
    #: A valid reply to a different query ID (late duplicate, off-path injection attempt).
    MISMATCHED_ID = "mismatched_id"
    #: The largest reply a DNS message can carry: 4,000 A records, 64 KB in one datagram.
    #: (10,000 records cannot fit: a DNS message is at most 65,535 bytes, an A record with
    #: a compressed name 16, so 4,095 at most; `COUNT_LIE` claims 10,000 instead.)
    HUGE = "huge"
    #: The header claims 10,000 answers; 4,000 follow.
    COUNT_LIE = "count_lie"
    #: The answer's owner name is a compression pointer to itself.
    COMPRESSION_LOOP = "compression_loop"


#: Records of a `HUGE` reply: 127.1.0.0 and up, where nothing listens (connects are refused).
HUGE_RECORDS = 4000
#: Size of a `HUGE` reply to a query for `svc.test` with EDNS, bytes.
HUGE_BYTES = 64037
COUNT_CLAIMED = 10_000


def _reply(query: dns.message.Message, addresses: list[str]) -> dns.message.Message:
    response = dns.message.make_response(query)
    question = query.question[0]
    rrset = dns.rrset.from_text_list(
        question.name, 60, dns.rdataclass.IN, dns.rdatatype.A, addresses
    )
    response.answer.append(rrset)
    return response


def _huge_addresses() -> list[str]:
    base = int(ipaddress.IPv4Address("127.1.0.0"))
    return [str(ipaddress.IPv4Address(base + i)) for i in range(HUGE_RECORDS)]


def hostile_reply(attack: DnsAttack, wire: bytes) -> bytes:
    """The hostile reply to the query `wire`.

    The 64 KB replies take dnspython ~0.3 s to build, which would stall every other fake in
    the test's event loop: they are built once per question and given each query's ID."""
    query = dns.message.from_wire(wire)
    if attack in (DnsAttack.HUGE, DnsAttack.COUNT_LIE):
        question = query.question[0]
        template = _big_reply(attack, question.name.to_text(), question.rdtype)
        return wire[:2] + template[2:]  # the ID is the first 2 bytes of a DNS header
    return _reply_to(attack, query)


@functools.lru_cache(maxsize=8)
def _big_reply(attack: DnsAttack, qname: str, rdtype: int) -> bytes:
    query = dns.message.make_query(qname, rdtype, use_edns=0, payload=1232)
    return _reply_to(attack, query)


def _reply_to(attack: DnsAttack, query: dns.message.Message) -> bytes:
    if attack is DnsAttack.MALFORMED:
        header = struct.pack("!HHHHHH", query.id, 0x8180, 0, 1, 0, 0)
        return header + b"\x07garbage"
    if attack is DnsAttack.TRUNCATED:
        whole = _reply(query, ["127.0.0.1"]).to_wire()
        return whole[: len(whole) - 3]
    if attack is DnsAttack.MISMATCHED_ID:
        response = _reply(query, ["127.0.0.1"])
        response.id = query.id ^ 0xFFFF
        return response.to_wire()
    if attack is DnsAttack.HUGE:
        return _reply(query, _huge_addresses()).to_wire(max_size=65535)
    if attack is DnsAttack.COUNT_LIE:
        wire_reply = _reply(query, _huge_addresses()).to_wire(max_size=65535)
        return wire_reply[:6] + struct.pack("!H", COUNT_CLAIMED) + wire_reply[8:]
    if attack is DnsAttack.COMPRESSION_LOOP:
        asked = query.question[0]
        question = asked.name.to_wire() + struct.pack("!HH", asked.rdtype, asked.rdclass)
        header = struct.pack("!HHHHHH", query.id, 0x8180, 1, 1, 0, 0)
        pointer_at = len(header) + len(question)
        name = struct.pack("!H", 0xC000 | pointer_at)  # points at itself
        record = name + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, 1])
        return header + question + record
    raise AssertionError(attack)


class HostileDns(asyncio.DatagramProtocol):
    """`async with HostileDns(DnsAttack.MALFORMED) as server:` ... `server.port`.

    Counts the queries it answered (`queries`), so a test can tell that the exporter really
    asked it."""

    def __init__(self, attack: DnsAttack, host: str = "127.0.0.1") -> None:
        self.attack = attack
        self.host = host
        self.port = 0
        self.queries = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> HostileDns:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, 0))
        # 3.11's selector datagram transport does not subclass DatagramTransport
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            reply = hostile_reply(self.attack, data)
        except Exception:  # not a query we can parse: stay silent, as servers do
            return
        self.queries += 1
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(reply, addr)


# --- TCP behaviours for tests.fakes.peers.Peer ----------------------------------------------


def redirect_loop() -> Behaviour:
    """Answers every request with `302 Found`, `Location:` the very same path."""

    async def run(conn: PeerConnection) -> None:
        server = await conn.read_request()
        target = conn.peer.requests[-1].target
        data = server.send(
            h11.Response(
                status_code=302,
                headers=[("Location", target), ("Content-Length", "0")],
            )
        )
        await conn.send((data or b"") + (server.send(h11.EndOfMessage()) or b""))
        await conn.until_closed()

    return run


#: A gzip member of 1 MiB of zeros, 1,051 bytes; `GZIP_BOMB_MEMBERS` of them concatenated
#: (RFC 1952 allows several members) inflate to 1 GiB.
GZIP_MEMBER = gzip.compress(b"\0" * (1024 * 1024), compresslevel=9)
GZIP_BOMB_MEMBERS = 1024


def gzip_bomb() -> Behaviour:
    """`Content-Encoding: gzip`, whatever the request asked, and a body inflating to 1 GiB
    (1 MiB on the wire, sent as fast as the client reads)."""
    body_length = len(GZIP_MEMBER) * GZIP_BOMB_MEMBERS

    async def run(conn: PeerConnection) -> None:
        server = await conn.read_request()
        head = server.send(
            h11.Response(
                status_code=200,
                headers=[
                    ("Content-Encoding", "gzip"),
                    ("Content-Type", "text/html"),
                    ("Content-Length", str(body_length)),
                ],
            )
        )
        await conn.send(head or b"")
        for _ in range(GZIP_BOMB_MEMBERS):
            await conn.send(GZIP_MEMBER)
        await conn.until_closed()

    return run


def never_read() -> Behaviour:
    """Accepts, then neither reads nor writes nor closes, until the client gives up."""

    async def run(conn: PeerConnection) -> None:
        await asyncio.Event().wait()  # only the Peer's exit cancels it

    return run
