"""The TLS phases of a probe: the handshake itself, the control-SNI handshake made before
it (`Endpoint.control_sni`), and, when verification fails, the certificate presented to an
unverified handshake (the MITM evidence).

Every handshake is a full one (the contexts never resume sessions), over a fresh socket
from the tuple's `Dialer` registered on the attempt, so it is closed with the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import ssl
import time

from exporter.config.model import Check, Endpoint, TlsOptions
from exporter.model.observation import Certificate, ErrorKind, Phase, TlsObservation
from exporter.probes.attempt import MAX_DETAIL, Attempt, Control, detail_of
from exporter.probes.errors import classify, describe
from exporter.probes.network import Dialer
from exporter.probes.streams import TlsStream
from exporter.probes.tls import TlsContexts
from exporter.units import cut, format_ms

#: ALPN offered when an HTTP/1.1 request follows the handshake.
HTTP_ALPN = ("http/1.1",)
#: Largest fraction of the remaining budget the control-SNI handshake may use, so that a
#: silent control still leaves the real handshake time to run.
CONTROL_SHARE = 0.5


async def tls_phase(
    contexts: TlsContexts,
    endpoint: Endpoint,
    dialer: Dialer,
    sock: socket.socket,
    address: str,
    attempt: Attempt,
) -> TlsStream | None:
    """Handshake over `sock`. On a failed verification, read the certificate the peer
    presents through a second, unverified handshake (the MITM evidence) and still fail."""
    alpn = HTTP_ALPN if Check.HTTP in endpoint.checks else ()
    sni = endpoint.server_name
    check_name = sni or address  # IP: no SNI, verified against the IP SANs
    attempt.tls_server_name = sni
    attempt.begin(Phase.TLS)
    stream: TlsStream | None = None
    try:
        ctx = contexts.get(endpoint.tls, alpn)
        stream = TlsStream(sock, ctx, check_name, stamped=True)
        await stream.handshake()
    except Exception as exc:
        duration = attempt.end(stream)
        kind = classify(exc)
        attempt.tls = TlsObservation(
            server_name=sni,
            error=kind,
            detail=detail_of(exc),
            duration=duration,
            overhead=attempt.overhead,
        )
        attempt.fail(Phase.TLS, kind)
        attempt.log.add(f"tls sni={sni}: {kind} in {format_ms(duration)}: {detail_of(exc)}")
        if isinstance(exc, ssl.SSLCertVerificationError):
            certificate = await _unverified_certificate(
                contexts, endpoint, dialer, address, check_name, alpn, attempt
            )
            attempt.tls = dataclasses.replace(attempt.tls, certificate=certificate)
        return None
    duration = attempt.end(stream)
    obj = stream.ssl_object
    verified = ctx.verify_mode != ssl.CERT_NONE
    certificate = contexts.certificate(obj.getpeercert(binary_form=True), verified=verified)
    tls_version, tls_cipher, tls_alpn = _negotiated(obj)
    attempt.tls = TlsObservation(
        server_name=sni,
        version=tls_version,
        cipher=tls_cipher,
        alpn=tls_alpn,
        certificate=certificate,
        duration=duration,
        overhead=attempt.overhead,
    )
    attempt.log.add(
        f"tls sni={sni} {attempt.tls.version} {attempt.tls.cipher} "
        f"alpn={attempt.tls.alpn} in {format_ms(duration)}; {_describe_cert(certificate)}"
    )
    return stream


async def control_phase(
    contexts: TlsContexts,
    endpoint: Endpoint,
    dialer: Dialer,
    attempt: Attempt,
    deadline: float,
    previous: Control | None,
) -> None:
    """The control: a handshake with `control_sni` (an innocuous name) to the address the
    real connection reached, on a fresh connection, made *before* the real ClientHello
    (a censor may keep blocking the flow for minutes after a hit on the real name). A
    retry reuses the first attempt's control when it reached the same address, for the
    same reason. Runs between the connect and tls phases (no phase of its own), with at
    most `CONTROL_SHARE` of the remaining budget; its failure is a fact, not the probe's.
    """
    address = attempt.address
    sni = endpoint.control_sni
    assert address is not None
    assert sni is not None
    if previous is not None and previous[0] == address:
        attempt.control = previous[1]
        attempt.log.add(f"control sni={sni}: reusing attempt 1's ({previous[1].error or 'ok'})")
        return
    alpn = HTTP_ALPN if Check.HTTP in endpoint.checks else ()
    share = (deadline - asyncio.get_running_loop().time()) * CONTROL_SHARE
    t0 = time.perf_counter()
    sock: socket.socket | None = None
    try:
        async with asyncio.timeout(share):
            ctx = contexts.get(endpoint.tls, alpn)
            sock = await dialer.connect_tcp(address, endpoint.port)
            attempt.sockets.append(sock)
            t0 = time.perf_counter()  # the handshake's own duration, as for tls
            stream = TlsStream(sock, ctx, sni)
            await stream.handshake()
    except Exception as exc:
        kind = classify(exc)
        where = "handshake" if sock is not None else "connect"
        attempt.control = TlsObservation(
            server_name=sni,
            error=kind,
            detail=cut(f"{where}: {describe(exc)}", MAX_DETAIL),
            duration=time.perf_counter() - t0,
        )
        attempt.log.add(f"control sni={sni} to {address}: {kind} in {where}: {detail_of(exc)}")
        if kind is ErrorKind.CERT_UNKNOWN_AUTHORITY:
            # Whom the certificate names tells a server's own (its names) from one minted
            # for whatever name is asked (an interceptor's): the judgement's rule 15. Not on
            # a hostname mismatch, every control's lot on a trusted chain: no extra handshake.
            # At most half of what is left, as the control itself: the real handshake runs.
            share = (deadline - asyncio.get_running_loop().time()) * CONTROL_SHARE
            certificate = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(share):
                    certificate = await _unverified_certificate(
                        contexts, endpoint, dialer, address, sni, alpn, attempt
                    )
            attempt.control = dataclasses.replace(attempt.control, certificate=certificate)
        return
    finally:
        if sock is not None:
            sock.close()
    duration = time.perf_counter() - t0
    obj = stream.ssl_object
    certificate = contexts.certificate(
        obj.getpeercert(binary_form=True), verified=ctx.verify_mode != ssl.CERT_NONE
    )
    tls_version, tls_cipher, tls_alpn = _negotiated(obj)
    attempt.control = TlsObservation(
        server_name=sni,
        version=tls_version,
        cipher=tls_cipher,
        alpn=tls_alpn,
        certificate=certificate,
        duration=duration,
    )
    attempt.log.add(
        f"control sni={sni} to {address}: ok {obj.version()} in {format_ms(duration)}; "
        f"{_describe_cert(certificate)}"
    )


async def _unverified_certificate(
    contexts: TlsContexts,
    endpoint: Endpoint,
    dialer: Dialer,
    address: str,
    check_name: str,
    alpn: tuple[str, ...],
    attempt: Attempt,
) -> Certificate | None:
    """The certificate `address` presents to the same ClientHello (same SNI and ALPN),
    unverified, over a fresh connection. Only logged on failure: the probe failed already.
    Bounded by the probe's deadline (the caller's timeout)."""
    try:
        ctx = contexts.get(unverified(endpoint.tls), alpn)
        sock = await dialer.connect_tcp(address, endpoint.port)
        attempt.sockets.append(sock)
        try:
            stream = TlsStream(sock, ctx, check_name)
            await stream.handshake()
            der = stream.ssl_object.getpeercert(binary_form=True)
        finally:
            sock.close()
    except Exception as exc:
        attempt.log.add(f"unverified handshake failed: {detail_of(exc)}")
        return None
    certificate = contexts.certificate(der, verified=False)
    attempt.log.add(f"unverified handshake: {_describe_cert(certificate)}")
    return certificate


def unverified(options: TlsOptions) -> TlsOptions:
    return dataclasses.replace(options, insecure_skip_verify=True)


def _negotiated(obj: ssl.SSLObject) -> tuple[str | None, str | None, str | None]:
    """The TLS version, cipher and ALPN protocol of a handshake."""
    cipher = obj.cipher()
    return obj.version(), cipher[0] if cipher else None, obj.selected_alpn_protocol()


def _describe_cert(certificate: Certificate | None) -> str:
    if certificate is None:
        return "no certificate"
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(certificate.not_after))
    return (
        f"cert subject={certificate.subject!r} issuer={certificate.issuer!r} "
        f"expires {expires} verified={certificate.verified}"
    )
