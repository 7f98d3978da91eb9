"""DNS over QUIC (RFC 9250, ALPN `doq`) and DoH over HTTP/3 (ALPN `h3`), by dnspython.

dnspython opens these UDP sockets itself: only the network's source address is honoured
(the loader refuses interface, netns and proxy networks for these types). The QUIC
connection is made here (`exporter.probes.compat.AsyncioQuicManager`) so that trust and the
source address are ours; a failed handshake, which dnspython reports as a bare EOF, is named
from aioquic's close event (`exporter.probes.compat.pending_close`). A connection is given
`QUIC_CLOSE_GRACE` seconds beyond the call's budget to close politely.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.query
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicErrorCode
from aioquic.tls import AlertDescription
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from exporter.config.model import TlsOptions
from exporter.probes.compat import AsyncioQuicManager, UnexpectedEOF, inner_quic, pending_close
from exporter.probes.dns.call import Call, DohError, address_of
from exporter.probes.errors import NetworkSetupError
from exporter.probes.network import family_of

#: Seconds a DoQ connection is given to send its CONNECTION_CLOSE before it is torn down.
QUIC_CLOSE_GRACE = 0.05

# OpenSSL X509_V_ERR_* codes (x509_vfy.h), so a DoQ certificate failure reads, for
# errors.classify, exactly like the same failure over TLS-over-TCP.
_X509_UNSPECIFIED = 1
_X509_CERT_HAS_EXPIRED = 10
_X509_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
_X509_HOSTNAME_MISMATCH = 62


class QuicCertificateError(ssl.SSLCertVerificationError):
    """A DoQ certificate check failed. aioquic reports it as text; this carries the matching
    OpenSSL `verify_code` so `errors.classify` tells expired / unknown CA / wrong name apart."""

    def __init__(self, verify_code: int, message: str) -> None:
        super().__init__(verify_code, message)  # (errno, strerror): str() is the message
        self.verify_code = verify_code
        self.verify_message = message


class QuicTlsError(ssl.SSLError):
    """The DoQ handshake failed on a TLS alert other than a certificate check (`tls_error`)."""


async def doq(call: Call, message: dns.message.Message) -> dns.message.Message:
    """The `doq` transport. dnspython sets `message.id` to 0, as RFC 9250 requires."""
    address = address_of(call.resolver)
    connection = _quic_connection(call, address, "doq")
    try:
        return await dns.asyncquery.quic(
            message, address, port=call.resolver.port, connection=connection
        )
    except Exception as exc:
        failure = _quic_failure(connection, exc)
        if failure is None:
            raise
        raise failure from exc


async def doh3(call: Call, message: dns.message.Message) -> dns.message.Message:
    """DoH over HTTP/3 (RFC 8484 on RFC 9114): a POST of the query to the URL, by dnspython,
    on a QUIC connection made here so that trust and the source address are ours."""
    resolver = call.resolver
    address = address_of(resolver)
    if resolver.url is None:
        raise ValueError(f"resolver {resolver.name!r} (doh3) has no url")
    connection = _quic_connection(call, address, "h3")
    try:
        return await dns.asyncquery.https(
            message,
            resolver.url,
            client=connection,
            bootstrap_address=address,
            http_version=dns.query.HTTPVersion.H3,
        )
    except Exception as exc:
        failure = _quic_failure(connection, exc)
        if failure is not None:
            raise failure from exc
        if isinstance(exc, ValueError | SyntaxError):  # dnspython's verdict on the :status
            raise DohError(f"DoH3 reply: {str(exc)[:200]}") from exc
        raise


def _quic_connection(call: Call, address: str, alpn: str) -> Any:
    """A dnspython QUIC connection to the resolver (DoQ: ALPN `doq`; DoH3: `h3`), closed by
    the call's cleanup. dnspython opens the UDP socket itself: only a source address can be
    honoured (the loader refuses interface, netns and proxy networks for these types)."""
    resolver, network = call.resolver, call.dialer.network
    what = "DoQ" if alpn == "doq" else "DoH3"
    if network.interface or network.netns or network.proxy:
        raise NetworkSetupError(
            errno.EPROTONOSUPPORT,
            f"network {network.name!r}: {what} opens its own UDP socket and can honour only a "
            "source address, not an interface, namespace or proxy",
        )
    # dnspython would swallow a bind failure of its socket; try the dialer's first so a bad
    # source address reads `network_setup`, not a failed handshake.
    call.dialer.udp_socket(family_of(address)).close()
    sni = resolver.tls.server_name or resolver.server_name or address
    manager = AsyncioQuicManager(  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
        conf=_quic_configuration(resolver.tls, sni, alpn), h3=alpn == "h3"
    )
    connection = manager.connect(
        address, resolver.port, network.source_address, 0, want_session_ticket=False
    )  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
    call.cleanup.push_async_callback(_close_quic, connection)
    return connection


def _quic_configuration(options: TlsOptions, server_name: str, alpn: str) -> QuicConfiguration:
    """A fresh client configuration (no session ticket, no token: every handshake is full).

    Trust mirrors `exporter.probes.tls.build_context`: `ca_file` replaces the roots,
    `extra_ca_file` adds to the system roots (OpenSSL's default paths, certifi where there
    are none). aioquic loads `cafile`, `capath` and `cadata` together, so no combined bundle
    file is needed.
    """
    conf = QuicConfiguration(
        is_client=True,
        alpn_protocols=[alpn],
        server_name=server_name,
        verify_mode=ssl.CERT_NONE if options.insecure_skip_verify else ssl.CERT_REQUIRED,
    )
    if options.ca_file:
        conf.load_verify_locations(cafile=options.ca_file)
        return conf
    paths = ssl.get_default_verify_paths()
    cafile, capath = paths.cafile, paths.capath
    if cafile is None and capath is None:
        import certifi  # aioquic's own fallback; it depends on certifi

        cafile = certifi.where()
    cadata = _pem_bundle(options.extra_ca_file) if options.extra_ca_file else None
    conf.load_verify_locations(cafile=cafile, capath=capath, cadata=cadata)
    return conf


def _pem_bundle(path: str) -> bytes:
    """The certificates of a PEM file, re-encoded one after the other (aioquic's `cadata`
    parser wants bare, newline-terminated blocks)."""
    with open(path, "rb") as f:
        certs = x509.load_pem_x509_certificates(f.read())
    return b"".join(cert.public_bytes(Encoding.PEM) for cert in certs)


def _quic_failure(connection: Any, exc: Exception) -> Exception | None:
    """What really ended a DoQ exchange, as an exception `errors.classify` understands.

    dnspython reports a failed handshake as a bare "unexpected EOF"; the reason is in the
    aioquic connection's close event, read through `exporter.probes.compat` (private names
    of both libraries): should they move, the original exception stands, and
    tests/test_compat.py fails loudly.
    """
    event = pending_close(inner_quic(connection))
    if event is not None:
        code, reason = event.error_code, event.reason_phrase
        if QuicErrorCode.CRYPTO_ERROR <= code <= QuicErrorCode.CRYPTO_ERROR + 0xFF:
            alert = code - QuicErrorCode.CRYPTO_ERROR
            return _tls_alert_error(alert, reason)
        if code == QuicErrorCode.CONNECTION_REFUSED:
            return ConnectionRefusedError(errno.ECONNREFUSED, f"QUIC CONNECTION_REFUSED {reason}")
        if isinstance(exc, dns.exception.Timeout | TimeoutError):
            return None
        return ConnectionResetError(
            errno.ECONNRESET, f"QUIC connection closed (error 0x{code:x}) {reason}".rstrip()
        )
    if isinstance(exc, UnexpectedEOF):
        # No close event, yet the connection ended: dnspython's receiver stopped on a socket
        # error, which on a connected UDP socket is an ICMP unreachable (the errno is lost).
        return ConnectionRefusedError(
            errno.ECONNREFUSED,
            "DoQ socket failed before the handshake (ICMP port or host unreachable)",
        )
    return None


def _tls_alert_error(alert: int, reason: str) -> Exception:
    text = reason or f"TLS alert {alert}"
    if alert == AlertDescription.certificate_expired:
        return QuicCertificateError(_X509_CERT_HAS_EXPIRED, text)
    if alert in (
        AlertDescription.bad_certificate,
        AlertDescription.unknown_ca,
        AlertDescription.certificate_unknown,
        AlertDescription.unsupported_certificate,
    ):
        lowered = reason.lower()
        if "doesn't match" in lowered or "hostname" in lowered:
            return QuicCertificateError(_X509_HOSTNAME_MISMATCH, text)
        if alert == AlertDescription.unknown_ca or any(
            needle in lowered for needle in ("issuer", "self-signed", "self signed", "untrusted")
        ):
            return QuicCertificateError(_X509_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, text)
        return QuicCertificateError(_X509_UNSPECIFIED, text)
    return QuicTlsError(alert, f"TLS alert {alert}: {text}")


async def _close_quic(connection: Any) -> None:
    """Close a DoQ connection: `QUIC_CLOSE_GRACE` seconds to send CONNECTION_CLOSE, then it
    is cut. dnspython's close() survives being cancelled (it then tears down its tasks and
    socket), so the wait_for never leaks them. A failing close must not hide the reply or
    the error of the exchange, so it is swallowed."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.close(), QUIC_CLOSE_GRACE)
