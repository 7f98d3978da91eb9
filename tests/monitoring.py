"""What the shipped dashboards, rules and Alertmanager config hold, for the tests that check
them (tests/test_dashboards.py, tests/test_rules.py, tests/test_alertmanager.py,
tests/test_e2e_alerts.py): every PromQL query with the panel it belongs to, Grafana variable
substitution, and the metric names and label matchers a query uses.

The PromQL reading here is a tokenizer, not a parser: enough to find metric names (an
identifier that is not a function, an aggregation, a keyword or a label in a grouping list)
and the label matchers of a selector. Prometheus itself runs every query in the e2e test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
PROVISIONING_DIR = REPO / "grafana" / "provisioning"
RULES_DIR = REPO / "prometheus" / "rules"
RULE_TESTS_DIR = REPO / "prometheus" / "tests"
ALERTMANAGER_YML = REPO / "alertmanager" / "alertmanager.yml"
ALERTS_DOC = REPO / "docs" / "alerts.md"
METRICS_DOC = REPO / "docs" / "metrics.md"

#: Series Prometheus makes for every scrape target (not the exporter's).
SCRAPE_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
)
#: Target labels a query may match on besides the exporter's own labels.
TARGET_LABELS = frozenset({"job", "instance", "vantage"})


# --- dashboards ----------------------------------------------------------------------------


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def load_dashboard(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those nested in collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True, slots=True)
class PanelQuery:
    dashboard: str  # uid
    panel: str  # title
    ref_id: str
    expr: str
    instant: bool
    repeat: str | None  # the variable the panel repeats over, if any

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    out = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            out.append(
                PanelQuery(
                    dashboard=dashboard["uid"],
                    panel=panel.get("title", ""),
                    ref_id=target.get("refId", ""),
                    expr=target["expr"],
                    instant=bool(target.get("instant")) and not target.get("range", False),
                    repeat=panel.get("repeat") or None,
                )
            )
    return out


def variables(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    listed = dashboard.get("templating", {}).get("list", [])
    assert isinstance(listed, list)
    return listed


def variable_query(variable: Mapping[str, Any]) -> str:
    query = variable.get("query", "")
    if isinstance(query, dict):
        query = query.get("query", "")
    assert isinstance(query, str)
    return query


LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$"
)


def parse_label_values(query: str) -> tuple[str | None, str]:
    """`label_values(metric{...}, label)` -> (selector or None, label)."""
    match = LABEL_VALUES.match(query)
    if match is None:
        raise ValueError(f"not a label_values() query: {query!r}")
    return match.group("selector"), match.group("label")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Grafana's variable interpolation for `$name` and `${name}` (longest names first, so
    `$__rate_interval` is not read as `$__rate`)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    left = re.findall(r"\$\{?\w+", expr)
    if left:
        raise KeyError(f"no value for {sorted(set(left))} in {expr!r}")
    return expr


# --- rules -----------------------------------------------------------------------------------


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*.yml"))


def load_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def alerting_rules() -> list[dict[str, Any]]:
    return [r for r in load_rules() if "alert" in r]


def recording_rules() -> list[dict[str, Any]]:
    return [r for r in load_rules() if "record" in r]


FOR_LINE = re.compile(r"^(?P<head>\s*(?:keep_firing_)?for:\s*)(?P<value>\S+)\s*$", re.MULTILINE)


def shorten_for(text: str, duration: str) -> tuple[str, int]:
    """The rule file with every `for:` and `keep_firing_for:` value replaced by `duration` and
    nothing else changed; and how many were replaced."""
    return FOR_LINE.subn(lambda m: m.group("head") + duration, text)


# --- PromQL tokens ---------------------------------------------------------------------------

AGGREGATIONS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    }
)  # fmt: skip
KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
     "bool", "offset", "inf", "nan", "atan2"}
)  # fmt: skip
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})

TOKEN = re.compile(
    r"""
      (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<range>\[[^\]]*\])
    | (?P<number>(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?)(?![A-Za-z_:]))
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},@])
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE,
)


def tokens(expr: str) -> list[tuple[str, str]]:
    out = []
    for match in TOKEN.finditer(expr):
        kind = match.lastgroup
        assert kind is not None
        if kind == "space":
            continue
        out.append((kind, match.group()))
    return out


@dataclass(frozen=True, slots=True)
class Selector:
    metric: str
    #: (label, operator, value) of each matcher, the value unquoted
    matchers: tuple[tuple[str, str, str], ...]


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    return bytes(text[1:-1], "utf-8").decode("unicode_escape")


def selectors(expr: str) -> list[Selector]:
    """Every metric selector of a PromQL expression: its metric name and label matchers."""
    toks = tokens(expr)
    out: list[Selector] = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "ident" and text in GROUPING and nxt == ("op", "("):
            # a label list: skip to its closing parenthesis
            i += 2
            while i < len(toks) and toks[i] != ("op", ")"):
                i += 1
            i += 1
            continue
        if kind == "ident" and (text in KEYWORDS or text in AGGREGATIONS or nxt == ("op", "(")):
            i += 1
            continue
        if kind == "ident":
            matchers: list[tuple[str, str, str]] = []
            i += 1
            if i < len(toks) and toks[i] == ("op", "{"):
                i += 1
                while i < len(toks) and toks[i] != ("op", "}"):
                    if toks[i][0] == "ident" and i + 2 < len(toks) and toks[i + 2][0] == "string":
                        matchers.append((toks[i][1], toks[i + 1][1], _unquote(toks[i + 2][1])))
                        i += 3
                    else:
                        i += 1
                i += 1
            out.append(Selector(text, tuple(matchers)))
            continue
        i += 1
    return out


def metric_names(expr: str) -> set[str]:
    return {s.metric for s in selectors(expr)}


def alternatives(op: str, value: str) -> list[str] | None:
    """The literal values an `=` or a plain `a|b|c` `=~` matcher accepts (None when the
    regex is more than an alternation of names, e.g. a Grafana variable's `.*`)."""
    if op in ("=", "!="):
        return [value]
    if re.fullmatch(r"[A-Za-z0-9_.-]+(?:\|[A-Za-z0-9_.-]+)*", value) and "." not in value:
        return value.split("|")
    return None


# --- docs ------------------------------------------------------------------------------------


def documented_metrics() -> set[str]:
    """Every metric name in a table row of docs/metrics.md (`| \\`name\\` | ...`)."""
    names = set()
    for line in METRICS_DOC.read_text().splitlines():
        match = re.match(r"^\|\s*`([a-z_:]+)`\s*\|", line)
        if match:
            names.add(match.group(1))
    return names
