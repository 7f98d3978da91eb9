"""Known blockpages by pattern (exporter.judge.pages.blockpage_reason), and the round's memo of
what the patterns said of each page: the same answer as a scan of its own, one scan per page."""

from __future__ import annotations

import dataclasses

from exporter.judge.pages import PageScans, blockpage_reason
from exporter.judge.verdict import judge
from exporter.model.judgement import Verdict
from exporter.model.observation import Observation
from tests.fakes.observations import key, lab_config, ok

PAGE = b"<html><head><title>Telegram Web</title></head>" + b"<p>x</p>" * 500
BLOCKED = b"<html><head><title>Access denied</title></head>" + b"<p>x</p>" * 500


def _with_location(obs: Observation, location: str) -> Observation:
    assert obs.http is not None
    http = dataclasses.replace(obs.http, status=302, headers=(("Location", location),))
    return dataclasses.replace(obs, http=http)


def test_the_memo_answers_as_a_scan_of_its_own() -> None:
    config = lab_config()
    pages = [
        ok(key("clean", "isp"), body=PAGE),
        ok(key("clean", "google"), body=PAGE),
        ok(key("censor", "isp"), body=BLOCKED),
        _with_location(ok(key("censor", "google"), body=PAGE), "http://blocked.lab/x"),
        _with_location(ok(key("censor", "doh"), body=PAGE), "https://web.telegram.lab/"),
    ]
    scans: PageScans = {}
    for obs in pages * 2:
        assert blockpage_reason(obs, config, scans) == blockpage_reason(obs, config)
    # one entry per distinct (body, Location): the Location is part of the page
    assert len(scans) == 4
    assert scans[(PAGE, "")] is None
    assert scans[(BLOCKED, "")] is not None
    assert scans[(PAGE, "http://blocked.lab/x")] is not None


def test_a_round_of_shared_pages_is_judged_per_tuple() -> None:
    config = lab_config()
    observations = {
        key("clean", "isp"): ok(key("clean", "isp"), body=PAGE),
        key("clean", "google"): ok(key("clean", "google"), body=PAGE),
        key("censor", "isp"): ok(key("censor", "isp"), body=BLOCKED),
        key("censor", "google"): ok(key("censor", "google"), body=PAGE),
    }
    findings = judge(config, observations).findings
    assert {k: f.verdict for k, f in findings.items()} == {
        key("clean", "isp"): Verdict.OK,
        key("clean", "google"): Verdict.OK,
        key("censor", "isp"): Verdict.HTTP_BLOCKPAGE,
        key("censor", "google"): Verdict.OK,
    }
    assert "access denied" in findings[key("censor", "isp")].reason
