"""Exceptions → the closed `ErrorKind` vocabulary. Pure: it only inspects exception objects.

Order matters: subclasses first (an `ssl.SSLCertVerificationError` is also an `OSError`, a
`ProxyFailure` is an `OSError` whose errno may describe the far side).
"""

from __future__ import annotations

import errno
import ssl

import dns.exception
import h11

from exporter.model.observation import ErrorKind


class NetworkSetupError(OSError):
    """The network's namespace, interface or source address cannot be used."""


class ProxyFailure(OSError):
    """The SOCKS proxy could not be reached or refused the connection.

    `errno` mirrors the failure where the proxy tells it (connection refused, host unreachable,
    ...) so a refusal behind the proxy is still told apart from a broken proxy.
    """

    def __init__(self, message: str, *, errno_: int | None = None, reached: bool = False) -> None:
        super().__init__(errno_ or 0, message)
        #: True when the proxy answered and reported a failure of the connection behind it.
        self.reached = reached


class ProxyUnsupported(NetworkSetupError):
    """A datagram socket was asked of a proxy network (SOCKS carries TCP only here)."""


_ERRNO_KIND = {
    errno.ECONNREFUSED: ErrorKind.REFUSED,
    errno.ECONNRESET: ErrorKind.RESET,
    errno.EPIPE: ErrorKind.RESET,
    errno.ECONNABORTED: ErrorKind.RESET,
    errno.ETIMEDOUT: ErrorKind.TIMEOUT,
    errno.EHOSTUNREACH: ErrorKind.HOST_UNREACHABLE,
    errno.EHOSTDOWN: ErrorKind.HOST_UNREACHABLE,
    errno.ENETUNREACH: ErrorKind.NETWORK_UNREACHABLE,
    errno.ENETDOWN: ErrorKind.NETWORK_UNREACHABLE,
    errno.EADDRNOTAVAIL: ErrorKind.NETWORK_SETUP,
    errno.ENODEV: ErrorKind.NETWORK_SETUP,
}

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) seen in SSLCertVerificationError.verify_code.
_X509_EXPIRED = frozenset({9, 10})  # not yet valid, has expired
_X509_UNKNOWN_AUTHORITY = frozenset({2, 18, 19, 20, 21})  # no issuer, self-signed, untrusted
_X509_HOSTNAME = 62


def classify(exc: BaseException) -> ErrorKind:
    """The error kind of an exception raised while probing."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in _X509_EXPIRED:
            return ErrorKind.CERT_EXPIRED
        if code in _X509_UNKNOWN_AUTHORITY:
            return ErrorKind.CERT_UNKNOWN_AUTHORITY
        if code == _X509_HOSTNAME:
            return ErrorKind.CERT_HOSTNAME
        return ErrorKind.CERT_INVALID
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return ErrorKind.EOF
    if isinstance(exc, ssl.SSLError):
        return ErrorKind.TLS_ERROR
    if isinstance(exc, ProxyFailure):
        if exc.reached and exc.errno in _ERRNO_KIND:
            return _ERRNO_KIND[exc.errno]
        return ErrorKind.PROXY
    if isinstance(exc, NetworkSetupError):
        return ErrorKind.NETWORK_SETUP
    if isinstance(exc, TimeoutError | dns.exception.Timeout):
        return ErrorKind.TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return ErrorKind.REFUSED
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ErrorKind.RESET
    if isinstance(exc, EOFError):  # includes asyncio.IncompleteReadError
        return ErrorKind.EOF
    if isinstance(exc, OSError) and exc.errno in _ERRNO_KIND:
        return _ERRNO_KIND[exc.errno]
    if isinstance(exc, h11.ProtocolError):
        return ErrorKind.HTTP_PROTOCOL
    if isinstance(exc, dns.exception.DNSException):
        return ErrorKind.DNS_BAD_RESPONSE
    return ErrorKind.OTHER


def describe(exc: BaseException) -> str:
    """Human text of an exception for logs and the detail page (never a label)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text
