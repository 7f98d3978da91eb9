"""Whether an HTTP answer is a blockpage (rules 8, 8c and 20 of docs/verdicts.md): a known
one (a pattern, a filter's header), or a plain-HTTP page unlike the service's own by OONI's
http-diff (exporter.judge.difference), against a vouched control, the tuple's last passing
page, or served by a hop before the destination. Pure; the last passing pages are handed in
(`References`, kept by exporter.judge.history.Pages)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.config.model import Config
from exporter.judge.difference import ResponseShape, alike, difference
from exporter.judge.evidence import path_note, path_said
from exporter.model.observation import (
    Observation,
    PathObservation,
    PathOutcome,
    Phase,
    TupleKey,
)

#: Per tuple, the shape of its last response judged `ok` on an earlier round (plain HTTP
#: only): the reference of the changed-page rules when no other network is a control. Kept
#: by the caller (exporter.judge.history.Pages) and passed in, like the baselines.
References = Mapping[TupleKey, ResponseShape]


#: Per round, what the blockpage patterns said of each distinct (body head, Location): the
#: tuples of one endpoint (its resolvers, networks, families) mostly get the same page, and
#: the shipped patterns cost ~0.9 ms over a 4 KiB head (docs/benchmarks.md).
PageScans = dict[tuple[bytes, str], str | None]


def blockpage_reason(
    obs: Observation, config: Config, scans: PageScans | None = None
) -> str | None:
    """A known blockpage: its body or redirect target (`blockpage_patterns`), or a header
    only a filter sends (`blockpage_headers`). `scans` remembers the patterns' answer per
    page for the rest of a round."""
    http = obs.http
    if http is None:
        return None
    if config.blockpage_headers:
        for name, value in http.headers:
            for pattern in config.blockpage_headers.get(name.lower(), ()):
                # Header values were decoded as Latin-1: encoding back gives the wire bytes.
                if pattern.search(value.encode("latin-1", errors="replace")):
                    return f"the {name} header {value[:100]!r} matches a blockpage fingerprint"
    if not config.blockpage_patterns:
        return None
    location = next((v for k, v in http.headers if k.lower() == "location"), "")
    page = (http.body_head, location)
    if scans is not None and page in scans:
        return scans[page]
    found = _pattern_reason(config, *page)
    if scans is not None:
        scans[page] = found
    return found


def _pattern_reason(config: Config, body: bytes, location: str) -> str | None:
    for pattern in config.blockpage_patterns:
        if pattern.search(body):
            return f"the body matches the blockpage pattern {pattern.pattern!r}"
        if location and pattern.search(location.encode(errors="replace")):
            return f"redirect to {location[:100]!r} matches the blockpage pattern"
    return None


def _page(obs: Observation) -> ResponseShape | None:
    """The shape of `obs`'s response when no TLS handshake vouched for it (plain HTTP): only
    such a page can be someone else's. Over verified TLS, whatever answers holds the key."""
    if obs.tls is not None or obs.http is None:
        return None
    return ResponseShape.of(obs.http)


def _http_path(obs: Observation) -> PathObservation | None:
    return obs.path if obs.path is not None and obs.path.phase is Phase.HTTP else None


def vouched(obs: Observation, reference: ResponseShape | None) -> bool:
    """Whether `obs`'s plain-HTTP page is known to be the service's own: localisation found
    it at the destination's own distance, or it is the page this tuple got when it last
    passed (OONI's rule: the same status and a criterion that says alike)."""
    shape = _page(obs)
    if shape is None:
        return False
    path = _http_path(obs)
    if path is not None and path.outcome is PathOutcome.AT_DESTINATION:
        return True
    return reference is not None and difference(shape, reference, status_counts=True) is None


def changed_page(
    obs: Observation,
    others: list[Observation],
    reference: ResponseShape | None,
    vouched_pages: frozenset[TupleKey],
) -> str | None:
    """Why a plain-HTTP page is an unknown blockpage (rules 8c and 20 of docs/verdicts.md),
    or None.

    A page vouched for (`vouched`; the round's are `vouched_pages`) is the service's.
    Otherwise, in order:
    - controls: tuples on other networks that passed, dialled the same address in the same
      round and whose page is vouched for. OONI's http-diff (`status_counts`) against each;
      a page unlike every one is a blockpage. Only a vouched control counts: two networks
      that see two pages cannot say, alone, which one is the service's (a server may answer
      each region its own way);
    - the tuple's own last passing page: alike on a criterion (whatever the status) it is the
      service's; different by the strict rule (a stale reference), a blockpage;
    - localisation: the page came from a hop before the destination.
    """
    shape = _page(obs)
    if shape is None or obs.key in vouched_pages:
        return None
    path = _http_path(obs)
    controls = [
        (p, page)
        for p in others
        if p.key.network != obs.key.network
        and p.key in vouched_pages
        and p.success
        and p.address == obs.address
        and (page := _page(p)) is not None
    ]
    if controls:
        differs = [difference(shape, page, status_counts=True) for _, page in controls]
        if all(d is not None for d in differs):
            return (
                f"{differs[0]}, against the page on network {controls[0][0].key.network!r} "
                "(the same address, the same round)" + path_note(path)
            )
        return None
    if reference is not None:
        if alike(shape, reference):
            return None  # the service's own page, whatever its status: relayed or not
        differs_from_last = difference(shape, reference, status_counts=False)
        if differs_from_last is not None:
            return f"{differs_from_last}, against this tuple's last passing page" + path_note(path)
    if path is not None and path.outcome is PathOutcome.BEFORE_DESTINATION:
        return f"a page nothing vouches for, served from the path: {path_said(path)}"
    return None
