"""The checks beside TCP, TLS and HTTP/1.1, which a censor can block while those stay green:
QUIC (`quic`, a handshake and an optional HTTP/3 request over UDP), the call path (`stun`, a
STUN Binding request over UDP to a relay) and Telegram's own protocol (`mtproto`, the first
exchange of its clients on the tcp check's connection). Each runs as one phase of the probe,
recorded on the `Attempt`; how each is spoken is in its own module."""

from __future__ import annotations

import dataclasses

from exporter.config.model import Endpoint
from exporter.model.observation import Phase
from exporter.probes.attempt import Attempt
from exporter.probes.http import authority
from exporter.probes.mtproto import exchange
from exporter.probes.network import Dialer
from exporter.probes.quic import QuicProbe, QuicTrust
from exporter.probes.streams import SocketStream, TlsStream
from exporter.probes.stun import StunProbe
from exporter.units import format_ms


async def stun_phase(endpoint: Endpoint, dialer: Dialer, address: str, attempt: Attempt) -> None:
    """The stun check (exporter.probes.stun): a Binding request to `address`, resent on
    loss; the probe's deadline ends silence as a timeout (`Attempt.timed_out`)."""
    probe = StunProbe(dialer.udp_socket, address, endpoint.port)
    attempt.stun_probe = probe
    attempt.begin(Phase.STUN)
    result = await probe.run()
    result = dataclasses.replace(result, duration=attempt.end())
    attempt.stun = result
    # Not the mapped address: our public address has no place in logs that may be shared.
    answered = (
        "a Binding success response"
        if result.mapped is not None
        else (result.detail or "an answer")
        if result.error is None
        else "no valid answer"
    )
    summary = (
        f"stun {address}:{endpoint.port}: {result.requests} request(s), {answered} "
        f"in {format_ms(result.duration)}"
    )
    if result.error is not None:
        attempt.fail(Phase.STUN, result.error)
        summary += f": {result.error}: {result.detail}"
    attempt.log.add(summary)


async def mtproto_phase(
    endpoint: Endpoint, stream: SocketStream | TlsStream, address: str, attempt: Attempt
) -> None:
    """The mtproto check (exporter.probes.mtproto): `req_pq_multi` on the connection the
    tcp check made, answered by `resPQ` with our nonce; silence ends at the deadline."""
    options = endpoint.mtproto
    attempt.mtproto_target = (address, endpoint.port, options.transport)
    attempt.begin(Phase.MTPROTO)
    result = await exchange(stream, address, endpoint.port, options.transport, dc=options.dc)
    result = dataclasses.replace(result, duration=attempt.end(stream))
    attempt.mtproto = result
    summary = (
        f"mtproto {options.transport} req_pq_multi to {address}:{endpoint.port}: "
        f"{'resPQ with our nonce' if result.answered else 'no resPQ'} "
        f"in {format_ms(result.duration)}"
    )
    if result.error is not None:
        attempt.fail(Phase.MTPROTO, result.error)
        summary += f": {result.error}: {result.detail}"
    elif result.detail is not None:
        summary += f" ({result.detail})"
    attempt.log.add(summary)


async def quic_phase(
    endpoint: Endpoint,
    dialer: Dialer,
    address: str,
    attempt: Attempt,
    *,
    trusts: QuicTrust,
    user_agent: str,
    idle_timeout: float,
) -> None:
    """The quic check (exporter.probes.quic): a QUIC handshake with the endpoint's SNI and TLS
    options and ALPN h3 to `address`, and with `quic.http3` one HTTP/3 GET of
    `http.path`. Bounded by the probe's deadline (silence ends there as a timeout)."""
    port = endpoint.quic.port or endpoint.port
    probe = QuicProbe(
        dialer,
        address,
        port,
        server_name=endpoint.server_name,
        tls=endpoint.tls,
        trusts=trusts,
        http=endpoint.http if endpoint.quic.http3 else None,
        authority=authority(endpoint.host or address, port, tls=True),
        user_agent=user_agent,
        idle_timeout=idle_timeout,
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
            f"{format_ms(result.handshake_duration)}"
        )
    if result.url is not None and result.connected:
        summary += (
            f"; GET {result.url} -> {result.status}, {result.body_bytes} body bytes"
            f"{' (truncated)' if result.body_truncated else ''}"
        )
    summary += f" in {format_ms(duration)}"
    if result.error is not None:
        attempt.fail(Phase.QUIC, result.error)
        summary += f": {result.error}: {result.detail}"
    attempt.log.add(summary)
