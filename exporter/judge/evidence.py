"""The evidence a verdict cites: localisation's findings (exporter.probes.path), whether the
failure was put on the path and the sentence that says where; and which peer is a control
(another network or another address) and which only shows the failure passing. Pure."""

from __future__ import annotations

from collections.abc import Callable

from exporter.model.judgement import Finding, Verdict
from exporter.model.observation import Observation, PathObservation, PathOutcome


def on_path(path: PathObservation | None) -> bool:
    """Whether localisation put the failure on the path: an answer from before the
    destination, or a drop at a hop other traffic passes."""
    return path is not None and path.outcome in (
        PathOutcome.BEFORE_DESTINATION,
        PathOutcome.DROPPED,
    )


def path_said(path: PathObservation | None) -> str:
    """The evidence of localisation, for a reason."""
    assert path is not None
    where = ""
    if path.hop is not None:
        last = path.router(path.hop - 1) if path.hop > 1 else None
        here = path.router(path.hop)
        addresses = ", ".join(
            f"hop {n} {a}"
            for n, a in ((path.hop - 1, last), (path.hop, here))
            if a and a not in path.detail  # the detail may name them already
        )
        where = f"; interference at hop {path.hop}" + (f" ({addresses})" if addresses else "")
    return f"{path.detail}{where}"


def path_note(path: PathObservation | None) -> str:
    """What localisation said when it is not the evidence (for /probes and the logs)."""
    if path is None:
        return ""
    if path.outcome is PathOutcome.AT_DESTINATION:
        return f"; localised at the destination's own distance: {path.detail}"
    if path.outcome is PathOutcome.INCONCLUSIVE:
        return f"; localisation inconclusive: {path.detail}"
    return f"; localised on the path: {path_said(path)}"


def where(peer: Observation, obs: Observation) -> str:
    """Where a control (`peer`) got further than `obs`, for a reason: another network,
    another address on the same network, or another resolver."""
    if peer.key.network != obs.key.network:
        return f"on network {peer.key.network!r}"
    if peer.address and peer.address != obs.address:
        return f"to {peer.address} on the same network"
    return f"through resolver {peer.key.resolver!r}"


def same_way(
    obs: Observation,
    reached: list[Observation],
    failed_on: frozenset[str],
    address: Callable[[Observation], str | None],
    path: PathObservation | None,
) -> tuple[list[Observation], list[Observation]]:
    """The peers that got further than `obs` (`reached`), split: those that went the very way
    `obs` failed (the same network, to an address `obs` failed on), and the controls (another
    network, or another address on the same one). A peer of the first kind is no control: it
    shows that address open on that network in the round, so `obs`'s failure passed (a lost
    packet, a blip). Another address on the same network is no control either when
    localisation placed the failure at the destination's own distance: that site itself is
    down (a dead relay among a name's round-robin addresses), the path to it is not cut."""
    here = path is not None and path.outcome is PathOutcome.AT_DESTINATION
    same: list[Observation] = []
    controls: list[Observation] = []
    for peer in reached:
        where_to = address(peer)
        went = peer.key.network == obs.key.network and where_to is not None
        if went and where_to in failed_on:
            same.append(peer)
        elif not (here and peer.key.network == obs.key.network):
            controls.append(peer)
    return same, controls


def passed_there(
    what: str,
    obs: Observation,
    peer: Observation,
    address: str | None,
    path: PathObservation | None = None,
) -> Finding:
    """The finding of a failure that `same_way` shows passing: `down`, never blocked."""
    return Finding(
        verdict=Verdict.DOWN,
        reason=f"{what} failed ({obs.error}) while a probe through resolver "
        f"{peer.key.resolver!r} got through to {address} on the same network in the same "
        "round: a passing failure (a lost packet, a blip), not a block of the address"
        + path_note(path),
    )
