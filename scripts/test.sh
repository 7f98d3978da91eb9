#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian/Ubuntu machine, then lint, type-check
# and run the whole suite (unit, lab and end-to-end). Needs root: the tests make network
# namespaces, and apt-get installs the real servers they talk to.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(
    python3-venv   # the virtualenv the suite runs in
    iproute2       # ip netns / veth for namespace networks and the lab
    nftables       # the lab's censoring middleboxes
    prometheus     # promtool check metrics on a real scrape
    prometheus-alertmanager  # amtool and a real Alertmanager for the shipped routing
    microsocks     # a real SOCKS5 server for proxy networks
    faketime       # libfaketime: the exporter's wall clock jumping (tests/test_faults.py)
    systemd        # systemd-analyze verify of deploy/systemd/messaging-exporter.service
    prometheus-blackbox-exporter  # the other side of benchmarks/ (tests/test_benchmark.py)
    util-linux     # unshare (blackbox_exporter's own resolv.conf) and taskset, for benchmarks/
    chromium       # Debian's headless browser: the status page after a lab round
    chromium-driver  # chromedriver: WebDriver on loopback, so the test really clicks
    fonts-dejavu-core  # a font with the page's icons (✓ ✗ ↓), so they render
    gzip           # a second gzip reader of /metrics (tests/test_deflate.py)
    coturn         # turnserver: a real STUN server for the stun check (tests/test_stun.py)
    nginx          # real HTTPS targets (TLS 1.2/1.3, RSA and ECDSA) for benchmarks/fair.py
    unbound        # a real DNS server answering those targets' names for benchmarks/fair.py
)

if [ "$(id -u)" -ne 0 ]; then
    # The tests create network namespaces and apt-get installs servers: root, by sudo when
    # there is one (as root in a container there is none, and none is needed).
    if command -v sudo >/dev/null 2>&1; then
        exec sudo "$0" "$@"
    fi
    echo "scripts/test.sh: run as root (the tests create network namespaces; no sudo here)" >&2
    exit 1
fi

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'
# The packaging test installs the built wheel into a clean venv offline, from these wheels.
"$VENV/bin/pip" wheel -q --disable-pip-version-check --wheel-dir .wheelhouse .
export MX_WHEELHOUSE="$PWD/.wheelhouse"

echo "== ruff"
"$VENV/bin/ruff" check exporter tests
"$VENV/bin/ruff" format --check exporter tests
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest"
exec "$VENV/bin/pytest" "$@"
