"""A real scrape passes `promtool check metrics` without a single lint message."""

from __future__ import annotations

import asyncio
import shutil

import aiohttp
import pytest

from exporter.config.matrix import Target
from exporter.model.observation import ErrorKind
from tests.conftest import CONFIG_YAML, AppFactory
from tests.fakes.clock import FakeClock


def _refuse_dc1(target: Target) -> ErrorKind | None:
    """dc1 refused on `other` only: judged tcp_blocked there (it connects on `direct`), so the
    scrape has a blocked service's series too."""
    return (
        ErrorKind.REFUSED if (target.key.endpoint, target.key.network) == ("dc1", "other") else None
    )


#: The shared config with a second network, so that a service can be judged blocked.
TWO_NETWORKS = CONFIG_YAML.replace("  direct: {}\n", "  direct: {}\n  other: {}\n")


async def promtool_check(exposition: bytes) -> tuple[int, str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, (
        "promtool is not installed (needed to lint /metrics): install the Prometheus "
        "package that ships it, e.g. `apt-get install prometheus`"
    )
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(exposition)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.mark.parametrize("phase_histograms", ["tuple", "endpoint", "none"])
async def test_promtool_finds_nothing_to_lint(
    make_app: AppFactory, clock: FakeClock, phase_histograms: str
) -> None:
    assert TWO_NETWORKS != CONFIG_YAML
    yaml = TWO_NETWORKS + f"metrics: {{phase_histograms: {phase_histograms}}}\n"
    app, _ = make_app(yaml, error=_refuse_dc1, duration=lambda t: 0.3)
    addresses = await app.start()
    try:
        host, port = addresses[0]
        assert host == "127.0.0.1"
        await clock.run_until(lambda: app.scheduler.ready, limit=120.0)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            assert resp.status == 200
            body = await resp.read()
    finally:
        await app.stop()
    # the scrape covers every kind of series
    histograms = b"messaging_probe_phase_seconds_bucket{" in body
    assert histograms is (phase_histograms != "none")
    for name in (
        b"messaging_probe_success{",
        b'result="refused"',
        b"messaging_tls_cert_not_after_timestamp_seconds{",
        b"messaging_exporter_build_info{",
        b"messaging_exporter_probe_start_lag_seconds_bucket{",
        b'messaging_service_blocked{network="other",service="telegram"} 1.0',
        b'messaging_service_blocked_method{method="tcp_blocked",network="other",service="telegram"}',
        b'messaging_service_blocked_since_timestamp_seconds{network="other",service="telegram"}',
        # the process, as every exporter built on prometheus_client shows it
        b"process_cpu_seconds_total ",
        b"process_resident_memory_bytes ",
        b"process_open_fds ",
        b"process_start_time_seconds ",
        b"python_info{",
        b"python_gc_objects_collected_total{",
    ):
        assert name in body
    status, output = await promtool_check(body)
    assert output == ""
    assert status == 0


async def test_promtool_catches_a_lint_problem() -> None:
    # The check above only means something if promtool does lint what it is fed.
    _status, output = await promtool_check(
        b"# HELP bad_metric_count A counter.\n# TYPE bad_metric_count counter\nbad_metric_count 1\n"
    )
    assert 'counter metrics should have "_total" suffix' in output
