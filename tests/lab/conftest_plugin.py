"""The `lab` fixture: one censorship lab per test session (building it costs a few seconds).

Use it from a test module with `pytest_plugins = ("tests.lab.conftest_plugin",)`. On a
machine that cannot run the lab (not root, no `ip`/`nft`) the tests FAIL with the reason:
CI runs as root with iproute2 and nftables, so a skip would only hide a broken CI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.topology import Lab, LabUnavailable, check_host


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    try:
        check_host()
    except LabUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    built = Lab.start(tmp_path_factory.mktemp("lab"))
    try:
        yield built
    finally:
        built.shutdown()
