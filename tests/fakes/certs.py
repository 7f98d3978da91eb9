"""Test certificates from trustme: a CA the exporter is told to trust, and a foreign CA it is
not (a stand-in for a TLS-intercepting middlebox)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True, slots=True)
class Pki:
    ca: trustme.CA
    ca_file: Path  # PEM of the CA, for `tls.ca_file` / `extra_ca_file`

    def server_context(self, *names: str, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
        """A server context presenting a certificate for `names` (DNS names or IPs)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*names).configure_cert(ctx)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx

    def cert_files(self, *names: str, directory: Path) -> tuple[Path, Path]:
        """(chain PEM, key PEM) files for servers that want paths (e.g. aioquic)."""
        leaf = self.ca.issue_cert(*names)
        stem = "-".join(n.replace(":", "_") for n in names)
        chain = directory / f"{stem}.chain.pem"
        key = directory / f"{stem}.key.pem"
        chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        return chain, key


def make_pki(directory: Path, name: str = "ca") -> Pki:
    ca = trustme.CA()
    ca_file = directory / f"{name}.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Pki(ca=ca, ca_file=ca_file)
