"""A prober that opens no socket: it sleeps on a (fake) clock and returns made-up observations.

Behaviour per target is chosen by callables, so one fake covers slow, failing, hanging and
broken probers. It records every call, how many ran at once, and any overlap of a tuple with
itself, for the scheduler tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.config.matrix import Target
from exporter.config.model import Check, Config, Endpoint, Network, Resolver, ResolverType, Service
from exporter.model.observation import (
    Certificate,
    ConnectAttempt,
    DnsObservation,
    ErrorKind,
    HttpObservation,
    Observation,
    Phase,
    TlsObservation,
    TupleKey,
)
from tests.fakes.clock import FakeClock

#: NotAfter of the fake certificate, unix seconds (2030-01-01T00:00:00Z).
CERT_NOT_AFTER = 1_893_456_000.0


def make_observation(
    key: TupleKey,
    *,
    error: ErrorKind | None = None,
    started: float = 1_700_000_000.0,
    total: float = 0.1,
) -> Observation:
    """A complete-looking observation: DNS, one connect, TLS with a certificate, HTTP 200.

    On error, the failure is put in the connect phase (phases after it did not run).
    """
    dns = DnsObservation(
        qname=f"{key.endpoint}.example",
        qtype="A" if key.family == 4 else "AAAA",
        server="udp://127.0.0.1:53",
        rcode="NOERROR",
        # Public-looking look-alike addresses: facts only, no socket ever goes there.
        answers=("91.108.56.10",) if key.family == 4 else ("2001:67c:4e8::10",),
        ttl=300,
        duration=total * 0.1,
    )
    address = dns.answers[0]
    if error is not None:
        return Observation(
            key=key,
            started=started,
            finished=started + total,
            error=error,
            failed_phase=Phase.CONNECT,
            phases=MappingProxyType({Phase.DNS: total * 0.1, Phase.TOTAL: total}),
            dns=dns,
            connects=(
                ConnectAttempt(
                    address=address, port=443, error=error, detail="made up", duration=total * 0.9
                ),
            ),
            log=("fake probe", f"failed: {error.value}"),
        )
    cert = Certificate(
        subject="CN=fake.example",
        issuer="CN=Fake CA",
        not_after=CERT_NOT_AFTER,
        not_before=1_600_000_000.0,
        sans=("fake.example",),
        verified=True,
    )
    return Observation(
        key=key,
        started=started,
        finished=started + total,
        phases=MappingProxyType(
            {
                Phase.DNS: total * 0.1,
                Phase.CONNECT: total * 0.2,
                Phase.TLS: total * 0.3,
                Phase.HTTP: total * 0.4,
                Phase.TOTAL: total,
            }
        ),
        dns=dns,
        connects=(
            ConnectAttempt(address=address, port=443, duration=total * 0.2, rtt=total * 0.1),
        ),
        address=address,
        tls=TlsObservation(
            server_name="fake.example",
            version="TLSv1.3",
            cipher="TLS_AES_128_GCM_SHA256",
            alpn="http/1.1",
            certificate=cert,
            duration=total * 0.3,
        ),
        http=HttpObservation(
            method="GET",
            url="https://fake.example/",
            status=200,
            reason="OK",
            headers=(("content-type", "text/plain"),),
            body_bytes=2,
            body_head=b"ok",
            duration=total * 0.4,
        ),
        log=("fake probe", "success"),
    )


@dataclass(slots=True)
class Call:
    key: TupleKey
    started: float  # clock.monotonic() at the call
    ended: float | None = None


def _never(target: Target) -> bool:
    return False


def _no_error(target: Target) -> ErrorKind | None:
    return None


@dataclass(slots=True, kw_only=True)
class FakeProber:
    """`duration` fake seconds per probe (0: return at once; needs `clock` otherwise)."""

    clock: FakeClock | None = None
    duration: Callable[[Target], float] = lambda target: 0.0
    error: Callable[[Target], ErrorKind | None] = _no_error
    hang: Callable[[Target], bool] = _never  # sleep until cancelled
    raises: Callable[[Target], bool] = _never  # break the never-raise contract
    config: Config | None = None
    calls: list[Call] = field(default_factory=list)
    active: dict[TupleKey, int] = field(default_factory=dict)
    running: int = 0
    max_running: int = 0
    overlaps: list[TupleKey] = field(default_factory=list)
    cancelled: int = 0
    closed: bool = False

    async def probe(self, target: Target) -> Observation:
        assert not self.closed, "probe() on a closed prober"
        key = target.key
        now = self.clock.monotonic() if self.clock else 0.0
        call = Call(key=key, started=now)
        self.calls.append(call)
        if self.active.get(key):
            self.overlaps.append(key)
        self.active[key] = self.active.get(key, 0) + 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.hang(target):
                await asyncio.Event().wait()
            seconds = self.duration(target)
            if seconds > 0:
                assert self.clock is not None, "a fake prober with a duration needs a clock"
                await self.clock.sleep(seconds)
            if self.raises(target):
                raise RuntimeError("fake prober broke its contract")
            started = self.clock.time() - seconds if self.clock else 1_700_000_000.0
            return make_observation(
                key, error=self.error(target), started=started, total=max(seconds, 0.1)
            )
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
            self.active[key] -= 1
            call.ended = self.clock.monotonic() if self.clock else 0.0

    async def aclose(self) -> None:
        self.closed = True


def factory(**kwargs: object) -> tuple[Callable[[Config], FakeProber], list[FakeProber]]:
    """A prober factory building FakeProbers with `kwargs`, and the list of those built."""
    built: list[FakeProber] = []

    def make(config: Config) -> FakeProber:
        prober = FakeProber(config=config, **kwargs)  # type: ignore[arg-type]  # test helper
        built.append(prober)
        return prober

    return make, built


def make_config(
    *,
    endpoints: int = 3,
    services: tuple[str, ...] = ("svc",),
    networks: tuple[str, ...] = ("direct",),
    resolvers: tuple[str, ...] = ("r1",),
    families: tuple[int, ...] = (4,),
    interval: float = 60.0,
    timeout: float = 10.0,
    concurrency: int = 64,
    port: int = 443,
) -> Config:
    """A config of `services` x `endpoints` hosts probed through every network, resolver
    and family: `len(services) * endpoints * len(networks) * len(resolvers) * len(families)`
    tuples. Only a fake prober should ever see it."""
    resolver_map = {
        name: Resolver(name=name, type=ResolverType.UDP, address="127.0.0.1", port=53)
        for name in resolvers
    }
    network_map = {name: Network(name=name) for name in networks}
    service_map = {
        s: Service(
            name=s,
            endpoints=MappingProxyType(
                {
                    f"e{i}": Endpoint(
                        service=s,
                        name=f"e{i}",
                        host=f"e{i}.{s}.example",
                        address=None,
                        port=port,
                        checks=(Check.DNS, Check.TCP, Check.TLS, Check.HTTP),
                        resolvers=resolvers,
                        networks=networks,
                        families=families,
                    )
                    for i in range(endpoints)
                }
            ),
        )
        for s in services
    }
    return Config(
        interval=interval,
        timeout=timeout,
        concurrency=concurrency,
        ip_families=families,
        resolvers=MappingProxyType(resolver_map),
        networks=MappingProxyType(network_map),
        services=MappingProxyType(service_map),
    )
