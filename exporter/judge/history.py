"""The little state the judgement needs across rounds, kept outside the pure `verdict.judge`.

- `ThroughputHistory`: per tuple, the throughput rates of its last rounds, handed to the judge
  as data (`throttling.Baselines`) for the baseline rule of `throttled`.
- `Pages`: per plain-HTTP tuple, the shape of its last page judged `ok`, handed to the judge
  as data (`pages.References`) for the changed-page rules of `http_blockpage`.
- `Outages`: per network, since when it has been judged down (`network_up` false), and the
  transitions of each round (down, back up) so that a shutdown is never silent.
- `Blocks`: per service and network, since when the service has been blocked there
  (`exporter.model.judgement.ServiceState`), and the transitions of each round (blocked, no longer
  blocked) so that a block is never silent either.

All four are plain objects owned by the running exporter (`exporter.runtime.app.App`),
updated once per judged round on the event loop; nothing here does I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from exporter.judge.difference import ResponseShape
from exporter.model.judgement import Cell, Finding, ServiceState, Verdict
from exporter.model.observation import Observation, TupleKey


class ThroughputHistory:
    """The rates (bytes/s) of each tuple's last rounds, oldest first.

    A sample is one observation: a tuple judged again without a new probe (its slot was
    skipped) adds nothing, and its current observation is never part of its own baseline.
    """

    def __init__(self) -> None:
        # key -> (finished, rate) of its last observations with a measured rate
        self._samples: dict[TupleKey, deque[tuple[float, float]]] = {}
        # key -> when a reload changed the tuple: its observations from before are not kept
        self._after: dict[TupleKey, float] = {}

    def __len__(self) -> int:
        """Tuples with rates kept."""
        return len(self._samples)

    def baselines(
        self, observations: Iterable[Observation]
    ) -> Mapping[TupleKey, tuple[float, ...]]:
        """The earlier rates of each of `observations`' tuples (theirs excluded)."""
        out: dict[TupleKey, tuple[float, ...]] = {}
        for obs in observations:
            samples = self._samples.get(obs.key)
            if samples:
                out[obs.key] = tuple(rate for finished, rate in samples if finished != obs.finished)
        return MappingProxyType(out)

    def record(self, observations: Iterable[Observation], rounds: int, floor: float = 0.0) -> None:
        """Add this round's rates, keep the last `rounds` per tuple, and forget tuples that
        are no longer probed (absent from `observations`). A rate below `floor` (bytes/s,
        `throttling.min_bytes_per_second`) is never learned: less than the service needs is
        no new normal, so a throttle that lasts stays judged against the rates before it
        instead of becoming the baseline in a few rounds (one uplink has nothing else)."""
        seen: set[TupleKey] = set()
        for obs in observations:
            seen.add(obs.key)
            rate = None if obs.throughput is None else obs.throughput.bytes_per_second
            if rate is not None and (rate < floor or obs.finished < self._after.get(obs.key, 0)):
                rate = None
            samples = self._samples.get(obs.key)
            if rounds <= 0:
                self._samples.pop(obs.key, None)
                continue
            if samples is None and rate is None:
                continue  # most tuples measure no rate: no deque for them (~0.7 KB each)
            if samples is None or samples.maxlen != rounds:
                samples = deque(samples or (), maxlen=rounds)
                self._samples[obs.key] = samples
            if rate is not None and (not samples or samples[-1][0] != obs.finished):
                samples.append((obs.finished, rate))
        for key in [k for k in self._samples if k not in seen]:
            del self._samples[key]
        for key in [k for k in self._after if k not in seen]:
            del self._after[key]

    def forget(self, keys: Iterable[TupleKey], now: float) -> None:
        """Drop the rates of `keys` and ignore their observations that finished before `now`
        (unix seconds; the store keeps the last one until the tuple is probed again): a
        reload changed what their tuples measure (the network, the endpoint, the download),
        so the rates before say nothing of them."""
        for key in keys:
            self._samples.pop(key, None)
            self._after[key] = now


class Pages:
    """The last page each plain-HTTP tuple got on a round that judged it `ok`: what the
    service answers it, when nothing else compares (one uplink). A page that is not `ok`
    never becomes a reference (a blockpage would vouch for itself); a tuple's current
    observation is never its own reference."""

    def __init__(self) -> None:
        # key -> (finished of the observation, its page's shape)
        self._pages: dict[TupleKey, tuple[float, ResponseShape]] = {}
        # key -> when a reload changed the tuple: its observations from before are not kept
        self._after: dict[TupleKey, float] = {}

    def __len__(self) -> int:
        return len(self._pages)

    def references(self, observations: Iterable[Observation]) -> Mapping[TupleKey, ResponseShape]:
        """The earlier passing page of each of `observations`' tuples (theirs excluded)."""
        out: dict[TupleKey, ResponseShape] = {}
        for obs in observations:
            kept = self._pages.get(obs.key)
            if kept is not None and kept[0] != obs.finished:
                out[obs.key] = kept[1]
        return MappingProxyType(out)

    def record(
        self, observations: Iterable[Observation], findings: Mapping[TupleKey, Finding]
    ) -> None:
        """Keep the page of each plain-HTTP tuple judged `ok` this round, and forget tuples
        that are no longer probed (absent from `observations`)."""
        seen: set[TupleKey] = set()
        for obs in observations:
            seen.add(obs.key)
            finding = findings.get(obs.key)
            if finding is None or finding.verdict is not Verdict.OK:
                continue
            if obs.finished < self._after.get(obs.key, 0):
                continue
            if obs.tls is not None or obs.http is None:
                continue  # over TLS the page is the name's holder's: nothing to compare
            shape = ResponseShape.of(obs.http)
            if shape is not None:
                self._pages[obs.key] = (obs.finished, shape)
        for key in [k for k in self._pages if k not in seen]:
            del self._pages[key]
        for key in [k for k in self._after if k not in seen]:
            del self._after[key]

    def forget(self, keys: Iterable[TupleKey], now: float) -> None:
        """Drop the pages of `keys` and ignore their observations that finished before `now`
        (unix seconds): a reload changed what their tuples fetch or through which network,
        so the page before is no reference."""
        for key in keys:
            self._pages.pop(key, None)
            self._after[key] = now


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """A network went down (`up` False) or came back (`up` True) in the round judged at `at`."""

    network: str
    up: bool
    at: float  # unix seconds: when the round was judged
    down_since: float  # unix seconds: the first round that judged it down

    @property
    def down_seconds(self) -> float:
        return max(0.0, self.at - self.down_since)


class Outages:
    """Since when each network has been down: the wall-clock time of the first judged round
    that found it down, kept while it stays down, dropped once a round finds it up (or the
    network is no longer probed)."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    @property
    def down_since(self) -> Mapping[str, float]:
        return MappingProxyType(dict(self._since))

    def update(self, network_up: Mapping[str, bool], now: float) -> list[Transition]:
        """Fold in one round's `network_up`; the transitions it made, by network name."""
        changes: list[Transition] = []
        for network, up in sorted(network_up.items()):
            since = self._since.get(network)
            if not up and since is None:
                self._since[network] = now
                changes.append(Transition(network=network, up=False, at=now, down_since=now))
            elif up and since is not None:
                del self._since[network]
                changes.append(Transition(network=network, up=True, at=now, down_since=since))
        for network in [n for n in self._since if n not in network_up]:
            del self._since[network]  # removed by a reload, or not probed this round
        return changes


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockChange:
    """A service became blocked on a network (`blocked` True, by `methods`) or is no longer
    blocked there (`blocked` False), in the round judged at `at`."""

    service: str
    network: str
    blocked: bool
    #: The blocking verdicts of the round (empty when no longer blocked).
    methods: tuple[Verdict, ...]
    at: float  # unix seconds: when the round was judged
    since: float  # unix seconds: the first round that found it blocked

    @property
    def blocked_seconds(self) -> float:
        return max(0.0, self.at - self.since)


class Blocks:
    """Since when each service has been blocked on each network: the wall-clock time of the
    first judged round that found it blocked, kept while it stays blocked.

    A round that can say nothing of the service there (`ServiceState.known` False: the
    network is down or unusable) neither starts nor ends a block: a shutdown of a censored
    network does not lift the censorship, and the block's start survives it. A cell no
    longer judged (a reload removed it) is dropped silently."""

    def __init__(self) -> None:
        self._since: dict[Cell, float] = {}

    @property
    def since(self) -> Mapping[Cell, float]:
        """Every block in progress, its start; including those of cells that nothing can be
        said of this round (`blocked_since` leaves them out)."""
        return MappingProxyType(dict(self._since))

    def blocked_since(self, states: Mapping[Cell, ServiceState]) -> Mapping[Cell, float]:
        """The start of each block of `states` that is blocked now: what is exported."""
        return MappingProxyType(
            {
                cell: since
                for cell, since in sorted(self._since.items())
                if (state := states.get(cell)) is not None and state.blocked
            }
        )

    def update(self, states: Mapping[Cell, ServiceState], now: float) -> list[BlockChange]:
        """Fold in one round's service states; the transitions it made, sorted."""
        changes: list[BlockChange] = []
        for cell, state in sorted(states.items()):
            since = self._since.get(cell)
            if state.blocked and since is None:
                self._since[cell] = now
                changes.append(
                    BlockChange(
                        service=state.service,
                        network=state.network,
                        blocked=True,
                        methods=state.methods,
                        at=now,
                        since=now,
                    )
                )
            elif not state.blocked and state.known and since is not None:
                del self._since[cell]
                changes.append(
                    BlockChange(
                        service=state.service,
                        network=state.network,
                        blocked=False,
                        methods=(),
                        at=now,
                        since=since,
                    )
                )
        for cell in [c for c in self._since if c not in states]:
            del self._since[cell]  # removed by a reload, or not judged this round
        return changes
