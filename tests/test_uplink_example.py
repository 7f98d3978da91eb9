"""docs/deployment.md's second-uplink example ("A second uplink: policy routing, step by
step"), run as written in namespaces of its own:

    box ──eth0 (203.0.113.2, main default route)── isp1 ── far1 (198.51.100.7 on lo)
        ──eth1 (192.0.2.10, the documented one)─── isp2 ── far2 (198.51.100.7 on lo)

198.51.100.7 is anycast: each far namespace answers a connection with its own name and the
source address it saw, so a connection says which uplink it left by. The server address is
one hop beyond each ISP (an ISP owning it would answer the ARP that an interface-bound socket
without a route sends on its link, and a missing route would go unnoticed). ISP-1 routes
everything back to the box, so a packet that leaves by eth0 with eth1's address still gets
its answer: the negative shows where it went, not a time-out. The box filters reverse paths
strictly (rp_filter=1), as many distributions do.

Every `ip` command names a namespace of the test (`-n`/`netns exec`); nothing is created in,
or sent from, the root namespace.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from exporter.config.loader import load
from exporter.probes.network import namespace

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "deployment.md"
SECTION = "## A second uplink: policy routing, step by step"
SERVER = "198.51.100.7"
BOX_ETH0 = "203.0.113.2"
ISP1_ETH0 = "203.0.113.1"
UPLINK2 = "192.0.2.10"
GATEWAY2 = "192.0.2.1"
#: A connection that gets no answer is given up after this long (seconds).
CONNECT_TIMEOUT = 2.0

#: Run inside the box: connect through each network of the config to its one endpoint with
#: the exporter's dialer, all at once; print {network: "<far namespace> <source seen>" or
#: "error <errno name>"}.
PROBE = """
import asyncio, errno, json, sys
from exporter.config.loader import load
from exporter.probes.network import Dialer

async def one(network, address, port, timeout):
    try:
        async with asyncio.timeout(timeout):
            sock = await Dialer(network).connect_tcp(address, port)
            try:
                data = await asyncio.get_running_loop().sock_recv(sock, 128)
            finally:
                sock.close()
    except TimeoutError:
        return "error timeout"
    except OSError as exc:
        return f"error {errno.errorcode.get(exc.errno, exc.errno)}"
    return data.decode().strip()

async def main():
    config = load(sys.argv[1])
    (endpoint,) = config.endpoints()
    names = list(config.networks)
    results = await asyncio.gather(
        *(one(config.networks[n], endpoint.address, endpoint.port, float(sys.argv[2]))
          for n in names)
    )
    print(json.dumps(dict(zip(names, results))))

asyncio.run(main())
"""


def section() -> str:
    text = DOC.read_text()
    assert text.count(SECTION + "\n") == 1, f"{DOC} has no section {SECTION!r}"
    start = text.index(SECTION + "\n")
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def block(marker: str, language: str) -> str:
    found = re.findall(
        rf"<!-- uplink-example:{marker} -->\n```{language}\n(.*?)\n```", section(), re.S
    )
    assert len(found) == 1, f"one ```{language} block marked uplink-example:{marker} expected"
    return found[0]


def documented_commands() -> list[str]:
    """The sh block's command lines (blank and comment lines left out), as written."""
    lines = [line.strip() for line in block("sh", "sh").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def is_rule(command: str) -> bool:
    return command.startswith("ip rule ")


def route_checks() -> list[str]:
    """The `ip route get ...` commands the section tells the operator to check with."""
    return re.findall(r"`(ip route get [^`]+)`", section())


# --- the namespaces ---------------------------------------------------------------------------


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=20)


class Anycast:
    """A TCP listener on SERVER in one far namespace: answers '<name> <peer address>'."""

    def __init__(self, netns: str, name: str, port: int = 0) -> None:
        self.name = name
        with namespace(netns):
            self.sock = socket.create_server((SERVER, port))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(f"{self.name} {peer[0]}\n".encode())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@dataclass
class Lab:
    prefix: str
    made: list[str] = field(default_factory=list)
    servers: list[Anycast] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{self.prefix}{role}"

    def ip(self, role: str, *argv: str) -> None:
        run("ip", "-n", self.ns(role), *argv)

    def exec(self, role: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.ns(role), *argv, check=check)

    def add(self, role: str) -> None:
        run("ip", "netns", "add", self.ns(role))
        self.made.append(self.ns(role))
        self.ip(role, "link", "set", "lo", "up")

    def link(self, a: str, a_dev: str, a_addr: str, b: str, b_dev: str, b_addr: str) -> None:
        """A veth from namespace a to namespace b, both ends up and addressed."""
        self.ip(a, "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", self.ns(b))
        for role, dev, addr in ((a, a_dev, a_addr), (b, b_dev, b_addr)):
            self.ip(role, "address", "add", addr, "dev", dev)
            self.ip(role, "link", "set", dev, "up")


@pytest.fixture
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("sysctl") is None:
        pytest.fail("this test needs root, iproute2's `ip` and `sysctl` (CI runs as root)")
    lab = Lab(prefix=f"mxu-{secrets.token_hex(3)}-")
    try:
        for role in ("box", "isp1", "isp2", "far1", "far2"):
            lab.add(role)
        # eth1 is left down and unaddressed: the documented commands bring it up.
        lab.ip(
            "box",
            "link",
            "add",
            "eth1",
            "type",
            "veth",
            "peer",
            "name",
            "box0",
            "netns",
            lab.ns("isp2"),
        )
        lab.ip("isp2", "address", "add", f"{GATEWAY2}/24", "dev", "box0")
        lab.ip("isp2", "link", "set", "box0", "up")
        lab.link("box", "eth0", f"{BOX_ETH0}/24", "isp1", "box0", f"{ISP1_ETH0}/24")
        lab.ip("box", "route", "add", "default", "via", ISP1_ETH0, "dev", "eth0")
        lab.exec("box", "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=1")
        for n in (1, 2):
            isp, far = f"isp{n}", f"far{n}"
            lab.link(isp, "far0", f"10.{n}.0.1/30", far, "up0", f"10.{n}.0.2/30")
            lab.exec(isp, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            lab.ip(isp, "route", "add", f"{SERVER}/32", "via", f"10.{n}.0.2")
            lab.ip(far, "address", "add", f"{SERVER}/32", "dev", "lo")
            lab.ip(far, "route", "add", "default", "via", f"10.{n}.0.1")
        lab.ip("isp1", "route", "add", "default", "via", BOX_ETH0)
        first = Anycast(lab.ns("far1"), "far1")
        lab.servers.append(first)
        lab.servers.append(Anycast(lab.ns("far2"), "far2", first.port))
        yield lab
    finally:
        for server in lab.servers:
            server.close()
        for name in reversed(lab.made):
            subprocess.run(["ip", "netns", "delete", name], check=False, timeout=20)


def write_config(tmp_path: Path, port: int) -> Path:
    networks = yaml.safe_load(block("yaml", "yaml"))
    assert set(networks) == {"networks"}
    config = {
        "timeout": "2s",
        "resolvers": {"isp": {"type": "udp", "address": GATEWAY2}},
        "networks": networks["networks"],
        "services": {
            "far": {"endpoints": {"server": {"address": SERVER, "port": port, "checks": ["tcp"]}}}
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def probe(lab: Lab, config: Path) -> dict[str, str]:
    out = lab.exec("box", sys.executable, "-c", PROBE, str(config), str(CONNECT_TIMEOUT)).stdout
    return json.loads(out)


def check_passes(lab: Lab, config: Path) -> None:
    done = lab.exec(
        "box", sys.executable, "-m", "exporter", "check", "--config.file", str(config), check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def routes(lab: Lab) -> dict[str, str]:
    checks = route_checks()
    assert len(checks) == 2, checks
    return {c: lab.exec("box", "sh", "-c", f"{c} 2>&1", check=False).stdout for c in checks}


def test_documented_second_uplink_works_as_written(lab: Lab, tmp_path: Path) -> None:
    commands = documented_commands()
    rules = [c for c in commands if is_rule(c)]
    bare = [c.split("#")[0].strip() for c in commands]  # the block's trailing comments off
    assert f"ip address add {UPLINK2}/24 dev eth1" in bare
    assert f"ip route add default via {GATEWAY2} dev eth1 table 102" in bare
    assert [c for c in bare if is_rule(c)] == [
        f"ip rule add from {UPLINK2} lookup 102",
        "ip rule add oif eth1 lookup 102",
    ]

    config = write_config(tmp_path, lab.servers[0].port)
    assert list(load(config).networks) == ["default", "uplink2", "uplink2-if"]

    # Everything but the rules: the address and the table exist, nothing selects the table.
    for command in commands:
        if not is_rule(command):
            lab.exec("box", "sh", "-c", command)
    check_passes(lab, config)  # `check` cannot see routing: it passes without the rules
    assert probe(lab, config) == {
        "default": f"far1 {BOX_ETH0}",
        "uplink2": f"far1 {UPLINK2}",  # out of eth0 with eth1's address
        "uplink2-if": "error timeout",  # no route: ARPs for the server on eth1, unanswered
    }
    for command, out in routes(lab).items():
        assert f"via {GATEWAY2} dev eth1" not in out, (command, out)

    # The rules, as written: both networks of the second uplink leave by eth1.
    for command in rules:
        lab.exec("box", "sh", "-c", command)
    check_passes(lab, config)
    assert probe(lab, config) == {
        "default": f"far1 {BOX_ETH0}",
        "uplink2": f"far2 {UPLINK2}",
        "uplink2-if": f"far2 {UPLINK2}",
    }
    for command, out in routes(lab).items():
        assert f"via {GATEWAY2} dev eth1" in out, (command, out)

    # Why the docs say to keep both rules: strict reverse-path filtering accepts the interface
    # network's answers only through the `from` rule (an `oif` rule matches no incoming
    # packet). Without it the SYN still leaves by eth1 but the SYN-ACK is dropped; with the
    # filter off the same connection completes.
    lab.exec("box", "ip", "rule", "del", "from", UPLINK2, "lookup", "102")
    assert probe(lab, config) == {
        "default": f"far1 {BOX_ETH0}",
        "uplink2": f"far1 {UPLINK2}",
        "uplink2-if": "error timeout",
    }
    for conf in ("all", "eth1"):
        lab.exec("box", "sysctl", "-q", "-w", f"net.ipv4.conf.{conf}.rp_filter=0")
    assert probe(lab, config)["uplink2-if"] == f"far2 {UPLINK2}"
