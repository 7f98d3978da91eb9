"""The `system` resolver: the nameservers of the network's resolv.conf, asked like glibc.

resolv.conf is read by dnspython (parsing only); the questions go through the call's
`Dialer` like any `udp` resolver's, so a namespace's own resolv.conf (`ip netns exec`'s
/etc/netns/NAME/resolv.conf) is the one asked from that namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os

import dns.message
import dns.rcode
import dns.resolver

from exporter.probes.dns.call import Call, endpoint_url
from exporter.probes.dns.udp import udp_then_tcp
from exporter.probes.errors import NetworkSetupError
from exporter.probes.network import Dialer

#: Where the host's stub resolver configuration lives (and `ip netns exec`'s override).
RESOLV_CONF = "/etc/resolv.conf"
NETNS_ETC = "/etc/netns"
#: glibc moves on to the next nameserver on these rcodes; so does the system resolver here.
_NEXT_SERVER_RCODES = frozenset({dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED})


def resolv_conf_path(resolv_conf: str | None, dialer: Dialer) -> str:
    """The file `ip netns exec` would bind over /etc/resolv.conf, else the host's."""
    if resolv_conf:
        return resolv_conf
    netns = dialer.network.netns
    if netns:
        candidate = os.path.join(NETNS_ETC, netns, "resolv.conf")
        if os.path.exists(candidate):
            return candidate
    return RESOLV_CONF


def _nameservers(path: str) -> list[str]:
    """Nameserver addresses of a resolv.conf (dnspython parses it; it only reads the file)."""
    try:
        parsed = dns.resolver.Resolver(filename=path, configure=True)
    except dns.resolver.NoResolverConfiguration as exc:
        raise NetworkSetupError(errno.ENOENT, f"{path}: {exc}") from exc
    return [str(ns) for ns in parsed.nameservers]


async def system(call: Call, message: dns.message.Message) -> dns.message.Message:
    """Each resolv.conf nameserver in turn (UDP, TCP on truncation) until one answers, like
    glibc: the next one is tried on no reply or SERVFAIL / NOTIMP / REFUSED. The budget left
    is shared evenly among the nameservers not yet tried."""
    loop = asyncio.get_running_loop()
    path = resolv_conf_path(call.resolv_conf, call.dialer)
    nameservers = _nameservers(path)
    last_reply: tuple[str, dns.message.Message] | None = None  # (server, SERVFAIL-ish reply)
    last_error: Exception | None = None
    for index, nameserver in enumerate(nameservers):
        server = call.trace.server = endpoint_url("udp", nameserver, call.resolver.port)
        call.trace.arrived = None  # only the reply returned ends the exchange
        share = (call.deadline - loop.time()) / (len(nameservers) - index)
        scope = asyncio.timeout(share)
        try:
            async with contextlib.AsyncExitStack() as attempt_cleanup:
                attempt = Call(
                    resolver=call.resolver,
                    dialer=call.dialer,
                    contexts=call.contexts,
                    cleanup=attempt_cleanup,
                    trace=call.trace,
                    deadline=call.deadline,
                    resolv_conf=call.resolv_conf,
                    wire=call.wire,
                )
                async with scope:
                    reply = await udp_then_tcp(
                        attempt, message, nameserver, call.resolver.port, loop.time() + share
                    )
        except Exception as exc:
            if isinstance(exc, TimeoutError) and scope.expired():
                exc = TimeoutError(f"no reply from {server} within {share:.3g} s")
            last_error = exc
            continue
        if reply.rcode() in _NEXT_SERVER_RCODES and index < len(nameservers) - 1:
            last_reply = (server, reply)
            continue
        return reply
    if last_reply is not None:
        call.trace.server, reply = last_reply
        call.trace.arrived = None  # later servers' tries came after it: the time stays whole
        return reply
    assert last_error is not None  # _nameservers() never returns an empty list
    raise last_error
