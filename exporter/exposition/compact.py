"""How the store keeps each tuple's last observation: small, because it keeps one per tuple
for as long as the tuple is probed, and few of them are ever read whole (`/probes`).

The rest of the exporter sees plain observations. Only here are the log lines and the body's
first bytes deflated (zlib-ng at level 1: a few microseconds, where the standard library's
zlib spends ~50 us setting up its state), the response headers kept as one flat tuple (a pair
costs a 56-byte tuple; a real response has 10-20 headers) and the strings that repeat over
thousands of tuples (header names and values, URLs, DNS servers, TLS versions and ciphers)
interned. What this saves at 10,000 tuples is in docs/benchmarks.md and docs/exposition.md.

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
    return dataclasses.replace(http, url=sys.intern(http.url), headers=(), body_head=b"")


def _flat(headers: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return tuple(sys.intern(text) for pair in headers for text in pair)


@dataclass(frozen=True, slots=True)
class Kept:
    """One observation as kept: `bare` without its log, body head and response headers
    (strings interned); the first two are kept deflated beside it, the headers flat. `bare`
    answers every question but those three."""

    bare: Observation
    #: The log lines as deflated JSON (any character may be in a line).
    log: bytes
    #: The body's first bytes, deflated.
    body: bytes
    #: The response headers, flat: name, value, name, value...
    headers: tuple[str, ...] = ()

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
        if http is None:
            return cls(bare, log, b"")
        return cls(bare, log, _pack(http.body_head), _flat(http.headers))

    def observation(self, *, log: bool = True) -> Observation:
        """The observation as it was recorded (a new object at each call: keep it to reuse);
        without its log lines unless `log` (judging a round never reads them, and a round
        rebuilds every tuple's observation at once)."""
        bare = self.bare
        lines = tuple(json.loads(_unpack(self.log))) if log and self.log else ()
        http = bare.http
        if http is not None and (self.body or self.headers):
            flat = self.headers
            http = dataclasses.replace(
                http,
                body_head=_unpack(self.body),
                headers=tuple(zip(flat[::2], flat[1::2], strict=True)),
            )
        return dataclasses.replace(bare, log=lines, http=http)
