"""The benchmark's smoke test: `python -m benchmarks.bench --quick` runs every part on a tiny
matrix, both sides when blackbox_exporter is installed. No timing assertion (speed is measured
by the benchmark itself, docs/benchmarks.md): only that each part measured what it claims,
on probes that succeeded.

Needs root (the targets' DNS server listens on port 53 of a 127.77.x address, and
blackbox_exporter gets a mount namespace with its own /etc/resolv.conf).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLACKBOX = Path("/usr/bin/prometheus-blackbox-exporter")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the benchmark needs root (port 53, mount namespaces)"
)


def run_benchmark(module: str, *argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks.<module> argv...` from the checkout; it must exit 0."""
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_quick_benchmark_measures_every_part(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = run_benchmark("bench", "--quick", "--out", str(out), "--markdown", timeout=100)
    results = json.loads(out.read_text())
    assert results["blackbox"] is BLACKBOX.exists(), "blackbox_exporter installed but not run"

    cpu = results["cpu"]
    sides = ["exporter", "blackbox"] if results["blackbox"] else ["exporter"]
    for side in sides:
        rows = [r for r in cpu["rows"] if r["side"] == side]
        assert rows, side
        assert all(r["probes"] > 0 and r["cpu_seconds"] > 0 for r in rows), rows
        assert cpu[f"{side}_success_ratio"] == 1.0, (side, rows)
    if results["blackbox"]:
        assert cpu["ratio"] > 0

    (sustain,) = results["sustain"]["rows"]
    assert sustain["probes"] > 0
    assert sustain["successes"] == sustain["probes"]

    timing = results["timing"]["rows"]
    assert {r["side"] for r in timing} == set(sides)
    for row in timing:
        assert row["dns"]["samples"] > 0, row
        assert row["http"]["samples"] > 0, row
    for row in (r for r in timing if r["side"] == "exporter"):
        # every connect of a direct network has the kernel's RTT beside its wall-clock time
        assert row["kernel_rtt_ms"]["samples"] > 0, row
        assert row["connect_ms"]["samples"] > 0, row
        assert row["kernel_rtt_ms"]["p50"] <= row["connect_ms"]["p50"], row
    hold = results["targets_hold_error"]
    assert hold["dns"]["samples"] > 0
    assert hold["http"]["samples"] > 0

    (memory,) = results["memory"]["rows"]
    assert memory["bytes"] > 0
    assert memory["gzip_bytes"] > 0
    assert memory["rss_bytes"] > 0
    assert "| exporter |" in proc.stdout  # the markdown table


def test_bench_matrix_is_judged_a_working_one(tmp_path: Path) -> None:
    """The targets answer loopback addresses, which the judgement calls bogons: the benchmark's
    config declares them the service's own, so that a probe that passed is judged `ok` (the
    path a real matrix mostly takes), not `dns_tampered`."""
    from benchmarks.bench import Lab, exporter_config
    from exporter.config.loader import load
    from exporter.config.matrix import expand
    from exporter.judge.verdict import judge_round
    from exporter.model.judgement import Verdict
    from tests.fakes import observations as fake
    from tests.fakes.certs import make_pki

    make_pki(tmp_path)
    lab = Lab(directory=tmp_path, base="127.77.9", python=sys.executable, pin=False)
    config = load(exporter_config(lab, 4, 10.0, 0, resolvers=2, phase_histograms="endpoint"))
    keys = [t.key for t in expand(config)]
    assert len(keys) == 4, keys
    observations = [fake.ok(k, answers=(lab.https[i % 2],)) for i, k in enumerate(keys)]
    findings = judge_round(config, observations).findings
    assert {k: f.verdict for k, f in findings.items()} == dict.fromkeys(keys, Verdict.OK)


def test_quick_localisation_benchmark_measures_both_sides(tmp_path: Path) -> None:
    """benchmarks/localisation.py on a tiny matrix: with localisation the tuples behind the
    resetting router are tcp_blocked and TTL-limited packets were sent; without, they are down
    and none were."""
    out = tmp_path / "localisation.json"
    run_benchmark("localisation", "--quick", "--out", str(out), timeout=120)
    results = json.loads(out.read_text())
    on, off = results["rows"]
    failing = results["failing_tuples"]
    assert (on["localisation"], off["localisation"]) == (True, False)
    assert on["verdicts"].get("tcp_blocked") == failing, on
    assert off["verdicts"].get("down") == failing, off
    assert on["first_round_low_ttl_packets"] > 0
    assert off["first_round_low_ttl_packets"] == off["low_ttl_packets"] == 0
    assert on["probes"] > 0
    assert off["probes"] > 0
    assert on["cpu_seconds"] > 0


def test_exposition_benchmark_renders_the_same_text_both_ways() -> None:
    """benchmarks/exposition.py on a small store: both renderers measured, on texts of the
    same length (byte for byte equal is tests/test_collector.py's)."""
    proc = run_benchmark("exposition", "--tuples", "40", "--scrapes", "1", timeout=120)
    rows = json.loads(proc.stdout[: proc.stdout.rindex("]") + 1])
    (row,) = rows
    assert row["tuples"] == 40
    assert row["phase_histograms"] == "endpoint"
    assert row["own"]["bytes"] == row["stock"]["bytes"] > 0
    for side in ("own", "stock"):
        assert row[side]["first_scrape_s"] > 0
        assert row[side]["python_heap_bytes"] > 0
    assert "| 40 | endpoint | own |" in proc.stdout


def test_quick_protocols_benchmark_measures_every_check(tmp_path: Path) -> None:
    """benchmarks/protocols.py, tiny: the stun check against coturn, and tcp alone and
    tcp + mtproto in both forms against the look-alike data centre, every probe answered."""
    out = tmp_path / "protocols.json"
    proc = run_benchmark("protocols", "--quick", "--out", str(out), "--markdown", timeout=100)
    results = json.loads(out.read_text())
    summary = results["summary"]
    assert set(summary) == {"stun", "tcp", "mtproto-obfuscated", "mtproto-intermediate"}
    for name, row in summary.items():
        assert row["probes"] == results["probes"] * results["runs"] > 0, name
        assert row["success_ratio"] == 1.0, (name, row)
        assert row["cpu_ms_per_probe"]["min"] > 0, (name, row)
        assert row["probes_per_second"]["min"] > 0, (name, row)
    assert len(results["rows"]) == 4 * results["runs"]
    assert "| stun: " in proc.stdout  # the markdown table


@pytest.mark.skipif(
    not all(
        Path(p).exists()
        for p in ("/usr/sbin/nginx", "/usr/sbin/unbound", "/usr/bin/prometheus", str(BLACKBOX))
    ),
    reason="benchmarks/fair.py needs nginx, unbound, prometheus and blackbox_exporter",
)
def test_quick_fair_benchmark_measures_every_row(tmp_path: Path) -> None:
    """benchmarks/fair.py, tiny: blackbox_exporter driven by a real Prometheus, by the threaded
    loop and by load.py, and the exporter, all probing nginx (TLS 1.2 and 1.3, RSA and ECDSA)
    through unbound; every row measured its own CPU on probes that all succeeded."""
    out = tmp_path / "fair.json"
    proc = run_benchmark("fair", "--quick", "--out", str(out), "--markdown", timeout=150)
    results = json.loads(out.read_text())
    summary = results["summary"]
    sides = ["blackbox-prometheus", "blackbox-threaded", "blackbox-aiohttp", "exporter"]
    assert set(summary) == set(sides)
    assert {r["side"] for r in results["rows"]} == set(sides)
    for side in sides:
        row = summary[side]
        assert row["probes"] > 0, (side, row)
        assert row["success_ratio"] == 1.0, (side, row)
        assert row["cpu_ms_per_probe"]["min"] > 0, (side, row)
        assert row["targets_ms_per_probe"]["median"] >= 0, (side, row)
    for side in sides[:3]:
        assert summary[side]["exporter_ratio"] > 0, side
        assert summary[side]["driver_ms_per_probe"]["median"] >= 0, side
    assert "| blackbox (Prometheus) |" in proc.stdout  # the markdown table
    assert "| exporter |" in proc.stdout


@pytest.mark.skipif(
    not all(Path(p).exists() for p in ("/usr/sbin/nginx", "/usr/sbin/unbound")),
    reason="benchmarks/fair.py needs nginx and unbound",
)
def test_quick_fair_benchmark_alternates_a_baseline_tree(tmp_path: Path) -> None:
    """`--baseline DIR` runs that checkout's exporter as a row of its own beside this one's,
    with the ratio turn by turn: here this very tree, so both rows probe alike."""
    out = tmp_path / "fair.json"
    argv = ["--quick", "--sides", "exporter", "--baseline", str(ROOT), "--out", str(out)]
    proc = run_benchmark("fair", *argv, "--markdown", timeout=150)
    results = json.loads(out.read_text())
    assert results["sides"] == ["exporter", "baseline"]
    assert {r["side"] for r in results["rows"]} == {"exporter", "baseline"}
    baseline = results["summary"]["baseline"]
    assert baseline["success_ratio"] == 1.0, baseline
    assert baseline["exporter_ratio"] > 0, baseline
    assert results["baseline"] == {"tree": str(ROOT), "python": sys.executable}
    assert "| exporter (baseline) |" in proc.stdout
    assert f"exporter (baseline): the exporter of `{ROOT}`" in proc.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sides", "exporter,nginx"], "--sides: nginx: not of blackbox-prometheus"),
        (["--sides", ","], "--sides: none: not of"),
        (["--baseline", "/nonexistent"], "--baseline: /nonexistent holds no exporter/__main__.py"),
    ],
)
def test_fair_benchmark_refuses_bad_sides_and_baselines(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.fair import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(
    not all(Path(p).exists() for p in ("/usr/sbin/nginx", "/usr/sbin/unbound")),
    reason="benchmarks/interpreters.py needs nginx and unbound",
)
def test_quick_interpreters_benchmark_measures_each_interpreter(tmp_path: Path) -> None:
    """benchmarks/interpreters.py, tiny: the probe loop on this interpreter and on another
    command (here the same one through `env`), each in a process of its own, every probe a
    success on the real nginx and unbound targets."""
    out = tmp_path / "interpreters.json"
    other = f"env {sys.executable}"
    argv = ["--quick", "--python", other, "--out", str(out), "--markdown"]
    proc = run_benchmark("interpreters", *argv, timeout=150)
    results = json.loads(out.read_text())
    assert [r["interpreter"] for r in results["rows"]] == [sys.executable, other]
    for row in results["rows"]:
        assert row["dispatch"] == "loop"
        assert row["successes"] == row["probes"] > 0, row
        assert row["cpu_ms_per_probe"] > 0, row
    summary = results["summary"]
    assert summary[sys.executable]["ratio_to_this"] == 1.0
    assert summary[other]["ratio_to_this"] > 0
    assert f"| {sys.version.split()[0]} |" in proc.stdout  # the markdown table


@pytest.mark.skipif(
    not all(Path(p).exists() for p in ("/usr/sbin/nginx", "/usr/sbin/unbound")),
    reason="benchmarks/interpreters.py needs nginx and unbound",
)
def test_quick_interpreters_benchmark_through_the_scheduler(tmp_path: Path) -> None:
    """`--scheduled`: the probes dispatched by the exporter's scheduler and kept by its store
    and collector, every one counted and a success."""
    out = tmp_path / "interpreters.json"
    run_benchmark("interpreters", "--quick", "--scheduled", "--out", str(out), timeout=150)
    (row,) = json.loads(out.read_text())["rows"]
    assert row["dispatch"] == "scheduler"
    assert row["successes"] == row["probes"] > 0, row
    assert row["cpu_ms_per_probe"] > 0, row


def test_interpreters_benchmark_refuses_bad_counts(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.interpreters import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args(["--probes", "0"])
    assert exc.value.code == 2
    assert "--probes: 0 is not a positive count" in capsys.readouterr().err
