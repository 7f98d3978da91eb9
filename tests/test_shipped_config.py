"""The shipped config.yaml as a user meets it: every commented example passes
`messaging-exporter check` once uncommented, and the catalogue holds what OONI's published
tests measure (ts-018 WhatsApp, ts-019 Messenger, ts-020 Telegram, ts-029 Signal) with the
detection features the docs describe.

The examples name a source address, an interface and a namespace that this machine does not
have, and `check` refuses a network the host lacks. So each check runs under `unshare --net
--mount` in a private network and mount namespace where the test makes them (a veth named
wg0, 192.0.2.10 on lo, a namespace `vpn` in a private /run/netns): nothing is added to the
machine's own namespaces, and `check` sends no packet.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from exporter.config.loader import load, parse_yaml
from exporter.config.matrix import expand, skipped
from exporter.config.model import Check
from exporter.judge.throttling import throttle_reason
from exporter.model.observation import MtprotoTransport
from tests.fakes.observations import key, ok, with_rate

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.yaml"
ROOTS = REPO / "signal-roots.pem"

#: What the examples need on the host, made inside the private namespaces.
HOST_SETUP = (
    "mount --make-rprivate / && mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns"
    " && ip link set lo up && ip link add wg0 type veth peer name wg0p"
    " && ip addr add 192.0.2.10/32 dev lo && ip netns add vpn"
)

#: SHA-256 fingerprints of the shipped Signal roots (docs/configuration.md#signal).
SIGNAL_ROOTS = {
    "DD:B0:F9:2B:B9:5C:8D:6F:D2:02:EA:6E:8C:C5:CC:D1:82:B5:44:F8:CD:69:6F:47:D5:80:65:9D:DC:9D:F6:5A",
    "26:42:F1:F9:0B:38:9F:ED:25:58:D7:32:4C:A2:6D:70:E7:50:B0:6F:87:C5:95:C5:DE:95:5E:25:60:82:16:57",
}


def examples() -> list[str]:
    """The networks the shipped config shows commented out (`  # name: {...}`)."""
    text = CONFIG.read_text()
    block = text[text.index("\nnetworks:\n") : text.index("\ncanaries:\n")]
    return re.findall(r"^  # ([a-z0-9][a-z0-9_.-]*): \{", block, flags=re.MULTILINE)


def uncommented(names: list[str]) -> str:
    text = CONFIG.read_text()
    for name in names:
        text = text.replace(f"  # {name}: {{", f"  {name}: {{", 1)
    return text


def check_in_private_namespaces(tmp_path: Path, text: str, *, setup: bool) -> tuple[int, str]:
    """`messaging-exporter check` on `text` (with signal-roots.pem beside it), in a private
    network and mount namespace, with or without the examples' interface, address and
    namespace made there."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("this test needs root, util-linux's unshare and iproute2 (CI has them)")
    path = tmp_path / "config.yaml"
    path.write_text(text)
    shutil.copy(ROOTS, tmp_path / ROOTS.name)
    check = f"{sys.executable} -m exporter check --config.file={path}"
    # (lo up in both cases: with no interface up, Linux lets any address be bound.)
    script = f"{HOST_SETUP} && {check}" if setup else f"ip link set lo up && {check}"
    proc = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_the_examples_are_the_documented_ones() -> None:
    assert examples() == ["uplink-b", "wg0", "tor", "vpn"]


@pytest.mark.parametrize("example", [*examples(), "all"])
def test_every_commented_example_passes_check(tmp_path: Path, example: str) -> None:
    names = examples() if example == "all" else [example]
    status, output = check_in_private_namespaces(tmp_path, uncommented(names), setup=True)
    assert status == 0, output
    first, *notes = output.splitlines()
    assert first.startswith(f"{tmp_path / 'config.yaml'}: OK, 5 services, ")
    assert f" {1 + len(names)} networks, " in first
    for line in notes:
        assert line.startswith("  left out of the matrix: "), line


@pytest.mark.parametrize(
    ("example", "line"),
    [
        ("uplink-b", "networks.uplink-b.source_address: 192.0.2.10 is not an address of this host"),
        ("wg0", 'networks.wg0.interface: no such interface "wg0"'),
        ("vpn", 'networks.vpn.netns: no such network namespace "vpn"'),
    ],
)
def test_an_example_naming_what_the_host_lacks_is_refused(
    tmp_path: Path, example: str, line: str
) -> None:
    status, output = check_in_private_namespaces(tmp_path, uncommented([example]), setup=False)
    assert (status, output) == (1, line + "\n")


# --- the catalogue -----------------------------------------------------------------------------


def test_signal_is_verified_against_its_own_roots() -> None:
    """Every Signal endpoint trusts the public roots plus signal-roots.pem (OONI ts-029), and
    the file holds exactly the documented roots, valid today."""
    config = load(CONFIG)
    endpoints = config.services["signal"].endpoints
    assert {"chat", "cdsi", "storage", "sfu", "cdn"} <= set(endpoints)
    for endpoint in endpoints.values():
        if Check.TLS not in endpoint.checks:
            continue  # the call relay: STUN, no TLS
        assert endpoint.tls.ca_file is None  # added to the public roots, not replacing them
        assert endpoint.tls.extra_ca_file == str(ROOTS)
        assert not endpoint.tls.insecure_skip_verify
    roots = x509.load_pem_x509_certificates(ROOTS.read_bytes())
    assert {c.fingerprint(hashes.SHA256()).hex(":").upper() for c in roots} == SIGNAL_ROOTS
    for cert in roots:
        assert cert.subject == cert.issuer  # self-signed roots
        assert cert.not_valid_after_utc.year >= 2032


def test_messenger_matches_ts019() -> None:
    endpoints = load(CONFIG).services["messenger"].endpoints
    hosts = {e.host: e.checks for e in endpoints.values()}
    tcp_tls = (Check.DNS, Check.TCP, Check.TLS)
    for host in (
        "b-api.facebook.com",
        "b-graph.facebook.com",
        "edge-mqtt.facebook.com",
        "external.xx.fbcdn.net",
        "scontent.xx.fbcdn.net",
        "star.c10r.facebook.com",
    ):
        assert hosts[host] == tcp_tls, host
    # ts-019 resolves it; a Binding request checks the call path too
    assert hosts["stun.fbsbx.com"] == (Check.DNS, Check.STUN)


def test_calls_and_telegrams_protocol_are_measured() -> None:
    """The call path (STUN) of the services whose relays are documented, UDP canaries of
    two operators, and every IPv4 data centre's MTProto in the obfuscated form, with DC2 in
    the plain form as well."""
    config = load(CONFIG)
    stun = {(e.service, e.host, e.port) for e in config.endpoints() if Check.STUN in e.checks}
    assert stun == {
        ("messenger", "stun.fbsbx.com", 3478),
        ("signal", "turn3.voip.signal.org", 3478),
        ("canary", "stun.l.google.com", 19302),
        ("canary", "stun.cloudflare.com", 3478),
    }
    telegram = config.services["telegram"].endpoints
    mtproto = {
        (e.address, e.port, e.mtproto.transport, e.mtproto.dc)
        for e in telegram.values()
        if Check.MTPROTO in e.checks
    }
    obfuscated = {(a, p, d) for a, p, t, d in mtproto if t is MtprotoTransport.OBFUSCATED}
    assert obfuscated == {
        ("149.154.175.50", 443, 1),
        ("149.154.167.51", 443, 2),
        ("149.154.175.100", 443, 3),
        ("149.154.167.91", 443, 4),
        ("149.154.171.5", 443, 5),
    }
    assert ("149.154.167.51", 443, MtprotoTransport.INTERMEDIATE, 2) in mtproto


def test_whatsapp_web_reads_its_400_as_reached() -> None:
    """web.whatsapp.com answers 400 when the User-Agent does not match the TLS client
    (ts-018): that is the service answering, not an outage."""
    endpoints = load(CONFIG).services["whatsapp"].endpoints
    assert endpoints["web"].http.status_ok(400)
    assert endpoints["web"].http.status_ok(200)


def test_telegram_ipv6_dcs_run_only_with_ipv6() -> None:
    text = CONFIG.read_text()
    v4 = parse_yaml(text, base_dir=REPO)
    v6 = [e for e in v4.services["telegram"].endpoints.values() if e.address and ":" in e.address]
    assert len(v6) == 10  # five DCs (tdesktop's kBuiltInDcsIPv6) x ports 80 and 443
    assert not any(":" in (t.endpoint.address or "") for t in expand(v4))
    assert any("IPv6 is not in ip_families" in line for line in skipped(v4))
    both = parse_yaml(text.replace("ip_families: [4]", "ip_families: [4, 6]"), base_dir=REPO)
    probed = {t.key.endpoint for t in expand(both) if t.key.family == 6}
    assert {e.name for e in v6} <= probed
    for endpoint in v6:
        assert endpoint.address is not None
        address = ipaddress.ip_address(endpoint.address)
        assert any(address in net for net in endpoint.expected_networks), endpoint.name


def test_the_detection_features_are_in_use() -> None:
    config = load(CONFIG)
    endpoints = [e for e in config.endpoints() if e.service != "canary"]
    assert config.services["canary"].endpoints
    assert any(e.control_sni for e in endpoints)
    assert any(Check.THROUGHPUT in e.checks for e in endpoints)
    assert any(Check.QUIC in e.checks for e in endpoints)
    assert any(r.silent for r in config.resolvers.values())
    assert any(r.identity is not None for r in config.resolvers.values())


def test_meta_answers_are_expected_where_no_handshake_can_vouch() -> None:
    """WhatsApp's chat endpoints and Messenger's STUN name have no tls check, so only
    expected_networks keeps a geo-DNS answer from reading as a lie: Meta's and AWS Global
    Accelerator's prefixes are there, and nothing a national filter answers is."""
    config = load(CONFIG)
    whatsapp = config.services["whatsapp"].endpoints["e1-443"].expected_networks
    messenger = config.services["messenger"].endpoints["stun"].expected_networks
    for nets, inside in (
        (whatsapp, ("157.240.9.53", "31.13.72.52", "13.248.169.48", "2a03:2880:f20f:c5::")),
        (messenger, ("157.240.1.35", "2a03:2880:f003:c07:face:b00c::2")),
    ):
        for address in inside:
            assert any(ipaddress.ip_address(address) in n for n in nets), address
        for address in ("10.10.34.35", "195.175.254.2", "5.3.3.17", "8.7.198.45"):
            assert not any(ipaddress.ip_address(address) in n for n in nets), address


def test_the_shipped_throttling_floor_spares_a_busy_link_and_catches_a_censors_rate() -> None:
    """One network: a download falling from ~2 MiB/s to 400 KiB/s (the box's own link busy)
    is not `throttled`; one held at 17 KiB/s (Russia's 2021 throttling, ~140 kbit/s) is."""
    config = load(str(CONFIG))
    assert config.throttling.min_bytes_per_second == 64 * 1024
    k = key("default", "cloudflare-doh", "signal", "updates")
    baseline = {k: (2.0 * 1024 * 1024,) * 10}
    busy = with_rate(ok(k), 400 * 1024)
    censored = with_rate(ok(k), 17 * 1024)
    assert throttle_reason(busy, [], baseline, config) is None
    assert throttle_reason(censored, [], baseline, config) is not None
