"""Shared fixtures: a fake clock, and an App on a YAML config with fake probers.

Keep this small; fakes live in tests/fakes/.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.config.loader import load
from exporter.runtime.app import App, Settings
from tests.fakes.clock import FakeClock
from tests.fakes.prober import FakeProber, factory

#: Three tuples: telegram/web and signal/chat through resolver "local", telegram/dc1 by address.
CONFIG_YAML = """\
interval: 60s
timeout: 5s
resolvers:
  local: {type: udp, address: 127.0.0.1, port: 5353}
networks:
  direct: {}
services:
  telegram:
    endpoints:
      web: {host: web.telegram.example, port: 443, checks: [dns, tcp, tls, http]}
      dc1: {address: 127.0.0.1, port: 443, checks: [tcp]}
  signal:
    endpoints:
      chat: {host: chat.signal.example, port: 443, checks: [dns, tcp, tls]}
"""

AppFactory = Callable[..., tuple[App, list[FakeProber]]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(tmp_path: Path, clock: FakeClock) -> AppFactory:
    """`make_app(yaml=CONFIG_YAML, lifecycle=False, **FakeProber fields)` -> (App, probers
    built so far); the config file is tmp_path/config.yaml, the web server 127.0.0.1:0."""

    def make(
        yaml: str = CONFIG_YAML, *, lifecycle: bool = False, **prober: object
    ) -> tuple[App, list[FakeProber]]:
        path = tmp_path / "config.yaml"
        path.write_text(yaml)
        prober_factory, built = factory(clock=clock, **prober)
        app = App(
            settings=Settings(
                config_file=str(path),
                listen_host="127.0.0.1",
                listen_port=0,
                enable_lifecycle=lifecycle,
            ),
            config=load(path),
            prober_factory=prober_factory,
            clock=clock,
            rng=random.Random(1),
        )
        return app, built

    return make
