"""The status page in Debian's headless Chromium after a real lab round.

The exporter runs in the lab's vantage namespace (test_lab_verdicts.py's exporter on its lab
config, with a 10 s interval so that the first round is judged within ~15 s: the same
verdicts, EXPECTED, through the four uplinks) and chromedriver with its
Chromium runs in the same namespace, driven over WebDriver (tests/webdriver.py) from a socket
made inside that namespace: nothing leaves the lab. The detail of a probe is opened by a real
click on the page's link. Screenshots are kept in artifacts/ (gitignored): statuspage.png
(desktop, whole page), statuspage-phone.png (390 px wide, phone emulation) and
statuspage-detail.png (a probe's detail). A missing chromium or chromium-driver FAILS the
test (scripts/test.sh installs them): a skip would only hide a broken CI.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from exporter.config.matrix import RESOLVER_CHECK_SERVICE
from exporter.config.model import CANARY_SERVICE
from exporter.model.judgement import Verdict
from exporter.web.server import ReloadOutcome, Site, WebServer, make_app
from exporter.web.statuspage import (
    CHANGES_SHOWN,
    ICONS,
    REFRESH_SECONDS,
    headline,
    label,
    state_of,
    status_json,
    worst,
)
from tests.lab.topology import Lab
from tests.test_lab_verdicts import EXPECTED, PORT, Exporter, run_exporter
from tests.test_statuspage import (
    BIG_NOW,
    by_key,
    mix_site,
    shipped_targets,
    synthesized_targets,
)
from tests.webdriver import CHROMEDRIVER, CHROMIUM, ELEMENT, Driver, Session, chromedriver

pytest_plugins = ("tests.lab.conftest_plugin",)

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ORIGIN = f"http://127.0.0.1:{PORT}"
DESKTOP = (1280, 1000)
PHONE = {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2}}

#: Every cell of the matrix as the browser laid it out, with its tuple rows.
CELLS_JS = """
return [...document.querySelectorAll('#matrix td[data-network]')].map(td => ({
  service: td.dataset.service, network: td.dataset.network,
  verdict: td.dataset.verdict || null, classes: td.className.split(' '),
  label: (td.querySelector('a.verdict') || td).textContent,
  background: getComputedStyle(td).backgroundColor,
  rect: td.getBoundingClientRect().toJSON(),
  before: getComputedStyle(td, '::before').content,
  rows: [...td.querySelectorAll('li')].map(li => ({
    state: li.className, text: li.querySelector('a').textContent,
    href: li.querySelector('a').getAttribute('href'),
    probed: (li.querySelector('time') || {}).dateTime || null,
    fontSize: parseFloat(getComputedStyle(li).fontSize)})),
}));
"""

#: The key/value table at the top of a probe's detail page.
DETAIL_JS = """
const rows = document.querySelector('body table').querySelectorAll('tr');
return Object.fromEntries([...rows].map(r => [r.querySelector('th').textContent,
                                                r.querySelector('td').textContent]));
"""

#: Every URL the page refers to or loaded, resolved, and what could load from elsewhere.
REFERENCES_JS = """
const urls = [];
for (const el of document.querySelectorAll('[href],[src],[action],[srcset],[poster]'))
  for (const a of ['href', 'src', 'action', 'poster'])
    if (el.hasAttribute(a)) urls.push(new URL(el.getAttribute(a), location.href).href);
const css = [...document.styleSheets].map(s => s.href);
const rules = [...document.styleSheets].flatMap(s => [...s.cssRules].map(r => r.cssText));
return {urls, css, resources: performance.getEntriesByType('resource').map(e => e.name),
        scripts: document.scripts.length, imports: rules.filter(r => /url\\(|@import/.test(r)),
        origin: location.origin};
"""

#: Each text drawn on a canvas in the page's font, as a PNG data URL (a missing glyph draws
#: the same "tofu" box as any other missing glyph).
GLYPHS_JS = """
const font = '32px ' + getComputedStyle(document.body).fontFamily;
return arguments[0].map(text => {
  const c = document.createElement('canvas'); c.width = 64; c.height = 48;
  const g = c.getContext('2d'); g.font = font; g.fillText(text, 4, 38);
  return c.toDataURL();
});
"""

FETCH_JSON_JS = """
const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(r => r.json()).then(done, e => done({error: String(e)}));
"""


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: install Debian's chromium and chromium-driver "
            "(scripts/test.sh does)",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def exporter(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    with run_exporter(lab, tmp_path_factory.mktemp("browser-exporter"), interval="10s") as e:
        yield e


@pytest.fixture(scope="module")
def driver(
    lab: Lab, exporter: Exporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Driver]:
    _require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    with chromedriver(functools.partial(lab.run_in, "vantage"), lab.vantage, log) as d:
        yield d


@pytest.fixture(scope="module")
def desktop(driver: Driver) -> Iterator[Session]:
    with driver.session(args=[f"--window-size={DESKTOP[0]},{DESKTOP[1]}"]) as s:
        s.get(ORIGIN + "/")
        yield s


@pytest.fixture(scope="module")
def cells(desktop: Session) -> list[dict[str, Any]]:
    desktop.get(ORIGIN + "/")
    found: list[dict[str, Any]] = desktop.execute(CELLS_JS)
    return found


def _cell(cells: list[dict[str, Any]], service: str, network: str) -> dict[str, Any]:
    [cell] = [c for c in cells if c["service"] == service and c["network"] == network]
    return cell


def _verdict(text: str) -> Verdict | None:
    """The verdict a label names ("✗ blocked: tls_blocked" -> TLS_BLOCKED)."""
    if text == label(None):
        return None
    for verdict in Verdict:
        if text == label(verdict):
            return verdict
    raise AssertionError(f"not a label: {text!r}")


def test_every_cell_shows_the_lab_verdicts(desktop: Session, cells: list[dict[str, Any]]) -> None:
    """Each tuple the lab knows the answer for reads that verdict in its cell (folded in its
    details), and each cell's verdict is the worst of its rows, its headline the
    service-level answer (every method in words when blocked), with an icon and a word
    beside its colour. The canaries are in a section of their own."""
    for (service, endpoint, network, resolver), expected in EXPECTED.items():
        cell = _cell(cells, service, network)
        prefix = f"{resolver} {endpoint} v4: "
        [row] = [r for r in cell["rows"] if r["text"].startswith(prefix)]
        assert row["text"] == prefix + label(Verdict(expected)), (service, network)
        assert row["state"] == state_of(Verdict(expected))
    probed = [c for c in cells if c["rows"]]
    assert len(probed) >= 16  # 4 services + canary on 4 networks
    assert {c["service"] for c in cells} == {"messenger", "signal", "telegram", "whatsapp"}
    canaries = desktop.execute(
        "return document.querySelectorAll('#infra td.cell[data-service=canary]').length"
    )
    assert canaries == 4  # one per network, below the matrix
    assert RESOLVER_CHECK_SERVICE not in desktop.source
    doc = desktop.execute_async(FETCH_JSON_JS, "/api/v1/status")
    api = {(c["service"], c["network"]): c for c in doc["cells"]}
    now = time.time()
    for cell in probed:
        verdicts = [_verdict(r["text"].split(": ", 1)[1]) for r in cell["rows"]]
        cell_verdict = worst(verdicts)
        # the headline, then since when ("✗ blocked: IP blocking since 08:21 UTC (42 min)")
        text = cell["label"].split(" since ")[0]
        assert text == headline(api[cell["service"], cell["network"]]), cell
        if state_of(cell_verdict) != "blocked":
            assert text == label(cell_verdict), cell
        assert cell["verdict"] == (cell_verdict.value if cell_verdict else None)
        assert f"cell {state_of(cell_verdict)}" in " ".join(cell["classes"])
        for row in cell["rows"]:  # the time of the last probe, in every row
            probed_at = datetime.fromisoformat(row["probed"].replace("Z", "+00:00"))
            assert now - 200 < probed_at.timestamp() <= now + 1, row
    # whole cells: a dead uplink is down, the censoring network is blocked
    assert _cell(cells, "telegram", "dead")["verdict"] == "network_down"
    assert _cell(cells, "telegram", "dead")["label"].startswith("\u2193 down: network_down since")
    assert _cell(cells, "telegram", "censor")["label"].startswith("\u2717 blocked: ")
    assert _cell(cells, "telegram", "censor")["label"].startswith(
        "\u2717 blocked: " + api["telegram", "censor"]["methods_text"] + " since "
    )
    assert "blocked" in _cell(cells, "whatsapp", "censor")["classes"]


def test_colour_is_never_alone(desktop: Session, cells: list[dict[str, Any]]) -> None:
    """One colour per state, four distinct ones, and every cell and row starts with its
    state's icon and word; the icons are real glyphs of the page's font, not tofu."""
    colours: dict[str, set[str]] = {}
    for cell in cells:
        if not cell["rows"]:
            continue
        state = state_of(Verdict(cell["verdict"]) if cell["verdict"] else None)
        colours.setdefault(state, set()).add(cell["background"])
        icon, _, word = cell["label"].split(" since ")[0].partition(" ")
        assert (icon, word.split(":")[0]) == (ICONS[state], "ok" if state == "reachable" else state)
        for row in cell["rows"]:
            text = row["text"].split(": ", 1)[1]
            assert text.startswith(ICONS[row["state"]] + " "), row
    assert set(colours) >= {"reachable", "blocked", "down"}
    assert all(len(c) == 1 for c in colours.values()), colours
    assert len({c for cs in colours.values() for c in cs}) == len(colours)
    tofu, other_tofu, *icons = desktop.execute(GLYPHS_JS, ["\ue000", "\ue001", *ICONS.values()])
    assert tofu == other_tofu  # what a missing glyph looks like
    blank = desktop.execute(GLYPHS_JS, [""])[0]
    for icon, png in zip(ICONS.values(), icons, strict=True):
        assert png not in (tofu, blank), f"{icon!r} does not render in the page's font"


def test_page_works_offline(desktop: Session) -> None:
    """No external asset: the page refers to and loads nothing but the exporter."""
    desktop.get(ORIGIN + "/")
    assert not re.search(r"https?://", desktop.source)
    refs = desktop.execute(REFERENCES_JS)
    assert refs["origin"] == ORIGIN
    assert refs["urls"]
    assert [u for u in refs["urls"] if not u.startswith(ORIGIN + "/")] == []
    assert [r for r in refs["resources"] if not r.startswith(ORIGIN + "/")] == []
    assert refs["css"] == [None]  # one inline stylesheet
    assert refs["scripts"] == 0
    assert refs["imports"] == []
    refresh = desktop.execute("return document.querySelector('meta[http-equiv=refresh]').content")
    assert refresh == str(REFRESH_SECONDS)


def test_status_api_agrees_with_the_page(desktop: Session, cells: list[dict[str, Any]]) -> None:
    desktop.get(ORIGIN + "/")
    doc = desktop.execute_async(FETCH_JSON_JS, "/api/v1/status")
    assert doc["schema_version"] == 1
    page = {(c["service"], c["network"]): c["verdict"] for c in cells if c["rows"]}
    api = {(c["service"], c["network"]): c["verdict"] for c in doc["cells"]}
    canaries = {k: v for k, v in api.items() if k[0] == CANARY_SERVICE}
    assert {k: v for k, v in api.items() if k[0] != CANARY_SERVICE} == page
    below = desktop.execute(
        "return [...document.querySelectorAll('#infra td.cell')]"
        ".map(td => [td.dataset.service, td.dataset.network, td.dataset.verdict || null])"
    )
    assert {(s, n): v for s, n, v in below} == canaries  # in their own section
    tuples = {
        (t["service"], t["endpoint"], t["network"], t["resolver"]): t["verdict"]
        for c in doc["cells"]
        for t in c["tuples"]
        if t["family"] == "4"
    }
    assert {k: tuples[k] for k in EXPECTED} == EXPECTED
    # the history: the latest changes, newest first (after the first round, each tuple's
    # first verdict: a change from none)
    assert doc["changes"]
    assert any(c["previous"] is None for c in doc["changes"])
    for c in doc["changes"]:
        key = (c["service"], c["endpoint"], c["network"], c["resolver"])
        assert c["family"] != "4" or key not in EXPECTED or c["verdict"] == EXPECTED[key], c
    since = [c["since"] for c in doc["changes"]]
    assert since == sorted(since, reverse=True)
    items = desktop.execute("return [...document.querySelectorAll('#changes li')].length")
    real = [c for c in doc["changes"] if c["previous"] is not None]
    # the latest real changes (at most CHANGES_SHOWN), then the first verdicts in one line
    assert min(len(real), CHANGES_SHOWN) + 1 <= items <= CHANGES_SHOWN + 1
    firsts = desktop.text(desktop.find("#changes li.first"))
    assert firsts.startswith(f"{doc['first_verdicts']['count']} first verdicts ")


def _click_and_wait(session: Session, element: str) -> str:
    before = session.url
    session.click(element)
    return session.wait(lambda: session.url if session.url != before else None)


def test_a_click_opens_the_probe_detail(desktop: Session) -> None:
    """Open a cell's tuples and click a resolver row, then a cell's verdict: the probe's
    full detail opens."""
    desktop.get(ORIGIN + "/")
    desktop.click(desktop.find('td.cell[data-service="whatsapp"][data-network="censor"] summary'))
    css = 'td.cell[data-service="whatsapp"][data-network="censor"] li a'
    [row] = [e for e in desktop.find_all(css) if desktop.text(e).startswith("google web v4: ")]
    href = desktop.attribute(row, "href")
    url = _click_and_wait(desktop, row)
    assert url == ORIGIN + str(href)
    detail = desktop.execute(DETAIL_JS)
    assert {k: detail[k] for k in ("service", "endpoint", "network", "resolver", "family")} == {
        "service": "whatsapp",
        "endpoint": "web",
        "network": "censor",
        "resolver": "google",
        "family": "4",
    }
    assert detail["verdict"] == "tls_blocked"
    assert detail["result"] == "reset"
    assert "static.whatsapp.lab" in detail["evidence"]  # the control handshake passed
    headings = desktop.execute(
        "return [...document.querySelectorAll('h2')].map(h => h.textContent)"
    )
    assert {"Target", "Phases (ms)", "DNS", "TLS", "Control handshake (control SNI)"} <= set(
        headings
    )
    assert not re.search(r"https?://", desktop.source)  # the detail is offline too
    full = desktop.execute_async(FETCH_JSON_JS, url + "&format=json")
    assert (full["verdict"], full["result"]) == ("tls_blocked", "reset")
    assert full["control_tls"]["server_name"] == "static.whatsapp.lab"
    assert desktop.screenshot(ARTIFACTS / "statuspage-detail.png") > 1000

    desktop.back()
    desktop.wait(lambda: desktop.url == ORIGIN + "/")
    td = 'td.cell[data-service="telegram"][data-network="censor"]'
    verdict = desktop.attribute(desktop.find(td), "data-verdict")
    rows = [
        desktop.execute("return arguments[0].textContent", {ELEMENT: e})
        for e in desktop.find_all(f"{td} li a")
    ]
    _click_and_wait(desktop, desktop.find(f"{td} a.verdict"))
    detail = desktop.execute(DETAIL_JS)
    assert (detail["service"], detail["network"]) == ("telegram", "censor")
    # the headline opens a tuple with the cell's verdict: one that explains it
    assert detail["verdict"] == verdict
    assert (
        f"{detail['resolver']} {detail['endpoint']} v{detail['family']}: "
        f"{label(Verdict(detail['verdict']))}"
    ) in rows


def test_desktop_screenshot(desktop: Session) -> None:
    """The whole page at desktop width, kept as an artifact."""
    desktop.get(ORIGIN + "/")
    size = desktop.execute(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert size[0] <= DESKTOP[0]  # no sideways scrolling on a desktop
    png = desktop.cdp(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1},
        },
    )
    path = ARTIFACTS / "statuspage.png"
    path.write_bytes(base64.b64decode(png["data"]))
    assert path.stat().st_size > 10_000


def test_phone_layout(driver: Driver) -> None:
    """At 390 px (phone emulation, which honours the viewport meta): no sideways scrolling,
    every cell within the screen and named by its network, text not shrunk, links tappable."""
    with driver.session(mobile=PHONE) as phone:
        phone.get(ORIGIN + "/")
        width, scroll = phone.execute(
            "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
        )
        assert width == 390  # 980 without the viewport meta
        assert scroll <= width
        cells = phone.execute(CELLS_JS)
        assert len(cells) >= 16
        for cell in cells:
            assert cell["rect"]["left"] >= 0, cell
            assert cell["rect"]["right"] <= width, cell
            assert cell["before"] == json.dumps(cell["network"]), cell
            assert all(r["fontSize"] >= 12 for r in cell["rows"]), cell
        assert phone.screenshot(ARTIFACTS / "statuspage-phone.png") > 10_000
        link = phone.find('td.cell[data-service="signal"][data-network="censor"] a.verdict')
        url = _click_and_wait(phone, link)
        assert url.startswith(ORIGIN + "/probes?service=signal&")


# ---- pages the size of the shipped config and beyond, without the lab

#: The first screen a person sees on a laptop.
FIRST_SCREEN = (1280, 900)

#: The matrix as laid out: its row heads, column heads and cells, the banner, the viewport.
FIRST_SCREEN_JS = """
const box = e => e.getBoundingClientRect().toJSON();
const banner = document.getElementById('banner');
return {width: window.innerWidth, height: window.innerHeight,
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  rows: [...document.querySelectorAll('#matrix tbody th[scope=row]')].map(
    th => ({name: th.textContent, rect: box(th)})),
  columns: [...document.querySelectorAll('#matrix thead th[data-network]')].map(
    th => ({name: th.dataset.network, rect: box(th)})),
  cells: [...document.querySelectorAll('#matrix td[data-network]')].map(
    td => ({service: td.dataset.service, network: td.dataset.network, rect: box(td)})),
  details: [...document.querySelectorAll('#matrix details')].filter(d => d.open).length,
  banner: {text: banner.textContent, rect: box(banner)}};
"""

#: name -> (networks, tuples or None for the shipped config, down, blocked, no UDP)
SCENARIOS: dict[str, tuple[tuple[str, ...], int | None, set[str], set[str], set[str]]] = {
    "shipped": (("default",), None, set(), {"default"}, set()),
    "shipped-no-route": (("default",), None, {"default"}, set(), set()),
    "2000x5": (
        ("default", "uplink-a", "uplink-b", "lte", "vpn"),
        2000,
        {"uplink-b"},
        {"uplink-a", "lte"},
        {"vpn"},
    ),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def local_driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    """chromedriver in this namespace (the page is served on 127.0.0.1 here, no lab)."""
    _require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    log = tmp_path_factory.mktemp("chromedriver-local") / "chromedriver.log"
    with chromedriver(subprocess.Popen, None, log, port=_free_port()) as d:  # type: ignore[arg-type]
        yield d


async def _no_reload() -> ReloadOutcome:
    return ReloadOutcome(ok=False, errors=("not in this test",))


def _site(name: str) -> tuple[Site, Any]:
    """The scenario's site, and its /api/v1/status document."""
    networks, total, down, blocked, no_udp = SCENARIOS[name]
    targets = shipped_targets() if total is None else synthesized_targets(networks, total)
    store, changes = mix_site(targets, down=down, blocked=blocked, no_udp=no_udp)
    known = by_key(targets)
    site = Site(
        registry=CollectorRegistry(),
        store=store,
        ready=lambda: True,
        target=known.get,
        target_count=lambda: len(targets),
        reload=_no_reload,
        changes=changes,
        now=lambda: BIG_NOW,
    )
    doc = status_json(store.snapshot(), changes, now=BIG_NOW, targets=known.get)
    return site, doc


@contextmanager
def _serve(site: Site) -> Iterator[str]:
    """Serve `site` on a free port of 127.0.0.1 from a thread of its own; its origin."""
    loop = asyncio.new_event_loop()
    server = WebServer(make_app(site))
    started: list[tuple[str, int]] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started.extend(loop.run_until_complete(server.start("127.0.0.1", 0)))
        finally:
            ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="statuspage-server", daemon=True)
    thread.start()
    assert ready.wait(10), "the test server did not start in 10 s"
    assert started, "the test server failed to start"
    try:
        yield f"http://127.0.0.1:{started[0][1]}"
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _first_screen(driver: Driver) -> Session:
    """A session whose viewport is exactly FIRST_SCREEN (a window of that size loses some
    height to the browser's own bars, even headless)."""
    session = driver.session()
    session.cdp(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": FIRST_SCREEN[0],
            "height": FIRST_SCREEN[1],
            "deviceScaleFactor": 1,
            "mobile": False,
        },
    )
    return session


def _inside(rect: dict[str, float], width: int, height: int) -> bool:
    return (
        rect["left"] >= 0 and rect["top"] >= 0 and rect["right"] <= width
        and rect["bottom"] <= height
    )  # fmt: skip


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_first_screen_shows_every_service_and_network(local_driver: Driver, name: str) -> None:
    """At 1280x900, with the shipped config's ~350 tuples (a realistic mix, and the issue's
    box without a route out) and with 2,000 tuples on 5 networks: every service row, every
    network column and every cell of the matrix lies within the first screen
    (window.innerHeight), under a banner that names the dead network."""
    site, doc = _site(name)
    rows = sorted(
        {(c["service"], c["aspect"] or "") for c in doc["cells"] if c["service"] != CANARY_SERVICE}
    )
    started = time.monotonic()
    with (
        _serve(site) as origin,
        _first_screen(local_driver) as s,
    ):
        s.get(origin + "/")
        seen = s.execute(FIRST_SCREEN_JS)
        path = ARTIFACTS / f"statuspage-first-screen-{name}.png"
        assert s.screenshot(path) > 10_000
    print(
        f"{name}: {len(doc['cells'])} cells, screenshot {path} ({time.monotonic() - started:.1f} s)"
    )
    width, height = seen["width"], seen["height"]
    assert (width, height) == FIRST_SCREEN, seen
    assert seen["scrollWidth"] <= seen["clientWidth"]  # no sideways scrolling
    assert [r["name"].split(" \u00b7 ")[0] for r in seen["rows"]] == [s for s, _ in rows]
    assert [c["name"] for c in seen["columns"]] == doc["networks"]
    assert len(seen["cells"]) == len(rows) * len(doc["networks"])
    for item in [*seen["rows"], *seen["columns"], *seen["cells"], seen["banner"]]:
        assert _inside(item["rect"], width, height), (name, item)
    assert seen["details"] == 0  # the tuples wait to be asked for
    down = [h["network"] for h in doc["network_health"] if h["up"] is False]
    for network in down:
        assert f"\u2193 {network} down since 08:21 UTC (42 min)" in seen["banner"]["text"]
    if not down:
        assert seen["banner"]["text"] == "\u2713 1 network up"


def test_a_cells_tuples_open_and_their_detail_links_back(local_driver: Driver) -> None:
    """No script: a click on a cell's summary opens its tuples; a click on one opens its
    detail, whose checks read as words and whose first link leads back to the page."""
    site, _ = _site("shipped")
    cell = 'td.cell[data-service="whatsapp"][data-network="default"]'
    with (
        _serve(site) as origin,
        _first_screen(local_driver) as s,
    ):
        s.get(origin + "/")
        visible = f"return document.querySelector('{cell} li').checkVisibility()"
        assert s.execute(visible) is False  # folded
        s.click(s.find(f"{cell} summary"))
        assert s.execute(f"return document.querySelector('{cell} details').open") is True
        assert s.execute(visible) is True
        links = s.find_all(f"{cell} li a")
        assert len(links) == 119
        href = s.attribute(links[0], "href")
        assert _click_and_wait(s, links[0]) == origin + str(href)
        detail = s.execute(DETAIL_JS)
        assert (detail["service"], detail["network"]) == ("whatsapp", "default")
        checks = s.execute(
            "return [...document.querySelectorAll('th')].find(th => th.textContent === 'checks')"
            ".nextElementSibling.textContent"
        )
        assert checks == "dns, tcp"
        assert s.screenshot(ARTIFACTS / "statuspage-detail-local.png") > 1000
        back = s.find('a[href="/"]')
        assert s.text(back) == "\u2190 status page"
        assert _click_and_wait(s, back) == origin + "/"
        assert s.execute("return document.title") == "Messaging status"
        s.click(s.find(f"{cell} summary"))
        assert s.screenshot(ARTIFACTS / "statuspage-details-open.png") > 10_000
    print(
        f"screenshots {ARTIFACTS / 'statuspage-detail-local.png'}, "
        f"{ARTIFACTS / 'statuspage-details-open.png'}"
    )


def test_2000_tuples_on_a_phone(local_driver: Driver) -> None:
    """At 390 px: the page does not scroll sideways; every cell of the matrix is on screen
    and named by its network; the canaries' and resolvers' table scrolls in its own box."""
    site, _ = _site("2000x5")
    with _serve(site) as origin, local_driver.session(mobile=PHONE) as phone:
        phone.get(origin + "/")
        seen = phone.execute(FIRST_SCREEN_JS)
        assert seen["clientWidth"] == 390
        assert seen["scrollWidth"] <= seen["clientWidth"]
        for c in seen["cells"]:
            assert c["rect"]["left"] >= 0, c
            assert c["rect"]["right"] <= 390, c
        wrap = phone.execute(
            "const w = document.querySelector('#infra').parentElement;"
            "return [w.clientWidth, w.scrollWidth, getComputedStyle(w).overflowX]"
        )
        assert wrap[0] <= 390
        assert wrap[2] == "auto"
        path = ARTIFACTS / "statuspage-phone-2000x5.png"
        assert phone.screenshot(path) > 10_000
    print(f"phone screenshot {path}; the resolver table is {wrap[1]} px in a {wrap[0]} px box")
