"""exporter.blocklists: the shipped blockpage fingerprints are well-formed, each one matches
the blockpage it was taken from, and none matches an ordinary page."""

# Turkish text has a dotless i (U+0131), which RUF001 takes for a look-alike of i.
# ruff: noqa: RUF001

from __future__ import annotations

import ipaddress
import re

import pytest

from exporter.blocklists import DEFAULT_BLOCKPAGE_ADDRESSES, DEFAULT_BLOCKPAGE_PATTERNS

PATTERNS = [re.compile(p.encode()) for p in DEFAULT_BLOCKPAGE_PATTERNS]

#: Fragments of real blockpage bodies and redirect targets, rebuilt from the tokens OONI's
#: fingerprints_http.csv records for them (the id of each row is in blocklists.py).
BLOCKPAGES: list[str] = [
    # Iran: the iframe to the filter (IPv4, with .33 seen too; and the IPv6 variant)
    '<html><head><title>M4-8</title></head><body><iframe src="http://10.10.34.34?type=Invalid'
    ' Site&policy=MainPolicy " style="width: 100%; height: 100%" scrolling="no"></iframe>',
    "<body><IFRAME SRC='http://10.10.34.33/'></IFRAME></body>",
    '</title></head><body><iframe src="http://[d0:0:0:0:0:0:0:11:80]" style="width: 100%; '
    'height: 100%" scrolling="no"></iframe></body></html>',
    "http://peyvandha.ir/1-2.html",
    '<iframe src="http://internet.ir/1-2.html" style="width: 100%">',
    # Turkey
    "<html><head><title>Telekomünikasyon İletişim Başkanlığı</title></head>",
    '<td class="yazi3_1">After technical analysis and legal consideration based on the law nr. '
    "5651, administration measure has been taken for this website",
    # Russia
    '<a href="http://eais.rkn.gov.ru/">Единый реестр</a>',
    '<a href="http://blocklist.rkn.gov.ru/">Перейти на сайт</a>',
    "http://warning.rt.ru/?id=17&st=0&dt=195.82.146.214&rs=http%3A%2F%2Fexample.org%2F",
    "http://block.rt.ru/",
    '<iframe src="http://subblock.mts.ru/api/v1/block">',
    "http://blocked.mts.ru/?host=example.org",
    "http://blackhole.beeline.ru/?url=example.org",
    "http://blocked.mgts.ru/?url=example.org",
    "https://block.mgts.ru/",
    "http://t2blocked.com/?url=example.org",
    '<script src="//t2rkn.com/static/rkn.js"></script>',
    "http://lawfilter.ertelecom.ru/?site=example.org",
    # elsewhere
    '<iframe src="http://www.warning.or.kr/i1.html"></iframe>',
    "https://trustpositif.kominfo.go.id/",
    "http://internet-positif.org/",
    "http://internetpositif.uzone.id/?lokasi=blocked",
    "https://illegal.mdes.go.th/",
    "This URL has been blocked under instructions of a competent authority and is prohibited "
    "for viewership from within Pakistan.",
    "You have tried to access a web page which has been blocked as per directive received from "
    "the Ministry of Transport and Communications of Myanmar.",
    '<iframe src="http://proxy.etisalat.ae/?dpid=1&dpruleid=2"></iframe>',
    "http://lighthouse.du.ae?dpid=3&dpruleid=4&cat=10&url=example.org",
]

#: Ordinary pages and headers, including ones that name censors, laws and ISPs.
ORDINARY: list[str] = [
    "<!doctype html><html><head><title>Telegram Web</title></head><body></body></html>",
    "<title>Example Domain</title><p>This domain is for use in illustrative examples.</p>",
    # Turkish sites cite the internet law in their footers
    "<footer>Yer sağlanan içerikler hakkında 5651 sayılı Kanun kapsamında bildirimlerinizi "
    "iletişime geçerek iletebilirsiniz.</footer>",
    "<title>Website Blocked</title><p>This page has been blocked. Access denied.</p>",
    "Iran's filter answers 10.10.34.34 for blocked names; see the report on internet.ir/about.",
    "Roskomnadzor (rkn.gov.ru) ordered ISPs to block Telegram in April 2018.",
    "https://www.mts.ru/personal/mobilnaya-svyaz/ https://moskva.beeline.ru/customers/",
    "https://www.rt.ru/ https://www.mgts.ru/ https://tele2.ru/",
    "Korea Communications Standards Commission, kocsc.or.kr",
    "https://www.kominfo.go.id/ https://www.mdes.go.th/ https://www.etisalat.ae/ https://www.du.ae/",
    "HTTP/1.1 302 Found\r\nLocation: https://web.telegram.org/k/\r\n\r\n",
    "https://web.whatsapp.com/ https://signal.org/ https://www.facebook.com/",
]


def test_addresses_are_in_normal_form() -> None:
    assert DEFAULT_BLOCKPAGE_ADDRESSES
    for address in DEFAULT_BLOCKPAGE_ADDRESSES:
        assert str(ipaddress.ip_address(address)) == address


def test_addresses_hold_the_documented_injections() -> None:
    assert {
        "10.10.34.34",
        "10.10.34.35",
        "10.10.34.36",
        "d0::11",
        "195.175.254.2",
        "5.3.3.17",
        "8.7.198.45",
        "159.106.121.75",
        "203.98.7.65",
    } <= DEFAULT_BLOCKPAGE_ADDRESSES


def test_patterns_are_distinct_and_never_match_everything() -> None:
    assert len(set(DEFAULT_BLOCKPAGE_PATTERNS)) == len(DEFAULT_BLOCKPAGE_PATTERNS)
    for pattern in PATTERNS:
        assert pattern.search(b"") is None, pattern.pattern


@pytest.mark.parametrize("page", BLOCKPAGES)
def test_every_blockpage_sample_is_recognised(page: str) -> None:
    assert any(p.search(page.encode()) for p in PATTERNS)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.pattern.decode()[:40])
def test_every_pattern_recognises_a_blockpage(pattern: re.Pattern[bytes]) -> None:
    assert any(pattern.search(page.encode()) for page in BLOCKPAGES)


@pytest.mark.parametrize("page", ORDINARY)
def test_ordinary_pages_are_not_blockpages(page: str) -> None:
    matches = [p.pattern for p in PATTERNS if p.search(page.encode())]
    assert matches == []
