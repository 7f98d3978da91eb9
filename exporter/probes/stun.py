"""The `stun` check: one STUN Binding transaction (RFC 8489) over UDP.

Messengers place calls through their STUN/TURN relays; a censor can drop that UDP traffic
while every TCP check stays green. The check sends a Binding request to the relay's address
and expects a Binding success response carrying XOR-MAPPED-ADDRESS (our address as the server
saw it). Messages are encoded and parsed by `aioice.stun`; nothing here writes the format.

How it is measured:
- the UDP socket comes from the network's `Dialer` (`udp_socket`, passed as `sock_factory`),
  so a netns, interface or source address is honoured as for TCP; a proxy network has no UDP
  (`ProxyUnsupported`: `network_setup`). The socket is *connected* to the server, so the
  kernel drops datagrams from any other source and reports an ICMP port unreachable as
  `ECONNREFUSED` (`refused`) instead of dropping it;
- retransmission follows RFC 8489 §6.2.1: the first request, then the same request (same
  transaction ID) again after `rto`, `2 rto`, `4 rto`, ... seconds of silence, `max_requests`
  requests in all; silence for `rto * 2**(max_requests - 1)` seconds after the last one is a
  `timeout`. With the defaults (0.5 s, 4 requests) the check gives up after 7.5 s; the
  caller's own deadline usually comes first;
- a datagram that is not STUN, a STUN message of another transaction, an echo of our request
  or a success response without a mapped address is *bad*: the check keeps waiting for the
  real answer, but when the requests run out with only bad datagrams seen, the result is
  `bad_reply` (something answered in the server's place), never success and never a plain
  `timeout`. A Binding error response to our transaction ends the check at once as reached
  (no error; the code in the detail): the server read the request and answered in STUN, so
  the path is open, and a relay's refusal must not read as blocking;
- the socket is closed before `run()` returns or its cancellation propagates; no task is
  started, so nothing of a check outlives it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable

from aioice import stun

from exporter.model.observation import ErrorKind, StunObservation
from exporter.probes.errors import classify, describe
from exporter.probes.network import family_of
from exporter.units import cut

#: Bytes read of one datagram: a Binding response is under 100 bytes, and a larger datagram
#: is read cut (which then fails to parse: a bad datagram).
MAX_DATAGRAM = 2048
#: Characters kept of an error detail.
MAX_DETAIL = 300
#: Bytes of a non-STUN datagram shown (hex) in the detail, as evidence of what answered.
EVIDENCE_BYTES = 16
#: The magic cookie as it appears on the wire, bytes 4..8 of every RFC 5389/8489 message.
_COOKIE = struct.pack("!I", stun.COOKIE)


def format_address(address: tuple[str, int]) -> str:
    """ "addr:port", an IPv6 address in brackets ("[::1]:5000")."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def binding_request() -> bytes:
    """A fresh Binding request (its own transaction ID), as localisation sends it again with
    lowered TTLs."""
    return bytes(stun.Message(stun.Method.BINDING, stun.Class.REQUEST))


class _Bad(Exception):
    """A datagram that is not the answer to our request; the text says why."""


class StunProbe:
    """One `stun` check, single use: `run()` once, then `close()` (idempotent).

    `run()` never raises except CancelledError (exceptions of `sock_factory`, the socket and
    the parser are named through `errors.classify`), and closes the socket before it returns
    or its cancellation propagates. A caller whose deadline cancels `run()` calls `close()`
    afterwards and may take `observation()`: what was known when it was cut.
    """

    def __init__(
        self,
        sock_factory: Callable[[socket.AddressFamily], socket.socket],
        address: str,
        port: int,
        *,
        rto: float = 0.5,
        max_requests: int = 4,
    ) -> None:
        """`address` is an IP literal; `rto` the initial retransmission timeout, seconds
        (doubled after each request); `max_requests` at least 1."""
        if rto <= 0:
            raise ValueError(f"rto must be positive, not {rto}")
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, not {max_requests}")
        self.sock_factory = sock_factory
        self.address = address
        self.port = port
        self.rto = rto
        self.max_requests = max_requests
        #: Binding requests sent so far.
        self.requests = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: float | None = None  # perf_counter at the first request
        self._bad = 0  # bad datagrams received
        self._last_bad: str | None = None  # why the last one was bad

    def observation(self) -> StunObservation:
        """What is known now, for a caller whose deadline cut `run()`: `bad_reply` when bad
        datagrams arrived, else `timeout`; `duration` runs to now."""
        if self._bad:
            return self._result(ErrorKind.BAD_REPLY, self._bad_detail())
        return self._result(
            ErrorKind.TIMEOUT, f"no answer to {_plural(self.requests, 'Binding request')}"
        )

    async def run(self) -> StunObservation:
        try:
            return await self._run()
        except Exception as exc:  # OSError of the socket, NetworkSetupError, ...
            return self._result(classify(exc), describe(exc))
        finally:
            self.close()

    def close(self) -> None:
        """Close the socket (idempotent). Call it after cancelling `run()`, not while `run()`
        is still waiting: the wait would not notice."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed() and sock.fileno() != -1:
            # A cancelled sock_recv removes its reader only at the loop's next iteration, by
            # descriptor number; remove it now, before the number can be reused.
            loop.remove_reader(sock.fileno())
        sock.close()

    # --- the transaction ---------------------------------------------------------------------

    async def _run(self) -> StunObservation:
        self._loop = loop = asyncio.get_running_loop()
        self._sock = sock = self.sock_factory(family_of(self.address))
        sock.connect((self.address, self.port))  # UDP: no packet, just the peer
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        data = bytes(request)
        wait = self.rto
        self._started = time.perf_counter()
        for _ in range(self.max_requests):
            await loop.sock_sendall(sock, data)
            self.requests += 1
            answer = await self._answer(loop, sock, request.transaction_id, wait)
            if answer is not None:
                return answer
            wait *= 2
        return self.observation()

    async def _answer(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        transaction_id: bytes,
        wait: float,
    ) -> StunObservation | None:
        """The observation a datagram within `wait` seconds ends the check with, or None
        when only bad datagrams (or none) came."""
        try:
            async with asyncio.timeout(wait) as deadline:
                while True:
                    datagram = await loop.sock_recv(sock, MAX_DATAGRAM)
                    try:
                        return self._judge(datagram, transaction_id)
                    except _Bad as exc:
                        self._bad += 1
                        self._last_bad = str(exc)
        except TimeoutError:
            if not deadline.expired():
                raise  # an ETIMEDOUT of the socket, not our deadline
            return None

    def _judge(self, datagram: bytes, transaction_id: bytes) -> StunObservation:
        """The observation that `datagram` ends the check with; raises _Bad when it is not
        the answer to our request."""
        try:
            message = stun.parse_message(datagram)
        except Exception as exc:  # untrusted bytes: whatever the parser raises, not STUN
            raise _Bad(f"not STUN ({exc}): {datagram[:EVIDENCE_BYTES].hex()}") from None
        if datagram[4:8] != _COOKIE or datagram[0] & 0xC0:  # RFC 8489 §6.3
            raise _Bad(f"not STUN (no magic cookie): {datagram[:EVIDENCE_BYTES].hex()}")
        if message.transaction_id != transaction_id:
            raise _Bad("a STUN message of another transaction")
        if message.message_method != stun.Method.BINDING:
            raise _Bad(f"a {message.message_method.name} message, not Binding")
        if message.message_class == stun.Class.ERROR:
            code = message.attributes.get("ERROR-CODE")
            why = "without ERROR-CODE" if code is None else f"{code[0]} {code[1]}".rstrip()
            # The server read our request and answered in STUN: the call path is open.
            return self._result(None, f"Binding error response: {why} (the server answered)")
        if message.message_class != stun.Class.RESPONSE:
            raise _Bad(f"a Binding {message.message_class.name.lower()}, not a response")
        mapped = message.attributes.get("XOR-MAPPED-ADDRESS") or message.attributes.get(
            "MAPPED-ADDRESS"
        )
        if mapped is None:
            raise _Bad("a Binding success response without (XOR-)MAPPED-ADDRESS")
        return self._result(None, None, mapped=format_address(mapped))

    # --- results -----------------------------------------------------------------------------

    def _bad_detail(self) -> str:
        return (
            f"no valid answer to {_plural(self.requests, 'Binding request')}; "
            f"{_plural(self._bad, 'bad datagram')}, the last: {self._last_bad}"
        )

    def _result(
        self, error: ErrorKind | None, detail: str | None, *, mapped: str | None = None
    ) -> StunObservation:
        duration = 0.0 if self._started is None else time.perf_counter() - self._started
        return StunObservation(
            address=self.address,
            port=self.port,
            requests=self.requests,
            mapped=mapped,
            error=error,
            detail=None if detail is None else cut(detail, MAX_DETAIL),
            duration=duration,
        )
