"""Rules 22-23 of docs/verdicts.md: the call path (`stun`) and Telegram's own protocol
(`mtproto`), the checks a censor blocks while TCP, TLS and HTTP stay green. Pure.

Blocking needs evidence, as everywhere: the same check working elsewhere (another network,
another address, or for MTProto the other form of the protocol to the same data centre), the
path evidence of localisation, or an answer that only an impostor gives (a garbled reply, a
foreign transaction ID or nonce). Without it the failure is `down`. And a network where even
the public STUN servers (the UDP canaries) fail has no working UDP at all: that is the
network's state (`udp_down`), not the service's calls being blocked.
"""

from __future__ import annotations

from collections.abc import Collection

from exporter.judge.evidence import on_path, passed_there, path_note, path_said, same_way, where
from exporter.model.judgement import Finding, Verdict
from exporter.model.observation import ErrorKind, MtprotoTransport, Observation, PathObservation

#: (network, address, port, transport) where an MTProto exchange was answered this round.
Answered = Collection[tuple[str, str, int, MtprotoTransport]]


def _wrong_answer(
    obs: Observation,
    others: list[Observation],
    path: PathObservation | None,
    *,
    blocked: Verdict,
    server: str,
    detail: str,
) -> Finding:
    """A `bad_reply`: only an impostor answers so, unless every other network gets the same
    (then the server itself does: `down`)."""
    elsewhere = [p for p in others if p.key.network != obs.key.network]
    if elsewhere and all(p.error is ErrorKind.BAD_REPLY for p in elsewhere):
        return Finding(
            verdict=Verdict.DOWN,
            reason=f"the {server} answers wrongly{detail} on every healthy network: its own doing",
        )
    return Finding(
        verdict=blocked,
        reason=f"the {server}'s answer is not what it sends{detail}: something answered in "
        "its place (tampering)" + path_note(path),
    )


def stun_finding(
    obs: Observation,
    others: list[Observation],
    path: PathObservation | None,
    *,
    udp_up: bool | None,
) -> Finding:
    """Rule 22: the STUN Binding request (the call path) failed; every check before it
    (DNS) passed. `udp_up`: whether the network's UDP canaries got through (None: none has
    a result yet, so a network without UDP cannot be ruled out)."""
    error = obs.error
    stun = obs.stun
    detail = f" ({stun.detail})" if stun is not None and stun.detail else ""
    if error is ErrorKind.BAD_REPLY:
        return _wrong_answer(
            obs, others, path, blocked=Verdict.UDP_BLOCKED, server="STUN server", detail=detail
        )
    if udp_up is None:
        return Finding(
            verdict=Verdict.DOWN,
            reason=f"the STUN request failed ({error}), and no UDP canary of this network has "
            "a result yet: a network without UDP cannot be ruled out, so nothing is called "
            "blocked" + path_note(path),
        )
    if not udp_up:
        return Finding(
            verdict=Verdict.UDP_DOWN,
            reason=f"the STUN request failed ({error}), and so does every UDP canary (a "
            "public STUN server) on this network: UDP is blocked or broken here generally, "
            "which says nothing of this service's calls" + path_note(path),
        )
    failed_on = frozenset([stun.address] if stun is not None else [])
    reached = [p for p in others if p.stun is not None and p.stun.error is None]
    same, worked = same_way(
        obs, reached, failed_on, lambda p: p.stun.address if p.stun else None, path
    )
    if same and not on_path(path):
        return passed_there("the STUN request", obs, same[0], stun.address if stun else None, path)
    if worked:
        return Finding(
            verdict=Verdict.UDP_BLOCKED,
            reason=f"the STUN request failed ({error}) while it succeeded "
            f"{where(worked[0], obs)}: calls are blocked" + path_note(path),
        )
    if on_path(path):
        return Finding(
            verdict=Verdict.UDP_BLOCKED,
            reason=f"the STUN request failed ({error}): {path_said(path)}",
        )
    return Finding(
        verdict=Verdict.DOWN,
        reason=f"the STUN request fails ({error}){detail} on every healthy network"
        + path_note(path),
    )


def mtproto_finding(
    obs: Observation,
    others: list[Observation],
    path: PathObservation | None,
    answered: Answered,
) -> Finding:
    """Rule 23: TCP connected to the data centre, and its first MTProto exchange failed.
    `answered` holds where an exchange got its resPQ this round (any endpoint, either
    form)."""
    error = obs.error
    mtproto = obs.mtproto
    form = mtproto.transport if mtproto is not None else MtprotoTransport.OBFUSCATED
    detail = f" ({mtproto.detail})" if mtproto is not None and mtproto.detail else ""
    what = f"the MTProto exchange ({form} transport) failed ({error}) after TCP connected"
    if error is ErrorKind.BAD_REPLY:
        return _wrong_answer(
            obs,
            others,
            path,
            blocked=Verdict.PROTOCOL_BLOCKED,
            server="data centre",
            detail=detail,
        )
    worked = [p for p in others if p.mtproto is not None and p.mtproto.error is None]
    if worked:
        return Finding(
            verdict=Verdict.PROTOCOL_BLOCKED,
            reason=f"{what}{detail}, while it succeeded {where(worked[0], obs)}" + path_note(path),
        )
    other = (
        MtprotoTransport.INTERMEDIATE
        if form is MtprotoTransport.OBFUSCATED
        else MtprotoTransport.OBFUSCATED
    )
    if mtproto is not None and (obs.key.network, mtproto.address, mtproto.port, other) in answered:
        return Finding(
            verdict=Verdict.PROTOCOL_BLOCKED,
            reason=f"{what}{detail}, while the {other} form got its answer from the same "
            "data centre on this network: the censor recognises this form" + path_note(path),
        )
    if on_path(path):
        return Finding(
            verdict=Verdict.PROTOCOL_BLOCKED,
            reason=f"{what}{detail}: {path_said(path)}",
        )
    return Finding(
        verdict=Verdict.DOWN,
        reason=f"{what}{detail} on every healthy network" + path_note(path),
    )


def answered_exchanges(
    observations: Collection[Observation],
) -> frozenset[tuple[str, str, int, MtprotoTransport]]:
    """Where an MTProto exchange got its answer this round, in which form."""
    return frozenset(
        (o.key.network, o.mtproto.address, o.mtproto.port, o.mtproto.transport)
        for o in observations
        if o.mtproto is not None and o.mtproto.error is None
    )
