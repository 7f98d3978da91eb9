"""TLS contexts, one per TLS configuration, and the certificate facts a probe keeps.

Contexts are built once per (options, ALPN) and shared by every probe: building one costs
milliseconds (loading the system roots), and a client context resumes no session unless
asked, so sharing it keeps every handshake a full, fresh one.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID

from exporter.config.model import TlsOptions
from exporter.model.observation import Certificate

#: Certificates whose facts `TlsContexts.certificate` keeps (a server presents the same one
#: probe after probe; parsing it costs about as much as the rest of a probe's bookkeeping).
CERTIFICATE_CACHE = 1024


class TlsContexts:
    """Cache of client SSL contexts keyed by TLS options and ALPN protocols, and of the facts
    of the certificates seen (bounded: emptied when it holds `CERTIFICATE_CACHE`)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[TlsOptions, tuple[str, ...]], ssl.SSLContext] = {}
        self._certificates: dict[tuple[bytes, bool], Certificate | None] = {}

    def certificate(self, der: bytes | None, *, verified: bool) -> Certificate | None:
        """`certificate_facts(der, verified=verified)`, parsed once per certificate."""
        if not der:
            return None
        key = (der, verified)
        try:
            return self._certificates[key]
        except KeyError:
            pass
        facts = certificate_facts(der, verified=verified)
        if len(self._certificates) >= CERTIFICATE_CACHE:
            self._certificates.clear()
        self._certificates[key] = facts
        return facts

    def get(self, options: TlsOptions, alpn: Sequence[str] = ()) -> ssl.SSLContext:
        key = (options, tuple(alpn))
        ctx = self._cache.get(key)
        if ctx is None:
            ctx = build_context(options, alpn)
            self._cache[key] = ctx
        return ctx


def build_context(options: TlsOptions, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A client context: `ca_file` replaces the system roots, `extra_ca_file` adds to them."""
    if options.ca_file:
        ctx = ssl.create_default_context(cafile=options.ca_file)
    else:
        ctx = ssl.create_default_context()
        if options.extra_ca_file:
            ctx.load_verify_locations(cafile=options.extra_ca_file)
    if options.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_hello(context: ssl.SSLContext, server_name: str | None) -> bytes:
    """The first flight of a handshake with `context` (a ClientHello as OpenSSL sends it for
    this SNI and ALPN): what localisation sends again with limited TTLs."""
    outgoing = ssl.MemoryBIO()
    handshake = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the ServerHello
        handshake.do_handshake()
    return outgoing.read()


def _name(name: x509.Name) -> str:
    cn = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cn:
        value = cn[0].value
        return value if isinstance(value, str) else value.decode(errors="replace")
    return name.rfc4514_string()


def certificate_facts(der: bytes | None, *, verified: bool) -> Certificate | None:
    """The facts of a peer certificate in DER form; None when there is none or it is garbage."""
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    sans: tuple[str, ...] = ()
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        sans = tuple(
            [*ext.value.get_values_for_type(x509.DNSName)]
            + [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]
        )
    except (x509.ExtensionNotFound, ValueError):
        pass
    return Certificate(
        sha256=hashlib.sha256(der).hexdigest(),
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        not_after=cert.not_valid_after_utc.timestamp(),
        not_before=cert.not_valid_before_utc.timestamp(),
        sans=sans,
        verified=verified,
    )
