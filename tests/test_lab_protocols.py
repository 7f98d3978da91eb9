"""The call path (`stun`) and Telegram's own protocol (`mtproto`) in the lab, end to end: the
exporter as a real process in the vantage namespace (the pattern of tests/test_lab_single.py),
its verdicts asserted on a real scrape of /metrics and on /probes.

The lab's pieces (docs/lab.md, "STUN and MTProto"): a messenger's STUN relay
(`stun.messenger.lab`, coturn) whose UDP 3478 the censoring ISP drops; two public STUN
look-alikes (coturn too), the exporter's UDP canaries; a relay that loses the first request of
every transaction (`relay.whatsapp.lab`); Telegram DC look-alikes speaking MTProto on 443,
where the censor's DPI resets the plain intermediate form (its fixed 0xeeeeeeee tag) and, in
a second configuration, the obfuscated form too (by its length: 108 payload bytes); a DC that
answers a foreign nonce; a DC address where nothing listens; and, added for one test, an ISP
that forwards no UDP but DNS.

- two networks: the relay is `udp_blocked` on `censor` (it works on `clean`), the intermediate
  form `protocol_blocked` there while the obfuscated one passes; everything `ok` on `clean`;
  UDP works on both; the service whose only blocking method is udp_blocked is the one
  MessagingCallsBlocked names; the lossy relay is `ok`, its check resent once;
- the length rule: the obfuscated form is `protocol_blocked` on `censor` too, `ok` on `clean`;
- one uplink (nothing to compare with): the drop and the reset are blocking with the hop as
  the evidence; a foreign nonce is tampering; a DC where nothing listens is `down`; through
  the clean ISP everything is `ok`;
- a network with no UDP: the STUN tuples are `udp_down` (not blocked, even though the relay
  answers on the other network), `messaging_network_udp_up` 0 while `messaging_network_up`
  is 1.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.model import Network
from exporter.model.observation import ErrorKind, MtprotoTransport
from exporter.probes.mtproto import exchange
from exporter.probes.network import Dialer
from exporter.probes.streams import SocketStream
from exporter.probes.stun import StunProbe
from tests.lab.topology import (
    MTPROTO_DC,
    MTPROTO_DC4,
    MTPROTO_GONE,
    MTPROTO_IMPOSTOR,
    MTPROTO_PORT,
    STUN_LOSSY_HOST,
    STUN_PORT,
    STUN_PUBLIC,
    STUN_RELAY,
    STUN_RELAY_HOST,
    Lab,
    mtproto_length_reset,
    udp_blackout,
)
from tests.test_lab_verdicts import fetch, run_exporter, verdict_of

pytest_plugins = ("tests.lab.conftest_plugin",)

#: The first router (the ISP) is hop 1; the services answer the trace at TTL 4. The censor's
#: filter sits on hop 1 and acts on packets that pass it: the interference shows at TTL 2.
DISTANCE = 4
FILTER_HOP = 2
#: Seconds a socket-level exchange that should fail is given.
SHORT = 1.5

Metrics = dict[str, list[tuple[dict[str, str], float]]]
#: (service, endpoint, network)
Key = tuple[str, str, str]


# --- the exporter's configuration ----------------------------------------------------------


def stun(host: str) -> dict[str, Any]:
    return {"host": host, "port": STUN_PORT, "checks": ["dns", "stun"]}


def mtproto(address: str, transport: str, dc: int) -> dict[str, Any]:
    return {
        "address": address,
        "port": MTPROTO_PORT,
        "checks": ["tcp", "mtproto"],
        "mtproto": {"transport": transport, "dc": dc},
    }


def config(
    lab: Lab, networks: tuple[str, ...], services: dict[str, Any], *, udp_canaries: bool = True
) -> dict[str, Any]:
    """The overrides of test_lab_verdicts.lab_config: `networks` by source address, one
    honest resolver, the HTTPS canary and (by default) the two public STUN look-alikes as UDP
    canaries, and `services`."""
    tls = {"ca_file": str(lab.ca_file)}
    canaries: dict[str, Any] = {
        "example": {
            "host": "example.lab",
            "port": 443,
            "checks": ["dns", "tcp", "tls", "http"],
            "tls": tls,
        }
    }
    if udp_canaries:
        canaries |= {f"stun-{host.split('.')[-2]}": stun(host) for host in STUN_PUBLIC}
    return {
        "interval": "8s",
        "timeout": "3s",
        "blockpage_patterns": [],
        "blockpage_headers": {},
        "networks": {n: {"source_address": lab.networks[n]["source_address"]} for n in networks},
        "resolvers": {"google": {"type": "udp", "address": lab.resolvers["google"]["address"]}},
        "canaries": canaries,
        "services": services,
    }


#: Both MTProto forms to one DC.
BOTH_FORMS: dict[str, Any] = {
    "endpoints": {
        "dc-plain": mtproto(MTPROTO_DC, "intermediate", 2),
        "dc": mtproto(MTPROTO_DC, "obfuscated", 2),
    }
}
LOSSY: dict[str, Any] = {"endpoints": {"relay": stun(STUN_LOSSY_HOST)}}


def two_network_services(lab: Lab) -> dict[str, Any]:
    """A call relay and a web endpoint (TCP+TLS, untouched by the censor) of one service, the
    lossy relay of another, both MTProto forms to one DC."""
    web = {
        "host": "edge.messenger.lab",
        "port": 443,
        "checks": ["dns", "tcp", "tls"],
        "tls": {"ca_file": str(lab.ca_file)},
    }
    return {
        "messenger": {"endpoints": {"call": stun(STUN_RELAY_HOST), "web": web}},
        "whatsapp": LOSSY,
        "telegram": BOTH_FORMS,
    }


#: One uplink: the relay; the intermediate form alone to DC2 (localisation is its only
#: evidence); both forms to DC4 (the obfuscated form's answer is evidence too); the impostor;
#: a DC address where nothing listens.
SINGLE_SERVICES: dict[str, Any] = {
    "messenger": {"endpoints": {"call": stun(STUN_RELAY_HOST)}},
    "telegram": {
        "endpoints": {
            "dc-plain": mtproto(MTPROTO_DC, "intermediate", 2),
            "dc4-plain": mtproto(MTPROTO_DC4, "intermediate", 4),
            "dc4": mtproto(MTPROTO_DC4, "obfuscated", 4),
            "impostor": mtproto(MTPROTO_IMPOSTOR, "obfuscated", 2),
            "gone": mtproto(MTPROTO_GONE, "obfuscated", 2),
        }
    },
}


# --- running it ----------------------------------------------------------------------------


def scrape(lab: Lab) -> Metrics:
    out: Metrics = {}
    for family in text_string_to_metric_families(fetch(lab, "/metrics")):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def resolver_of(endpoint: dict[str, Any]) -> str:
    return "none" if "address" in endpoint else "google"


@dataclass(frozen=True)
class Seen:
    """What one run of the exporter showed: a scrape of /metrics, and the /probes detail of
    every tuple (canaries included), taken while it ran."""

    metrics: Metrics
    details: dict[Key, dict[str, Any]]

    def verdict(self, service: str, endpoint: str, network: str) -> str:
        """The verdict on /metrics, checked against /probes' (its reason in the message)."""
        found = self.details[(service, endpoint, network)]
        got = verdict_of(self.metrics, service, endpoint, network, found["resolver"])
        assert got == found["verdict"], (got, found["verdict_reason"])
        return got

    def verdicts(self) -> dict[Key, str]:
        return {key: self.verdict(*key) for key in self.details}

    def reason(self, service: str, endpoint: str, network: str) -> str:
        reason: str = self.details[(service, endpoint, network)]["verdict_reason"]
        return reason

    def per_network(self, name: str) -> dict[str, float]:
        return {labels["network"]: value for labels, value in self.metrics.get(name, [])}

    def hops(self) -> dict[Key, float]:
        return {
            (labels["service"], labels["endpoint"], labels["network"]): value
            for labels, value in self.metrics.get("messaging_probe_interference_hops", [])
        }

    def blocked(self) -> dict[Key, float]:
        return {
            (labels["service"], labels["endpoint"], labels["network"]): value
            for labels, value in self.metrics["messaging_probe_blocked"]
        }

    def methods(self) -> dict[tuple[str, str], set[str]]:
        """(service, network) → the blocking methods at 1 (the family holds only those)."""
        out: dict[tuple[str, str], set[str]] = {}
        for labels, value in self.metrics.get("messaging_service_blocked_method", []):
            if value == 1.0:
                out.setdefault((labels["service"], labels["network"]), set()).add(labels["method"])
        return out

    def calls_blocked(self) -> set[tuple[str, str]]:
        """Where MessagingCallsBlocked's expression (prometheus/rules/messaging.rules.yml)
        holds: a udp_blocked method and no other method at 1."""
        return {key for key, methods in self.methods().items() if methods == {"udp_blocked"}}


def judged(metrics: Metrics) -> set[Key]:
    """The tuples with a verdict on a scrape."""
    return {
        (labels["service"], labels["endpoint"], labels["network"])
        for labels, value in metrics.get("messaging_probe_verdict", [])
        if value == 1.0
    }


def observe(lab: Lab, directory: Path, overrides: dict[str, Any], rounds: int) -> Seen:
    """Run the exporter on `overrides` until `rounds` rounds are judged and the scrape has a
    verdict for every tuple (a probe that failed and was localised may finish after the end
    of the first round: it is judged in the next); what it showed."""
    groups = {"canary": overrides["canaries"]} | {
        service: body["endpoints"] for service, body in overrides["services"].items()
    }
    expected = {
        (service, name, network)
        for network in overrides["networks"]
        for service, endpoints in groups.items()
        for name in endpoints
    }
    metrics: Metrics = {}
    with run_exporter(lab, directory, **overrides) as running:
        deadline = time.monotonic() + 30 + 12 * rounds
        while True:
            if not running.wait_rounds(rounds, deadline - time.monotonic()):
                pytest.fail(
                    f"not {rounds} rounds judged with a verdict for every tuple in time "
                    f"(not judged at the last scrape: {sorted(expected - judged(metrics))}); "
                    "log:\n" + "\n".join(running.lines[-40:])
                )
            metrics = scrape(lab)
            if expected <= judged(metrics):
                break
            rounds = running.rounds + 1  # the next round judges the late ones
        details: dict[Key, dict[str, Any]] = {}
        for service, name, network in sorted(expected):
            endpoint = groups[service][name]
            query = (
                f"service={service}&endpoint={name}&network={network}"
                f"&resolver={resolver_of(endpoint)}&family=4&format=json"
            )
            details[(service, name, network)] = json.loads(fetch(lab, f"/probes?{query}"))
        return Seen(metrics=metrics, details=details)


# --- the lab's pieces at the socket level ----------------------------------------------------


def dialer(lab: Lab, network: str) -> Dialer:
    net = lab.networks[network]
    return Dialer(Network(name=network, netns=lab.vantage, source_address=net["source_address"]))


async def stun_check(lab: Lab, network: str, address: str) -> tuple[ErrorKind | None, int]:
    """The stun check's own probe through `network`: its error and requests sent."""
    probe = StunProbe(dialer(lab, network).udp_socket, address, STUN_PORT)
    try:
        async with asyncio.timeout(SHORT):
            obs = await probe.run()
    except TimeoutError:
        probe.close()
        obs = probe.observation()
    return obs.error, obs.requests


async def resolve(lab: Lab, network: str, name: str) -> list[str]:
    """The A records of `name` from 8.8.8.8 over UDP through `network`."""
    sock = dialer(lab, network).udp_socket(socket.AF_INET)
    try:
        query = dns.message.make_query(name, dns.rdatatype.A)
        reply = await asyncio.to_thread(dns.query.udp, query, "8.8.8.8", SHORT, sock=sock)
    finally:
        sock.close()
    return sorted(rr.address for rrset in reply.answer for rr in rrset)


async def mtproto_check(
    lab: Lab, network: str, address: str, transport: MtprotoTransport
) -> ErrorKind | None:
    """The mtproto check's exchange on a fresh connection through `network`: its error."""
    sock = await dialer(lab, network).connect_tcp(address, MTPROTO_PORT)
    try:
        async with asyncio.timeout(SHORT):
            obs = await exchange(SocketStream(sock), address, MTPROTO_PORT, transport, dc=2)
    except TimeoutError:
        return ErrorKind.TIMEOUT
    finally:
        sock.close()
    assert obs.error is not None or obs.answered, obs
    return obs.error


async def test_the_relay_and_the_dcs_behave_as_documented(lab: Lab) -> None:
    """coturn serves the relay and the public STUN look-alikes; the censor drops only the
    relay's STUN and resets only the plain intermediate form; the length rule resets the
    obfuscated one; the no-UDP rule leaves no STUN server reachable."""
    assert lab.stun_server == "coturn", (
        "turnserver is not installed, the lab fell back to its own STUN responder: "
        "`apt-get install coturn` (scripts/test.sh does)"
    )
    publics = list(STUN_PUBLIC.values())
    for address in (STUN_RELAY, *publics):
        assert await stun_check(lab, "clean", address) == (None, 1), address
    for address in publics:
        assert await stun_check(lab, "censor", address) == (None, 1), address
    error, requests = await stun_check(lab, "censor", STUN_RELAY)
    assert error is ErrorKind.TIMEOUT
    assert requests >= 2  # resent, and still nothing: dropped, not lost
    plain, obfuscated = MtprotoTransport.INTERMEDIATE, MtprotoTransport.OBFUSCATED
    for transport in (plain, obfuscated):
        assert await mtproto_check(lab, "clean", MTPROTO_DC, transport) is None
    assert await mtproto_check(lab, "censor", MTPROTO_DC, plain) is ErrorKind.RESET
    assert await mtproto_check(lab, "censor", MTPROTO_DC, obfuscated) is None
    assert await mtproto_check(lab, "clean", MTPROTO_IMPOSTOR, obfuscated) is ErrorKind.BAD_REPLY
    with lab.technique(mtproto_length_reset()):
        assert await mtproto_check(lab, "censor", MTPROTO_DC, obfuscated) is ErrorKind.RESET
        assert await mtproto_check(lab, "clean", MTPROTO_DC, obfuscated) is None
    assert await mtproto_check(lab, "censor", MTPROTO_DC, obfuscated) is None  # rule removed
    with lab.technique(udp_blackout("isp-clean")):
        for address in (STUN_RELAY, *publics):
            assert (await stun_check(lab, "clean", address))[0] is ErrorKind.TIMEOUT, address
        assert await resolve(lab, "clean", STUN_RELAY_HOST) == [STUN_RELAY]  # DNS still works
    assert await stun_check(lab, "clean", STUN_RELAY) == (None, 1)  # rule removed


# --- two networks --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Seen:
    """clean and censor, after the second judged round."""
    overrides = config(lab, ("clean", "censor"), two_network_services(lab))
    return observe(lab, tmp_path_factory.mktemp("protocols-two"), overrides, 2)


def test_two_networks_calls_and_the_plain_form_are_blocked_on_censor_only(two: Seen) -> None:
    assert two.verdicts() == {
        **{
            (service, endpoint, "clean"): "ok"
            for service, endpoint in (
                ("canary", "example"),
                ("canary", "stun-google"),
                ("canary", "stun-cloudflare"),
                ("messenger", "call"),
                ("messenger", "web"),
                ("whatsapp", "relay"),
                ("telegram", "dc-plain"),
                ("telegram", "dc"),
            )
        },
        ("canary", "example", "censor"): "ok",
        ("canary", "stun-google", "censor"): "ok",
        ("canary", "stun-cloudflare", "censor"): "ok",
        ("messenger", "call", "censor"): "udp_blocked",
        ("messenger", "web", "censor"): "ok",
        ("whatsapp", "relay", "censor"): "ok",
        ("telegram", "dc-plain", "censor"): "protocol_blocked",
        ("telegram", "dc", "censor"): "ok",
    }
    assert {k for k, v in two.blocked().items() if v == 1.0} == {
        ("messenger", "call", "censor"),
        ("telegram", "dc-plain", "censor"),
    }
    assert two.per_network("messaging_network_up") == {"clean": 1.0, "censor": 1.0}
    assert two.per_network("messaging_network_udp_up") == {"clean": 1.0, "censor": 1.0}


def test_two_networks_service_methods_and_the_calls_blocked_condition(two: Seen) -> None:
    assert two.methods() == {
        ("messenger", "censor"): {"udp_blocked"},
        ("telegram", "censor"): {"protocol_blocked"},
    }
    service_blocked = {
        (labels["service"], labels["network"]): value
        for labels, value in two.metrics["messaging_service_blocked"]
    }
    assert service_blocked == {
        ("messenger", "clean"): 0.0,
        ("whatsapp", "clean"): 0.0,
        ("telegram", "clean"): 0.0,
        ("messenger", "censor"): 1.0,
        ("whatsapp", "censor"): 0.0,
        ("telegram", "censor"): 1.0,
    }
    # Messages go through (its web endpoint is ok), calls do not: MessagingCallsBlocked.
    # Telegram's method is protocol_blocked, not the call path: not that alert's.
    assert two.calls_blocked() == {("messenger", "censor")}


def test_two_networks_the_evidence_is_on_probes(two: Seen) -> None:
    call = two.details[("messenger", "call", "censor")]
    assert call["stun"]["address"] == STUN_RELAY
    assert call["stun"]["error"] == "timeout"
    assert call["stun"]["mapped"] is None
    assert "on network 'clean'" in call["verdict_reason"], call["verdict_reason"]
    assert two.details[("messenger", "call", "clean")]["stun"]["mapped"] is not None
    plain = two.details[("telegram", "dc-plain", "censor")]
    assert plain["mtproto"]["transport"] == "intermediate"
    assert plain["mtproto"]["error"] == "reset"
    assert plain["mtproto"]["answered"] is False
    assert "on network 'clean'" in plain["verdict_reason"], plain["verdict_reason"]
    obfuscated = two.details[("telegram", "dc", "censor")]
    assert obfuscated["mtproto"]["transport"] == "obfuscated"
    assert obfuscated["mtproto"]["answered"] is True


@pytest.mark.parametrize("network", ["clean", "censor"])
def test_loss_a_lost_first_request_is_resent_and_ok(two: Seen, network: str) -> None:
    """relay.whatsapp.lab ignores the first copy of every transaction: the check resends it
    after its RTO and gets the answer. Not a failure, on either network."""
    found = two.details[("whatsapp", "relay", network)]
    assert found["verdict"] == "ok", found["verdict_reason"]
    assert found["stun"]["error"] is None, found["stun"]
    assert found["stun"]["requests"] == 2, found["stun"]
    assert found["stun"]["mapped"] is not None


# --- the second configuration: the obfuscated form recognised by its length -----------------


def test_length_rule_blocks_the_obfuscated_form_too(lab: Lab, tmp_path: Path) -> None:
    services = {"telegram": BOTH_FORMS}
    overrides = config(lab, ("clean", "censor"), services, udp_canaries=False)
    with lab.technique(mtproto_length_reset()):
        seen = observe(lab, tmp_path, overrides, 1)
    assert seen.verdicts() == {
        ("canary", "example", "clean"): "ok",
        ("canary", "example", "censor"): "ok",
        ("telegram", "dc-plain", "clean"): "ok",
        ("telegram", "dc", "clean"): "ok",
        ("telegram", "dc-plain", "censor"): "protocol_blocked",
        ("telegram", "dc", "censor"): "protocol_blocked",
    }
    obfuscated = seen.details[("telegram", "dc", "censor")]
    assert obfuscated["mtproto"]["transport"] == "obfuscated"
    assert obfuscated["mtproto"]["error"] == "reset"
    assert "on network 'clean'" in obfuscated["verdict_reason"]
    assert seen.methods() == {("telegram", "censor"): {"protocol_blocked"}}


# --- one uplink ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def censored(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Seen:
    """The censoring uplink alone, after its second judged round."""
    overrides = config(lab, ("censor",), SINGLE_SERVICES)
    return observe(lab, tmp_path_factory.mktemp("protocols-censor"), overrides, 2)


#: (service, endpoint) → (verdict, what came back at the interfering hop) through `censor`.
CENSORED = {
    ("messenger", "call"): ("udp_blocked", "silence"),
    ("telegram", "dc-plain"): ("protocol_blocked", "reset"),
    ("telegram", "dc4-plain"): ("protocol_blocked", "reset"),
}


@pytest.mark.parametrize(
    ("service", "endpoint"), list(CENSORED), ids=["/".join(k) for k in CENSORED]
)
def test_one_uplink_the_drop_and_the_reset_are_blocking_with_the_hop(
    censored: Seen, service: str, endpoint: str
) -> None:
    verdict, answer = CENSORED[(service, endpoint)]
    assert censored.verdict(service, endpoint, "censor") == verdict
    found = censored.details[(service, endpoint, "censor")]
    path = found["path"]
    assert path is not None, found["log"]
    assert (path["outcome"], path["answer"], path["hop"], path["distance"]) in {
        ("dropped", answer, FILTER_HOP, DISTANCE),
        ("before_destination", answer, FILTER_HOP, DISTANCE),
    }, path
    reason = found["verdict_reason"]
    assert f"hop {FILTER_HOP}" in reason, reason
    if path["hop_address"] is not None:
        assert path["hop_address"] in reason, reason
    assert censored.hops()[(service, endpoint, "censor")] == float(FILTER_HOP)


def test_one_uplink_the_other_form_answering_is_evidence_too(censored: Seen) -> None:
    reason = censored.reason("telegram", "dc4-plain", "censor")
    assert "the obfuscated form got its answer from the same data centre" in reason, reason
    assert censored.verdict("telegram", "dc4", "censor") == "ok"


def test_one_uplink_a_foreign_nonce_is_tampering(censored: Seen) -> None:
    assert censored.verdict("telegram", "impostor", "censor") == "protocol_blocked"
    found = censored.details[("telegram", "impostor", "censor")]
    assert found["mtproto"]["error"] == "bad_reply"
    assert "is not ours" in found["mtproto"]["detail"]
    assert "tampering" in found["verdict_reason"], found["verdict_reason"]


def test_one_uplink_a_dc_with_nothing_listening_is_down(censored: Seen) -> None:
    assert censored.verdict("telegram", "gone", "censor") == "down"
    found = censored.details[("telegram", "gone", "censor")]
    assert found["result"] == "refused"
    assert found["failed_phase"] == "connect"
    path = found["path"]
    assert path is not None
    assert (path["outcome"], path["hop"]) == ("at_destination", DISTANCE), path
    assert ("telegram", "gone", "censor") not in censored.hops()


def test_one_uplink_service_level_and_udp(censored: Seen) -> None:
    assert censored.methods() == {
        ("messenger", "censor"): {"udp_blocked"},
        ("telegram", "censor"): {"protocol_blocked"},
    }
    assert censored.per_network("messaging_network_udp_up") == {"censor": 1.0}
    assert censored.per_network("messaging_network_up") == {"censor": 1.0}
    for endpoint in ("stun-google", "stun-cloudflare", "example"):
        assert censored.verdict("canary", endpoint, "censor") == "ok"


def test_one_clean_uplink_blocks_nothing(lab: Lab, tmp_path: Path) -> None:
    """Through the clean ISP everything is ok. (The impostor is left out: from one uplink a
    foreign nonce is tampering wherever it comes from; the DC where nothing listens is an
    outage, `down`, here as on `censor`.)"""
    telegram = dict(SINGLE_SERVICES["telegram"]["endpoints"])
    del telegram["impostor"]
    services = {
        "messenger": SINGLE_SERVICES["messenger"],
        "whatsapp": LOSSY,
        "telegram": {"endpoints": telegram},
    }
    seen = observe(lab, tmp_path, config(lab, ("clean",), services), 1)
    got = seen.verdicts()
    assert got.pop(("telegram", "gone", "clean")) == "down"
    assert set(got.values()) == {"ok"}, got
    assert len(got) == 8  # 3 canaries, the relay, the lossy relay, 3 MTProto endpoints
    assert set(seen.blocked().values()) == {0.0}
    assert not seen.hops()
    assert seen.methods() == {}
    assert seen.per_network("messaging_network_udp_up") == {"clean": 1.0}


# --- no UDP at all -------------------------------------------------------------------------


def test_no_udp_is_udp_down_and_never_blocked(lab: Lab, tmp_path: Path) -> None:
    """`clean` forwards no UDP but DNS; `dnsint` (whose resolvers answer these names
    truthfully) keeps its UDP. The relay fails on `clean` while it answers on `dnsint`: not
    `udp_blocked` but `udp_down`, since every UDP canary fails there too."""
    services = {"messenger": {"endpoints": {"call": stun(STUN_RELAY_HOST)}}}
    overrides = config(lab, ("clean", "dnsint"), services)
    with lab.technique(udp_blackout("isp-clean")):
        seen = observe(lab, tmp_path, overrides, 1)
    assert seen.verdicts() == {
        ("canary", "example", "clean"): "ok",
        ("canary", "stun-google", "clean"): "udp_down",
        ("canary", "stun-cloudflare", "clean"): "udp_down",
        ("messenger", "call", "clean"): "udp_down",
        ("canary", "example", "dnsint"): "ok",
        ("canary", "stun-google", "dnsint"): "ok",
        ("canary", "stun-cloudflare", "dnsint"): "ok",
        ("messenger", "call", "dnsint"): "ok",
    }
    assert seen.per_network("messaging_network_udp_up") == {"clean": 0.0, "dnsint": 1.0}
    assert seen.per_network("messaging_network_up") == {"clean": 1.0, "dnsint": 1.0}
    assert set(seen.blocked().values()) == {0.0}
    assert seen.methods() == {}
    assert seen.per_network("messaging_service_blocked") == {"clean": 0.0, "dnsint": 0.0}
    call = seen.details[("messenger", "call", "clean")]
    assert call["stun"]["error"] == "timeout"
    assert "every UDP canary" in call["verdict_reason"], call["verdict_reason"]
