"""How the store keeps each tuple's last observation: small, because it keeps one per tuple
for as long as the tuple is probed, and few of them are ever read whole (`/probes`).

The rest of the exporter sees plain observations. Only here are the log lines and the body's
first bytes deflated (zlib-ng at level 1: a few microseconds, where the standard library's
zlib spends ~50 us setting up its state) and the strings that repeat over thousands of tuples
(header names and values, URLs, DNS servers, TLS versions and ciphers) interned. What this
saves at 10,000 tuples is in docs/benchmarks.md and docs/exposition.md.

Invariant: `Kept.of(obs).observation() == obs` for every observation.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass

from zlib_ng import zlib_ng

from exporter.model.observation import (
    DnsObservation,
    HttpObservation,
    Observation,
    TlsObservation,
)


def _pack(data: bytes) -> bytes:
    return zlib_ng.compress(data, 1) if data else b""


def _unpack(packed: bytes) -> bytes:
    return zlib_ng.decompress(packed) if packed else b""


def _intern(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def _dns(dns: DnsObservation | None) -> DnsObservation | None:
    if dns is None:
        return None
    return dataclasses.replace(
        dns, server=sys.intern(dns.server), answers=tuple(map(sys.intern, dns.answers))
    )


def _tls(tls: TlsObservation | None) -> TlsObservation | None:
    if tls is None:
        return None
    return dataclasses.replace(
        tls, version=_intern(tls.version), cipher=_intern(tls.cipher), alpn=_intern(tls.alpn)
    )


def _http(http: HttpObservation) -> HttpObservation:
    headers = tuple((sys.intern(name), sys.intern(value)) for name, value in http.headers)
    return dataclasses.replace(http, url=sys.intern(http.url), headers=headers, body_head=b"")


@dataclass(frozen=True, slots=True)
class Kept:
    """One observation as kept: `bare` without its log and body head (strings interned),
    which are kept deflated beside it. `bare` answers every question but those two."""

    bare: Observation
    #: The log lines as deflated JSON (any character may be in a line).
    log: bytes
    #: The body's first bytes, deflated.
    body: bytes

    @classmethod
    def of(cls, obs: Observation) -> Kept:
        http = obs.http
        bare = dataclasses.replace(
            obs,
            log=(),
            dns=_dns(obs.dns),
            tls=_tls(obs.tls),
            control=_tls(obs.control),
            http=None if http is None else _http(http),
        )
        log = _pack(json.dumps(obs.log).encode()) if obs.log else b""
        body = b"" if http is None else _pack(http.body_head)
        return cls(bare, log, body)

    def observation(self, *, log: bool = True) -> Observation:
        """The observation as it was recorded (a new object at each call: keep it to reuse);
        without its log lines unless `log` (judging a round never reads them, and a round
        rebuilds every tuple's observation at once)."""
        bare = self.bare
        lines = tuple(json.loads(_unpack(self.log))) if log and self.log else ()
        http = bare.http
        if http is not None and self.body:
            http = dataclasses.replace(http, body_head=_unpack(self.body))
        return dataclasses.replace(bare, log=lines, http=http)
