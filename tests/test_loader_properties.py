"""Property-based tests of the config decoder: whatever the input, a Config or ConfigErrors.

Hypothesis generates YAML text, decoded structures and mutations of the shipped config; each
example must end in a `Config` or in `ConfigErrors` whose every error names a key path (or
the source) and says what is wrong on one line. Any other exception is a traceback a user
would see, and fails the test. Beside the generated inputs, the YAML edge cases a hostile or
careless file can hold are pinned: alias bombs, recursive aliases, deep nesting, a huge file,
non-UTF-8 bytes, duplicate keys, merge keys.

Runs are bounded and deterministic (`derandomize`, no example database): CI sees the same
examples every time; ~12 s in all on one core, 1,200 generated examples.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config.loader import (
    MAX_CONFIG_BYTES,
    MAX_REPORTED_ERRORS,
    ConfigErrors,
    load,
    parse,
    parse_yaml,
)
from exporter.config.model import Config

REPO = Path(__file__).resolve().parent.parent
SHIPPED = (REPO / "config.yaml").read_text()
SHIPPED_DATA: dict[str, Any] = yaml.safe_load(SHIPPED)

#: Examples per property: enough to reach every top-level section, small enough for CI.
EXAMPLES = 200

bounded = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Every key the schema knows, so generated mappings hit real decoders, not only "unknown key".
KEYS = sorted(
    {
        *SHIPPED_DATA,
        *(k for r in SHIPPED_DATA["resolvers"].values() for k in r),
        *(k for n in SHIPPED_DATA["networks"].values() if n for k in n),
        "endpoints",
        "host",
        "address",
        "port",
        "checks",
        "tls",
        "http",
        "resolvers",
        "networks",
        "ip_families",
        "control_sni",
        "throughput",
        "quic",
        "expected_networks",
        "method",
        "path",
        "expect_status",
        "fail_if_body_matches",
        "headers",
        "body_limit",
        "ca_file",
        "server_name",
        "insecure_skip_verify",
        "proxy",
        "netns",
        "interface",
        "source_address",
        "url",
        "silent",
        "identity",
        "qname",
        "expect",
    }
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "10s",
            "0s",
            "1h30m",
            "udp",
            "doh",
            "socks5://u:p@127.0.0.1:1080",
            "127.0.0.1",
            "::1",
            "2xx",
            "a.example",
            "https://dns.example/dns-query",
            "[",
            "(?P<x",
            "-1",
        ]
    ),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12), st.integers(), st.booleans())
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


def _assert_clear(errors: ConfigErrors) -> None:
    """A clear error: at least one, each with a path and a one-line message, and no more
    lines than the cap (plus its "and N more")."""
    assert errors.errors
    assert len(errors.errors) <= MAX_REPORTED_ERRORS + 1
    for error in errors.errors:
        assert error.path, error
        assert error.message, error
        assert "\n" not in str(error), str(error)
        assert "Traceback" not in error.message


def _outcome(call: Any) -> Config | ConfigErrors:
    try:
        result = call()
    except ConfigErrors as e:
        _assert_clear(e)
        return e
    assert isinstance(result, Config)
    return result


@bounded
@given(st.text(max_size=300))
def test_any_text_is_a_config_or_clear_errors(text: str) -> None:
    _outcome(lambda: parse_yaml(text))


@bounded
@given(st.binary(max_size=300))
def test_any_bytes_are_a_config_or_clear_errors(data: bytes) -> None:
    _outcome(lambda: parse_yaml(data))


@bounded
@given(structures)
def test_any_structure_is_a_config_or_clear_errors(data: object) -> None:
    _outcome(lambda: parse(data))


@bounded
@given(st.dictionaries(st.sampled_from(KEYS), structures, max_size=6))
def test_any_dumped_mapping_is_a_config_or_clear_errors(data: dict[object, object]) -> None:
    # Through YAML text, as a user would write it.
    text = yaml.safe_dump(data, allow_unicode=True)
    _outcome(lambda: parse_yaml(text))


def _paths(data: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path to a value inside `data` (mapping keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


SHIPPED_PATHS = _paths(SHIPPED_DATA)


def _replace(data: Any, path: tuple[object, ...], value: object) -> Any:
    out = copy.deepcopy(data)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def test_shipped_config_is_valid() -> None:
    # The base the mutations start from must itself be valid, or every mutation "fails".
    assert isinstance(parse_yaml(SHIPPED), Config)
    assert len(SHIPPED_PATHS) > 300


@bounded
@given(st.sampled_from(SHIPPED_PATHS), structures)
def test_one_value_of_the_shipped_config_replaced(path: tuple[object, ...], value: object) -> None:
    _outcome(lambda: parse(_replace(SHIPPED_DATA, path, value)))


@bounded
@given(st.sampled_from(SHIPPED_PATHS), st.sampled_from([None, [], {}, "x", -1, 1.5, True]))
def test_a_wrong_value_is_reported_at_its_key_path(path: tuple[object, ...], value: object) -> None:
    """Any error a replaced value causes names a key path; when the value is wrong for its
    key, at least one error is at that key or inside it (a YAML list index `[i]`)."""
    outcome = _outcome(lambda: parse(_replace(SHIPPED_DATA, path, value)))
    if isinstance(outcome, ConfigErrors):
        # The path up to the first list index, as the loader spells it ("a.b.c").
        keys: list[str] = []
        for part in path:
            if not isinstance(part, str):
                break
            keys.append(part)
        dotted = ".".join(keys)
        assert any(e.path.startswith(dotted) for e in outcome.errors), (path, outcome)


# ---- YAML edge cases, pinned


def _errors(text: str | bytes) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        parse_yaml(text, source="c.yaml")
    _assert_clear(info.value)
    return [str(e) for e in info.value.errors]


def _laughs(levels: int, *, into: str) -> str:
    """A billion-laughs document: 10**levels strings if the aliases were expanded."""
    lines = ["x-laughs:", '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\n{into}: *l{levels}\n"


@pytest.mark.parametrize("into", ["blockpage_addresses", "blockpage_patterns", "ip_families"])
def test_billion_laughs_is_rejected_fast(into: str) -> None:
    started = time.perf_counter()
    errors = _errors(_laughs(9, into=into))
    elapsed = time.perf_counter() - started
    assert "x-laughs: unknown key" in errors[0]
    assert any(e.startswith(f"{into}") for e in errors), errors
    # Not a speed test: 10**9 expanded items would take minutes and gigabytes, not seconds.
    assert elapsed < 10, elapsed


def test_merge_key_bomb_is_rejected_fast() -> None:
    lines = ["x-a0: &a0 {" + ", ".join(f"k{i}: 1" for i in range(10)) + "}"]
    for i in range(1, 8):
        lines.append(f"x-a{i}: &a{i} {{<<: [" + ",".join([f"*a{i - 1}"] * 10) + "]}")
    started = time.perf_counter()
    errors = _errors("\n".join(lines) + "\n")
    assert "x-a0: unknown key" in errors[0]
    assert time.perf_counter() - started < 10


def test_recursive_alias_is_an_error_not_a_hang() -> None:
    errors = _errors("services: &s {telegram: {endpoints: *s}}\n")
    assert any(e.startswith("services.telegram.endpoints") for e in errors), errors


@pytest.mark.parametrize(
    "text",
    [
        "interval: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "interval: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
        "services:\n" + "".join(" " * i + "k:\n" for i in range(1, 1_000)),
    ],
    ids=["flow-lists", "flow-mappings", "block-mappings"],
)
def test_deep_nesting_is_a_clear_error(text: str) -> None:
    assert len(text) < MAX_CONFIG_BYTES  # nested, not merely large
    assert _errors(text) == ["c.yaml: YAML nested too deeply"]


def test_huge_document_is_refused_before_parsing() -> None:
    text = "x: " + "a" * MAX_CONFIG_BYTES + "\n"
    started = time.perf_counter()
    assert _errors(text) == [f"c.yaml: too large: {MAX_CONFIG_BYTES + 4} bytes, the limit is 4 MiB"]
    assert time.perf_counter() - started < 1  # refused unread: parsing it would take ~2 s


def test_huge_file_is_read_only_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"a" * (3 * MAX_CONFIG_BYTES))
    with pytest.raises(ConfigErrors) as info:
        load(path)
    assert [str(e) for e in info.value.errors] == [
        f"{path}: too large: more than {MAX_CONFIG_BYTES} bytes, the limit is 4 MiB"
    ]


def test_a_config_just_under_the_limit_still_loads() -> None:
    padding = "#" + "p" * 98 + "\n"
    text = SHIPPED + padding * ((MAX_CONFIG_BYTES - len(SHIPPED.encode())) // len(padding))
    assert len(text.encode()) <= MAX_CONFIG_BYTES
    assert isinstance(parse_yaml(text), Config)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"interval: 10s\n\xff\xfe", "c.yaml: not valid UTF-8: byte 0xff at line 2, column 1"),
        ("interval: 10s\n".encode("utf-16"), "c.yaml: not valid UTF-8: byte 0xff at line 1"),
        (b"interval: \x80", "c.yaml: not valid UTF-8: byte 0x80 at line 1, column 11"),
    ],
)
def test_non_utf8_names_the_byte(data: bytes, expected: str) -> None:
    assert _errors(data)[0].startswith(expected)


def test_control_characters_are_a_yaml_error() -> None:
    assert _errors("interval: 10s\x00\n")[0].startswith("c.yaml: ")


def test_duplicate_keys_name_the_key_and_both_lines() -> None:
    text = "interval: 10s\ntimeout: 1s\ninterval: 20s\nservices: {}\n"
    errors = _errors(text)
    assert 'c.yaml: line 3, column 1: duplicate key "interval" (first on line 1)' in errors, errors


def test_anchors_and_merge_keys_are_honoured() -> None:
    config = parse_yaml(
        """\
services:
  s:
    endpoints:
      a: &common {port: 443, checks: [tcp], address: 127.0.0.1}
      b: {<<: *common, address: 127.0.0.2, port: 8443}
"""
    )
    endpoints = config.services["s"].endpoints
    assert (endpoints["a"].port, endpoints["b"].port) == (443, 8443)
    assert endpoints["b"].checks == endpoints["a"].checks


def test_too_many_errors_are_cut_with_a_count() -> None:
    count = MAX_REPORTED_ERRORS + 500
    errors = _errors("blockpage_addresses: [" + ",".join(["1"] * count) + "]\nservices: {}\n")
    assert len(errors) == MAX_REPORTED_ERRORS + 1
    assert errors[-1].endswith("and 501 more errors not shown (fix the ones above first)")
