"""OONI's http-diff (exporter.judge.difference): real-looking responses compared under both rules,
OONI's (a different status counts) and the stricter one (all three criteria, status aside)."""

from __future__ import annotations

import pytest

from exporter.judge.difference import (
    BODY_PROPORTION,
    COMMON_HEADERS,
    ResponseShape,
    alike,
    difference,
    long_words,
)
from exporter.model.observation import HttpObservation, title_of
from exporter.probes.http import BODY_HEAD_BYTES

LIMIT = 256 * 1024  # the default http.body_limit


def page(
    status: int | None,
    headers: dict[str, str],
    body: bytes,
    *,
    length: int | None = None,
    truncated: bool = False,
) -> ResponseShape:
    """The shape of a response as the probe keeps it: the first 4 KiB of the body, its
    length (`length`: the full body's, when only its head is given here)."""
    http = HttpObservation(
        method="GET",
        url="http://web.telegram.example/",
        status=status,
        headers=tuple(headers.items()),
        body_bytes=len(body) if length is None else length,
        body_truncated=truncated,
        body_head=body[:BODY_HEAD_BYTES],
    )
    shape = ResponseShape.of(http)
    assert shape is not None
    return shape


def html(title: bytes, filler: int = 0) -> bytes:
    return (
        b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n<title>'
        + title
        + b'</title>\n<link rel="stylesheet" href="/css/app.css"></head>\n<body>'
        + b'<div id="app"></div>' * filler
        + b"</body></html>\n"
    )


NGINX = {"Server": "nginx/1.18.0", "Date": "Tue, 14 Nov 2023 22:13:20 GMT"}

TELEGRAM_WEB = page(
    200,
    {
        **NGINX,
        "Content-Type": "text/html; charset=utf-8",
        "Content-Length": "24813",
        "Connection": "close",
        "Last-Modified": "Mon, 13 Nov 2023 09:00:00 GMT",
        "ETag": '"6551e6d0-60ed"',
        "Content-Security-Policy": "default-src 'self'",
        "X-Served-By": "web-ams-3",
    },
    html(b"Telegram Web", 40),
    length=24813,
)
TELEGRAM_WEB_AGAIN = page(
    200,
    {
        **NGINX,
        "Date": "Tue, 14 Nov 2023 22:14:20 GMT",
        "Content-Type": "text/html; charset=utf-8",
        "Content-Length": "24813",
        "Connection": "close",
        "Last-Modified": "Mon, 13 Nov 2023 09:00:00 GMT",
        "ETag": '"6551e6d0-60ed"',
        "Content-Security-Policy": "default-src 'self'",
        "X-Served-By": "web-ams-1",
    },
    html(b"Telegram Web", 40),
    length=24813,
)
#: Iran's filter answers in the site's place (10.10.34.34): an iframe to the ministry's page.
IRAN_BLOCKPAGE = page(
    403,
    {"Connection": "close", "Content-Type": "text/html; charset=windows-1256"},
    b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1256">'
    b'<title>M1-4</title></head><body><iframe src="http://10.10.34.34?type=Invalid Site&'
    b'policy=MainPolicy " style="width: 100%; height: 100%" scrolling="no" '
    b'marginwidth="0" marginheight="0" frameborder="0" vspace="0" hspace="0"></iframe>'
    b"</body></html>",
)
#: A blockpage that answers 200 (Turkish wording, UTF-8): only its content gives it away.
TURKISH_BLOCKPAGE = page(
    200,
    {
        "Server": "Apache",
        "Content-Type": "text/html; charset=utf-8",
        "Content-Length": "1187",
        "Connection": "close",
    },
    html("Bu siteye erişim engellenmiştir".encode(), 8),
    length=1187,
)
#: The same site after a redesign: a new front end on a CDN (other headers, a much larger
#: page), the same title words.
TELEGRAM_WEB_REDESIGN = page(
    200,
    {
        "Server": "cloudflare",
        "Date": "Wed, 15 Nov 2023 08:00:00 GMT",
        "Content-Type": "text/html; charset=utf-8",
        "Transfer-Encoding": "chunked",
        "Connection": "close",
        "CF-Cache-Status": "HIT",
        "CF-Ray": "8263e1f3ab1c2b6f-AMS",
    },
    html(b"Telegram Web K", 400),
    length=96_450,
)
#: Telegram data centres speak their own transport over HTTP: a POST to / gets 404 or 501
#: with an empty or tiny body, and the same CORS headers (OONI once read 501 as blocking).
TELEGRAM_DC_404 = page(
    404,
    {
        "Connection": "close",
        "Content-Length": "0",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "origin, content-type",
        "Cache-Control": "no-store",
    },
    b"",
)
TELEGRAM_DC_501 = page(
    501,
    {
        "Connection": "close",
        "Content-Length": "4",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "origin, content-type",
        "Cache-Control": "no-store",
    },
    b"\x6c\xfe\xff\xff",
)
#: Two servers that send nothing but the usual headers.
PLAIN_A = page(
    200,
    {**NGINX, "Content-Type": "text/html", "Content-Length": "5120"},
    html(b"Signal Messenger", 60),
    length=5120,
)
PLAIN_A_AGAIN = page(
    200,
    {**NGINX, "Content-Type": "text/html", "Content-Length": "5133"},
    html(b"Signal Messenger", 60),
    length=5133,
)
PLAIN_FILTER = page(
    200,
    {"Server": "Microsoft-IIS/10.0", "Content-Type": "text/html", "Content-Length": "744"},
    html(b"Access Denied by Policy", 2),
    length=744,
)
#: API answers without any title: a short JSON error and a long JSON document.
API_SHORT = page(
    200,
    {**NGINX, "Content-Type": "application/json", "Content-Length": "15"},
    b'{"ok":false}\r\n\r\n',
    length=15,
)
API_LONG = page(
    200,
    {"Server": "envoy", "Content-Type": "application/json", "X-Envoy-Upstream-Service-Time": "3"},
    b'{"ok":true,"result":[' + b'{"id":1},' * 200 + b"]}",
    length=2010,
)
#: A Persian title in windows-1256: bytes that are not UTF-8.
PERSIAN_1256 = "\u0635\u0641\u062d\u0647 \u0645\u0633\u062f\u0648\u062f \u0627\u0633\u062a"
FILTERED_1256 = page(
    200,
    {"Content-Type": "text/html; charset=windows-1256", "X-Filter-Id": "m1-4"},
    html(PERSIAN_1256.encode("cp1256") + b" Internet Filtering", 4),
)
#: The real page cut at the body limit: its length is the limit's.
TELEGRAM_WEB_HUGE = page(
    200,
    {**NGINX, "Content-Type": "text/html", "X-Served-By": "web-ams-2"},
    html(b"Telegram Web", 40),
    length=LIMIT,
    truncated=True,
)

ALIKE = None
DIFFERENT = "different"


@pytest.mark.parametrize(
    ("response", "reference", "ooni", "strict", "why"),
    [
        pytest.param(TELEGRAM_WEB_AGAIN, TELEGRAM_WEB, ALIKE, ALIKE, "", id="the same page twice"),
        pytest.param(
            IRAN_BLOCKPAGE,
            TELEGRAM_WEB,
            DIFFERENT,
            DIFFERENT,
            "status 403 where the reference answered 200",
            id="a blockpage against the real page",
        ),
        pytest.param(
            TURKISH_BLOCKPAGE,
            TELEGRAM_WEB,
            DIFFERENT,
            DIFFERENT,
            "a different page (the same status 200): body 1187 bytes against 24813",
            id="the same status, a different page",
        ),
        pytest.param(
            TELEGRAM_WEB_REDESIGN,
            TELEGRAM_WEB,
            ALIKE,
            ALIKE,
            "",
            id="a redesign keeps its title words",
        ),
        pytest.param(
            TELEGRAM_DC_501,
            TELEGRAM_DC_404,
            DIFFERENT,
            ALIKE,
            "status 501 where the reference answered 404",
            id="telegram data centre 404 then 501",
        ),
        pytest.param(
            PLAIN_A_AGAIN,
            PLAIN_A,
            ALIKE,
            ALIKE,
            "",
            id="only common headers, the same length",
        ),
        pytest.param(
            PLAIN_FILTER,
            PLAIN_A,
            DIFFERENT,
            DIFFERENT,
            "no header name in common beyond the usual ones",
            id="only common headers, another page",
        ),
        pytest.param(
            API_SHORT,
            API_LONG,
            DIFFERENT,
            ALIKE,
            "no long title word on either side",
            id="no titles: no evidence either way",
        ),
        pytest.param(
            TURKISH_BLOCKPAGE,
            API_LONG,
            DIFFERENT,
            DIFFERENT,
            "titles 'Bu siteye erişim engellenmiştir' and '' differ",
            id="a title on one side only",
        ),
        pytest.param(
            FILTERED_1256,
            TELEGRAM_WEB,
            DIFFERENT,
            DIFFERENT,
            "differ in their long words",
            id="non-UTF-8 title bytes",
        ),
        pytest.param(
            FILTERED_1256,
            FILTERED_1256,
            ALIKE,
            ALIKE,
            "",
            id="non-UTF-8 title bytes, the same page",
        ),
        pytest.param(
            IRAN_BLOCKPAGE,
            TELEGRAM_WEB_HUGE,
            DIFFERENT,
            ALIKE,  # the length is not evidence when a body was cut: not all three
            "status 403",
            id="a truncated reference",
        ),
        pytest.param(
            TURKISH_BLOCKPAGE,
            TELEGRAM_WEB_HUGE,
            DIFFERENT,
            ALIKE,
            "body lengths not comparable (a body was cut at the limit)",
            id="a truncated reference, the same status",
        ),
    ],
)
def test_difference(
    response: ResponseShape,
    reference: ResponseShape,
    ooni: str | None,
    strict: str | None,
    why: str,
) -> None:
    full = difference(response, reference, status_counts=True)
    stricter = difference(response, reference, status_counts=False)
    assert (full and DIFFERENT, stricter and DIFFERENT) == (ooni, strict), (full, stricter)
    if ooni is DIFFERENT:
        assert full is not None
        assert why in full
        assert "\n" not in full
        assert full.count(". ") == 0  # one sentence
    # Different under the stricter rule is different under OONI's too.
    assert not (stricter and not full)


def test_the_stricter_rule_names_all_three_criteria() -> None:
    reason = difference(PLAIN_FILTER, PLAIN_A, status_counts=False)
    assert reason == (
        "a different page (the same status 200): body 744 bytes against 5120 (proportion "
        "0.15); no header name in common beyond the usual ones; titles 'Access Denied by "
        "Policy' and 'Signal Messenger' differ in their long words"
    )
    # Another status is context, not the cause: the page itself differs on all three counts
    # ("M1-4" has no long word, "Signal Messenger" has two).
    iran = difference(IRAN_BLOCKPAGE, PLAIN_A, status_counts=False)
    assert iran is not None
    assert iran.startswith("a different page (status 403 against 200): body 331 bytes")


def test_the_body_proportion_threshold_is_ooni_s() -> None:
    """Alike only above 0.7; at 0.7 the lengths differ (OONI: `proportion > 0.7`)."""
    base = {"Server": "nginx", "Content-Type": "text/html"}
    reference = page(200, {**base, "X-A": "1"}, html(b"Alpha Bravo"), length=1000)
    at = page(200, {**base, "X-B": "1"}, html(b"Delta Hotel"), length=700)
    above = page(200, {**base, "X-B": "1"}, html(b"Delta Hotel"), length=701)
    assert BODY_PROPORTION == 0.7
    assert difference(at, reference, status_counts=False) is not None
    assert difference(above, reference, status_counts=False) is None


def test_titles_sharing_one_word_but_not_another_differ() -> None:
    """OONI's title rule: a long word in one title only makes the titles differ, even when
    they share another; short words never count."""
    a = page(200, {"X-A": "1"}, html(b"Telegram Web"), length=9000)
    b = page(200, {"X-B": "1"}, html(b"Telegram Messenger"), length=3000)
    assert a.title_words == {"telegram"}
    assert b.title_words == {"telegram", "messenger"}
    reason = difference(b, a, status_counts=True)
    assert reason is not None
    assert "titles 'Telegram Messenger' and 'Telegram Web' differ in their long words" in reason


def test_the_title_is_read_with_a_small_regex_on_bytes() -> None:
    assert title_of(b"<HTML><HEAD><TITLE>Access\n\tDenied</TITLE>") == "Access Denied"
    assert title_of(b"<title></title>") == ""  # OONI's regex needs one character
    assert title_of(b"<title>a <b>bold</b> title</title>") == ""  # no tag inside: [^<]
    assert title_of(b"<title>" + b"x" * 513 + b"</title>") == ""  # at most 512 bytes
    assert title_of(b"no title here") == ""
    broken = title_of(b"<title>\xd5\xdd\xcd\xe5 Filtering</title>")  # windows-1256, not UTF-8
    assert "\ufffd" in broken
    assert broken.endswith(" Filtering")
    assert FILTERED_1256.title_words >= {"internet", "filtering"}
    assert long_words("Signal Messenger - Say hi") == {"signal", "messenger"}


def test_the_shape_of_an_observation() -> None:
    assert TELEGRAM_WEB.header_names >= {"server", "x-served-by", "content-security-policy"}
    assert all(name == name.lower() for name in TELEGRAM_WEB.header_names)
    assert TELEGRAM_WEB.title == "Telegram Web"
    assert (TELEGRAM_WEB_HUGE.body_bytes, TELEGRAM_WEB_HUGE.body_truncated) == (LIMIT, True)
    no_head = HttpObservation(method="GET", url="http://x.example/", status=None)
    assert ResponseShape.of(no_head) is None  # no status line: no response to compare
    assert "date" in COMMON_HEADERS  # OONI's list
    assert "content-length" not in COMMON_HEADERS


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        # The service's page with another status is still its page (one criterion says so).
        (PLAIN_A_AGAIN, PLAIN_A, True),
        (PLAIN_FILTER, PLAIN_A, False),
        # Nothing computable (bodies cut, no long title word, only the usual headers): unsure.
        (TELEGRAM_WEB_HUGE, TELEGRAM_WEB_HUGE, True),
        (API_SHORT, API_LONG, False),
    ],
)
def test_alike_is_positive_evidence_only(
    response: ResponseShape, reference: ResponseShape, expected: bool
) -> None:
    assert alike(response, reference) is expected
    assert alike(reference, response) is expected
