"""The deployment files: the systemd unit (systemd-analyze verify), the Kubernetes manifests
and the docker-compose stack (structure, paths, and the Prometheus config through promtool).
No container engine, no cluster: what can be checked here is checked."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config.loader import parse_yaml

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "deploy" / "systemd" / "messaging-exporter.service"
KUBE = REPO / "deploy" / "kubernetes"
COMPOSE = REPO / "docker-compose.yml"
ROOTS = REPO / "signal-roots.pem"
NAME = "messaging-exporter"
CONFIG_PATH = "/etc/messaging-exporter/config.yaml"


# ---- systemd


def unit_settings() -> dict[str, list[str]]:
    """key -> every value of the unit (continuation lines joined)."""
    text = UNIT.read_text().replace("\\\n", " ")
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(" ".join(value.split()))
    return settings


def test_systemd_unit_is_sandboxed() -> None:
    s = unit_settings()
    for key, value in {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "CAP_NET_RAW",
        "AmbientCapabilities": "CAP_NET_RAW",
        "RestrictNamespaces": "yes",
        "ConfigurationDirectory": NAME,
    }.items():
        assert s[key] == [value], key
    (exec_start,) = s["ExecStart"]
    assert f"--config.file={CONFIG_PATH}" in exec_start.split()
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # the trade-off of CAP_SYS_ADMIN (netns) is documented where it would be turned on
    assert "CAP_SYS_ADMIN" in UNIT.read_text()
    assert "RestrictNamespaces=net" in UNIT.read_text()


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: apt-get install systemd"
    # verify checks that ExecStart exists: point it at this venv's entrypoint
    entrypoint = Path(sys.executable).parent / NAME
    assert entrypoint.exists(), f"{entrypoint}: pip install -e . first"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(f"/opt/{NAME}/bin/{NAME}", str(entrypoint)))
    proc = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_systemd_analyze_verify_catches_mistakes(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    unit = tmp_path / "bad.service"
    unit.write_text("[Service]\nExecStart=/bin/true\nProtectSystem=sideways\n")
    proc = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    # systemd 252 (Debian 12): "Failed to parse protect system value, ignoring: sideways";
    # 257 (Debian 13): "Failed to parse ProtectSystem=sideways, ignoring: Invalid argument".
    said = proc.stdout + proc.stderr
    assert "bad.service:3: Failed to parse " in said
    assert "sideways" in said


# ---- Kubernetes


def manifests() -> dict[str, dict[str, Any]]:
    """kind -> the manifest (one of each kind)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None or doc.get("kind") == "Kustomization":
                continue
            assert doc["kind"] not in out, doc["kind"]
            out[doc["kind"]] = doc
    return out


def test_kubernetes_kinds_and_kustomization() -> None:
    found = manifests()
    assert set(found) == {"ConfigMap", "Deployment", "Service", "ServiceMonitor"}
    assert found["ServiceMonitor"]["apiVersion"] == "monitoring.coreos.com/v1"
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    for doc in found.values():
        assert doc["metadata"]["name"] == NAME
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == NAME


def test_kubernetes_labels_ports_and_mounts_agree() -> None:
    m = manifests()
    deployment, service, monitor = m["Deployment"], m["Service"], m["ServiceMonitor"]
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )

    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 10053}
    (service_port,) = service["spec"]["ports"]
    assert (service_port["name"], service_port["port"], service_port["targetPort"]) == (
        "metrics",
        10053,
        "metrics",
    )
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert f"--config.file={CONFIG_PATH}" in container["args"]
    assert "--web.listen-address=:10053" in container["args"]

    # the config comes from the ConfigMap, mounted where --config.file points
    (mount,) = container["volumeMounts"]
    (volume,) = pod["spec"]["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["configMap"]["name"] == m["ConfigMap"]["metadata"]["name"]
    assert f"{mount['mountPath']}/config.yaml" == CONFIG_PATH

    # non-root, as the image's USER, nothing to escalate to
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert f"USER {security['runAsUser']}:{security['runAsGroup']}" in (
        (REPO / "Dockerfile").read_text()
    )
    container_security = container["securityContext"]
    assert container_security["allowPrivilegeEscalation"] is False
    assert container_security["readOnlyRootFilesystem"] is True
    assert container_security["capabilities"] == {"drop": ["ALL"]}


def test_kubernetes_configmap_is_a_valid_config(tmp_path: Path) -> None:
    """The ConfigMap's files, as the pod mounts them side by side, load as a config; Signal
    trusts the roots mounted beside it, the same file the repository ships."""
    data = manifests()["ConfigMap"]["data"]
    assert data["signal-roots.pem"] == ROOTS.read_text()
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    config = parse_yaml(data["config.yaml"], source="configmap", base_dir=tmp_path)
    assert set(config.services) == {"telegram", "signal", "whatsapp"}
    chat = config.services["signal"].endpoints["chat"]
    assert chat.tls.extra_ca_file == str(tmp_path / "signal-roots.pem")
    assert config.services["whatsapp"].endpoints["web"].http.status_ok(400)


def test_every_way_to_run_ships_the_signal_roots_beside_the_config() -> None:
    """config.yaml names signal-roots.pem relative to itself: wherever the config is put, the
    roots are put next to it."""
    roots = f"{Path(CONFIG_PATH).parent}/{ROOTS.name}"
    assert f"COPY {ROOTS.name} {roots}" in (REPO / "Dockerfile").read_text()
    exporter = compose()["services"]["exporter"]
    assert (ROOTS, roots) in bind_mounts(exporter)
    assert f"{CONFIG_PATH.rsplit('/', 1)[0]} config.yaml {ROOTS.name}" in UNIT.read_text()


# ---- docker compose


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            out.append((REPO / source, target))
    return out


def test_compose_services_and_mounts() -> None:
    services = compose()["services"]
    assert set(services) == {"exporter", "prometheus", "alertmanager", "grafana"}
    for name, service in services.items():
        if name != "exporter":
            image = service["image"]
            assert ":" in image
            assert not image.endswith(":latest"), name
        for source, target in bind_mounts(service):
            assert source.exists(), f"{name}: {source} does not exist"
            assert target.startswith("/")
    exporter = services["exporter"]
    assert exporter["build"] == "."
    assert f"--config.file={CONFIG_PATH}" in exporter["command"]
    assert any(target == CONFIG_PATH for _, target in bind_mounts(exporter))
    assert "10053:10053" in exporter["ports"]

    mounts = {target: source for source, target in bind_mounts(services["prometheus"])}
    assert mounts["/etc/prometheus/rules"] == REPO / "prometheus" / "rules"
    mounts = {target: source for source, target in bind_mounts(services["alertmanager"])}
    assert (
        mounts["/etc/alertmanager/alertmanager.yml"] == REPO / "alertmanager" / "alertmanager.yml"
    )

    # Grafana: the shipped dashboards where the shipped provider looks for them
    grafana = {target: source for source, target in bind_mounts(services["grafana"])}
    provider = yaml.safe_load(
        (REPO / "grafana" / "provisioning" / "dashboards" / "messaging.yml").read_text()
    )
    (dashboards_path,) = [p["options"]["path"] for p in provider["providers"]]
    assert grafana[dashboards_path] == REPO / "grafana" / "dashboards"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO / "grafana" / "dashboards" / Path(home).name).exists()
    assert home.startswith(dashboards_path + "/")
    datasources = yaml.safe_load(
        grafana["/etc/grafana/provisioning/datasources/prometheus.yml"].read_text()
    )
    assert [d["url"] for d in datasources["datasources"]] == ["http://prometheus:9090"]


def test_compose_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    services = compose()["services"]
    mounts = {target: source for source, target in bind_mounts(services["prometheus"])}
    source = mounts["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load(source.read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    (scrape,) = [j for j in config["scrape_configs"] if j["job_name"] == NAME]
    assert scrape["static_configs"][0]["targets"] == ["exporter:10053"]
    # the jobs the shipped rules match are jobs of this stack, or MessagingExporterAbsent
    # fires forever (it once did: the job was named "messaging")
    rules = (REPO / "prometheus" / "rules" / "messaging.rules.yml").read_text()
    matched = set(re.findall(r'job="([^"]+)"', rules))
    assert matched == {NAME}
    assert matched <= {j["job_name"] for j in config["scrape_configs"]}
    (am,) = config["alerting"]["alertmanagers"]
    assert am["static_configs"][0]["targets"] == ["alertmanager:9093"]
    # promtool with the container's paths made local
    local = tmp_path / "prometheus.yml"
    local.write_text(
        source.read_text().replace("/etc/prometheus/rules", str(REPO / "prometheus" / "rules"))
    )
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: apt-get install prometheus"
    proc = subprocess.run(
        [promtool, "check", "config", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 1 rule files found" in proc.stdout
    assert "messaging.rules.yml" in proc.stdout


def test_docker_compose_config() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    if version.returncode != 0:
        pytest.skip("the docker client has no compose plugin (checked structurally above)")
    proc = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
