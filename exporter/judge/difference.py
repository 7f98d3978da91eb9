"""Whether an HTTP response is a different page from a reference: OONI's "http-diff". Pure.

A blockpage nobody has a pattern for still gives itself away by not looking like the page
the same request gets elsewhere. OONI's web_connectivity (spec ts-017) compares a probe's
response with its control's on four criteria, and this module does the same, so that a
verdict can say "the answer changed" without a list of known blockpages:

- the status codes differ; or all three of
- the body-length proportion (smaller / larger) is at most 0.7,
- the two share no header name outside `COMMON_HEADERS` (names nearly every server sends,
  so sharing them says nothing),
- their titles differ in a "long" word (5 characters or more): one title has a long word
  the other lacks.

Source, read for this module: ooni/probe-cli at commit
7cb22410c98db6dbc801887d93b65c8a5318ad07 (github.com/ooni/probe-cli):
- `internal/minipipeline/httpdiff.go`: `httpDiffCommonHeaders` (the list copied into
  `COMMON_HEADERS`), `ComputeHTTPDiffBodyProportionFactor`,
  `ComputeHTTPDiffUncommonHeadersIntersection` and `ComputeHTTPDiffTitleDifferentLongWords`
  (titles match when no word of `minWordLength` = 5 or more appears in one title only,
  compared lower-cased, in any order);
- `internal/minipipeline/analysis.go` (`httpDiffBodyProportionFactor`: no proportion when a
  body is empty or truncated);
- `internal/experiment/webconnectivitylte/analysishttpdiff.go`
  (`analysisHTTPDiffAlgorithm`: different unless the status matches and one criterion that
  could be computed says alike; `bodyProportionFactor` = 0.7, alike only above it);
- `internal/measurexlite/web.go` (`webTitleRegexp`, `(?i)<title>([^<]{1,512})</title>`:
  `exporter.model.observation.TITLE`, applied to bytes).

Where this differs from OONI, and why:
- Title words are split on any whitespace (OONI splits on single spaces only; real titles
  carry newlines and tabs) and counted in characters (Go's `len` counts UTF-8 bytes, so a
  three-letter Cyrillic word is "long" there).
- Two titles without a single long word between them (no title at all, "404", "OK") are no
  evidence either way; OONI's pipeline counts them as matching. Only the first 4 KiB of a
  body are kept (`HttpObservation.body_head`), so a missing title may only be further down.
- The framing headers (`FRAMING_HEADERS`: connection, keep-alive, transfer-encoding,
  content-length) are ignored as well as OONI's common ones. The exporter asks every server
  for `Connection: close`, so nearly every answer carries `Connection` (and most a length):
  counted, they would make every pair of responses "share an uncommon header". They say how
  the message is framed, not which server wrote it.
- Only the first headers of a response are kept (`exporter.probes.http.MAX_HEADERS_KEPT`).

Two strengths, chosen by the caller (`status_counts`):
- `status_counts=True`, OONI's rule, for a control measured the same way in the same round
  on another network: a different status is different, and otherwise different unless a
  criterion that could be computed says alike (what cannot be computed is no evidence of
  sameness);
- `status_counts=False`, stricter, for a reference that may be stale (the tuple's own last
  passing response): the status alone never counts (services change status codes: Telegram's
  data centres answer 404 or 501 with the same few bytes), and different only when all three
  criteria were computed and each says different (what cannot be computed is no evidence of
  difference).

Truncated bodies: a body cut at `http.body_limit` has the limit's length, not its own, so
the length proportion of a pair where either body was cut is not computed: it is evidence
neither of sameness nor of difference. Empty bodies likewise (no proportion of nothing).

Invariants: pure (bytes and numbers in, a sentence or None out); header and title text
from the peer appears only in the returned reason (for /probes and logs), never in a label.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.model.observation import HttpObservation

#: Header names nearly every server sends: sharing them is no evidence of the same server.
#: OONI's `httpDiffCommonHeaders` (internal/minipipeline/httpdiff.go), verbatim.
COMMON_HEADERS: frozenset[str] = frozenset(
    {
        "date",
        "content-type",
        "server",
        "cache-control",
        "vary",
        "set-cookie",
        "location",
        "expires",
        "x-powered-by",
        "content-encoding",
        "last-modified",
        "accept-ranges",
        "pragma",
        "x-frame-options",
        "etag",
        "x-content-type-options",
        "age",
        "via",
        "p3p",
        "x-xss-protection",
        "content-language",
        "cf-ray",
        "strict-transport-security",
        "link",
        "x-varnish",
    }
)

#: Headers that frame the message (answers to our own `Connection: close`), ignored beside
#: COMMON_HEADERS: they say nothing of which server answered.
FRAMING_HEADERS: frozenset[str] = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length"}
)

#: Bodies are alike in length when smaller / larger is above this (OONI's
#: `bodyProportionFactor`); at or below it the lengths differ.
BODY_PROPORTION = 0.7

#: Title words shorter than this (characters) are ignored: articles, "Web", "404".
MIN_TITLE_WORD = 5


#: Characters of a title quoted in a reason.
_QUOTED_TITLE = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseShape:
    """What http-diff compares of a response: its status, body length, header names and
    title. Built by `of` from an observation; a response without a status (the head never
    arrived) has no shape."""

    status: int
    #: Body bytes read (at most `http.body_limit`).
    body_bytes: int
    #: The body was cut at `http.body_limit`: `body_bytes` is the limit, not the length.
    body_truncated: bool
    #: Lower-cased names of the headers kept.
    header_names: frozenset[str]
    #: The <title> text decoded as UTF-8 (bad bytes replaced), or "" when none was found.
    title: str
    #: Lower-cased words of `title` of at least MIN_TITLE_WORD characters.
    title_words: frozenset[str]

    @classmethod
    def of(cls, http: HttpObservation) -> ResponseShape | None:
        """The shape of an observed response; None when no status line arrived."""
        if http.status is None:
            return None
        title = http.title
        return cls(
            status=http.status,
            body_bytes=http.body_bytes,
            body_truncated=http.body_truncated,
            header_names=frozenset(name.lower() for name, _ in http.headers),
            title=title,
            title_words=long_words(title),
        )


def long_words(title: str) -> frozenset[str]:
    """The lower-cased words of at least MIN_TITLE_WORD characters, split on whitespace."""
    return frozenset(w.lower() for w in title.split() if len(w) >= MIN_TITLE_WORD)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Criterion:
    #: True: alike; False: different; None: could not be computed (no evidence).
    alike: bool | None
    #: What it found, as a clause of the reason.
    says: str


def _body(response: ResponseShape, reference: ResponseShape) -> _Criterion:
    if response.body_truncated or reference.body_truncated:
        # A cut body's length is the limit's: its proportion would be made up.
        return _Criterion(
            alike=None, says="body lengths not comparable (a body was cut at the limit)"
        )
    smaller, larger = sorted((response.body_bytes, reference.body_bytes))
    if smaller <= 0:
        return _Criterion(alike=None, says="body lengths not comparable (an empty body)")
    proportion = smaller / larger
    return _Criterion(
        alike=proportion > BODY_PROPORTION,
        says=f"body {response.body_bytes} bytes against {reference.body_bytes} "
        f"(proportion {proportion:.2f})",
    )


def _headers(response: ResponseShape, reference: ResponseShape) -> _Criterion:
    shared = (response.header_names & reference.header_names) - COMMON_HEADERS - FRAMING_HEADERS
    if shared:
        return _Criterion(
            alike=True, says=f"uncommon headers in common ({', '.join(sorted(shared)[:3])})"
        )
    return _Criterion(alike=False, says="no header name in common beyond the usual ones")


def _quote(title: str) -> str:
    return repr(title if len(title) <= _QUOTED_TITLE else title[:_QUOTED_TITLE] + "…")


def _title(response: ResponseShape, reference: ResponseShape) -> _Criterion:
    if not response.title_words and not reference.title_words:
        return _Criterion(alike=None, says="no long title word on either side")
    titles = f"titles {_quote(response.title)} and {_quote(reference.title)}"
    if response.title_words == reference.title_words:
        return _Criterion(alike=True, says=f"{titles} have the same long words")
    return _Criterion(alike=False, says=f"{titles} differ in their long words")


def alike(response: ResponseShape, reference: ResponseShape) -> bool:
    """Whether a criterion that could be computed says the two are the same page, whatever
    their statuses: the service's own page, answering another status (relayed by a
    proxy, or in trouble), is still the service's."""
    return any(
        c.alike is True
        for c in (
            _body(response, reference),
            _headers(response, reference),
            _title(response, reference),
        )
    )


def difference(
    response: ResponseShape, reference: ResponseShape, *, status_counts: bool
) -> str | None:
    """None when `response` looks like the same page as `reference`, else one sentence
    saying which criterion found it different. `status_counts`: OONI's full rule (a
    different status alone is different, and one computable criterion saying alike is
    enough), for a control of the same round; False: the stricter rule for a reference that
    may be stale (status ignored; all three criteria computed and different). See the module
    docstring."""
    if status_counts and response.status != reference.status:
        return f"status {response.status} where the reference answered {reference.status}"
    criteria = (
        _body(response, reference),
        _headers(response, reference),
        _title(response, reference),
    )
    if any(c.alike is True for c in criteria):
        return None
    if not status_counts and any(c.alike is None for c in criteria):
        return None  # against a stale reference, only evidence on all three counts
    status = (
        f"the same status {response.status}"
        if response.status == reference.status
        else f"status {response.status} against {reference.status}"
    )
    return f"a different page ({status}): {'; '.join(c.says for c in criteria)}"
