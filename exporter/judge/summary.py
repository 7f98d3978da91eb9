"""The service-level answer of a round: is the service blocked on a network, and how. Pure.

A person asks "is Telegram blocked on uplink-a, and how?", not "which of its 24 tuples are
`tls_blocked`". `service_states` answers it from one round's `Judgement`: per service and
network, the blocking verdicts (`verdict.BLOCKED`) of its tuples, as the methods.

Invariants:
- a method is a `Verdict` in `BLOCKED`, a closed set: it is a bounded label value;
- blocked means at least one method; a service that is `down`, `dns_failed` or
  `http_failed` everywhere on the network is judged and not blocked;
- the canaries (service `canary`) and the resolver checks (service `_resolver`) are no
  messaging services and are left out;
- when every tuple of the service on the network is `network_down` or `setup_error`, nothing
  can be said of the service there (`known` False): the network is dead or the exporter cannot
  use it. It is then not blocked *now*, but a block in progress is not over either
  (exporter.judge.history.Blocks keeps its start through the shutdown).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from exporter.config.matrix import RESOLVER_CHECK_SERVICE
from exporter.config.model import CANARY_SERVICE
from exporter.model.judgement import BLOCKED, VERDICTS, Cell, Judgement, ServiceState, Verdict

#: Services that are no messaging service: never summarised.
NOT_SERVICES = frozenset({CANARY_SERVICE, RESOLVER_CHECK_SERVICE})

#: Verdicts that say nothing of the service: the network is dead, has no UDP at all, or is
#: unusable as configured.
NO_EVIDENCE = frozenset({Verdict.NETWORK_DOWN, Verdict.SETUP_ERROR, Verdict.UDP_DOWN})

#: Blocking verdicts in a stable order (the order of `Verdict`): methods are listed in it.
METHODS: tuple[Verdict, ...] = tuple(v for v in VERDICTS if v in BLOCKED)


def service_states(judgement: Judgement) -> Mapping[Cell, ServiceState]:
    """Per (service, network) judged in the round, sorted: whether the service is blocked
    there and by which methods. Canaries and resolver checks are left out."""
    verdicts: dict[Cell, set[Verdict]] = {}
    for key, finding in judgement.findings.items():
        if key.service in NOT_SERVICES:
            continue
        verdicts.setdefault((key.service, key.network), set()).add(finding.verdict)
    return MappingProxyType(
        {
            cell: ServiceState(
                service=cell[0],
                network=cell[1],
                methods=tuple(m for m in METHODS if m in seen),
                known=not seen <= NO_EVIDENCE,
            )
            for cell, seen in sorted(verdicts.items())
        }
    )
