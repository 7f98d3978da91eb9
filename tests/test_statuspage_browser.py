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

import base64
import functools
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from exporter.config.matrix import RESOLVER_CHECK_SERVICE
from exporter.model.judgement import Verdict
from exporter.web.statuspage import ICONS, REFRESH_SECONDS, label, state_of, worst
from tests.lab.topology import Lab
from tests.test_lab_verdicts import EXPECTED, PORT, Exporter, run_exporter
from tests.webdriver import CHROMEDRIVER, CHROMIUM, Driver, Session, chromedriver

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
    """Each tuple the lab knows the answer for reads that verdict in its cell, and each
    cell reads the worst of its rows, with an icon and a word beside its colour."""
    for (service, endpoint, network, resolver), expected in EXPECTED.items():
        cell = _cell(cells, service, network)
        prefix = f"{resolver} {endpoint} v4: "
        [row] = [r for r in cell["rows"] if r["text"].startswith(prefix)]
        assert row["text"] == prefix + label(Verdict(expected)), (service, network)
        assert row["state"] == state_of(Verdict(expected))
    probed = [c for c in cells if c["rows"]]
    assert len(probed) >= 16  # 4 services + canary on 4 networks
    assert {c["service"] for c in cells} == {
        "canary",
        "messenger",
        "signal",
        "telegram",
        "whatsapp",
    }
    assert RESOLVER_CHECK_SERVICE not in desktop.source
    now = time.time()
    for cell in probed:
        verdicts = [_verdict(r["text"].split(": ", 1)[1]) for r in cell["rows"]]
        cell_verdict = worst(verdicts)
        assert cell["label"] == label(cell_verdict), cell
        assert cell["verdict"] == (cell_verdict.value if cell_verdict else None)
        assert f"cell {state_of(cell_verdict)}" in " ".join(cell["classes"])
        for row in cell["rows"]:  # the time of the last probe, in every row
            probed_at = datetime.fromisoformat(row["probed"].replace("Z", "+00:00"))
            assert now - 200 < probed_at.timestamp() <= now + 1, row
    # whole cells: a dead uplink is down, the censoring network is blocked
    assert _cell(cells, "telegram", "dead")["verdict"] == "network_down"
    assert _cell(cells, "telegram", "dead")["label"] == "\u2193 down: network_down"
    assert _cell(cells, "telegram", "censor")["label"].startswith("\u2717 blocked: ")
    assert "blocked" in _cell(cells, "whatsapp", "censor")["classes"]


def test_colour_is_never_alone(desktop: Session, cells: list[dict[str, Any]]) -> None:
    """One colour per state, four distinct ones, and every cell and row starts with its
    state's icon and word; the icons are real glyphs of the page's font, not tofu."""
    colours: dict[str, set[str]] = {}
    for cell in cells:
        if not cell["rows"]:
            continue
        state = state_of(_verdict(cell["label"]))
        colours.setdefault(state, set()).add(cell["background"])
        icon, _, word = cell["label"].partition(" ")
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
    assert api == page
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
    assert items == len(real) + 1  # the first verdicts in one line


def _click_and_wait(session: Session, element: str) -> str:
    before = session.url
    session.click(element)
    return session.wait(lambda: session.url if session.url != before else None)


def test_a_click_opens_the_probe_detail(desktop: Session) -> None:
    """Click a resolver row, then a cell's verdict: the probe's full detail opens."""
    desktop.get(ORIGIN + "/")
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
    cell = desktop.find('td.cell[data-service="telegram"][data-network="censor"] a.verdict')
    shown = desktop.text(cell)
    first_row = desktop.text(
        desktop.find('td.cell[data-service="telegram"][data-network="censor"] li a')
    )
    _click_and_wait(desktop, cell)
    detail = desktop.execute(DETAIL_JS)
    assert (detail["service"], detail["network"]) == ("telegram", "censor")
    assert first_row == (
        f"{detail['resolver']} {detail['endpoint']} v{detail['family']}: "
        f"{label(Verdict(detail['verdict']))}"
    )
    assert _verdict(shown) is not None


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
