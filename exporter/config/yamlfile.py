"""Strict reading of a YAML file, shared by the config and the web config.

`yaml.safe_load` semantics, with the limits a hostile or careless file needs: at most
`MAX_CONFIG_BYTES`, UTF-8 only, nesting deeper than the parser's recursion allows is an error
(never a traceback), and a key given twice in one mapping is reported (a merge `<<:` may
still be overridden: that is what merges are for). Aliases are not expanded (PyYAML shares the
aliased object), so an alias bomb costs no memory.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from exporter.config.errors import ConfigError, ConfigErrors, describe, join, key_text

__all__ = [
    "MAX_CONFIG_BYTES",
    "Duplicate",
    "YamlDocument",
    "read_file",
    "read_yaml",
    "too_large",
]

#: Largest config file accepted, bytes. The shipped config is ~17 KB and an endpoint takes
#: ~80 bytes, so 10,000 endpoints fit in 1 MB; PyYAML parses ~2.5 MB/s (50 MB took 20 s).
MAX_CONFIG_BYTES: Final = 4 * 1024 * 1024

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A key given a second time in one mapping (lines and columns count from 1)."""

    key: object
    line: int
    column: int
    first_line: int
    #: The key path of the duplicate key, like "tls_server_config.cert_file".
    key_path: str

    def __str__(self) -> str:
        return (
            f"line {self.line}, column {self.column}: duplicate key {describe(self.key)} "
            f"(first on line {self.first_line})"
        )


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """The decoded data of a YAML text (plain dicts, lists and scalars; None when empty) and
    the keys it gives twice, in the order of the text."""

    data: object
    duplicates: tuple[Duplicate, ...]


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load semantics, but a key given twice in one mapping is recorded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        #: (mapping node, key, its key node, the first key node), in the order found.
        self.duplicates: list[tuple[yaml.MappingNode, object, yaml.Node, yaml.Node]] = []

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Hashable, object]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: the base class reports it
                    continue
                if first is None:
                    seen[key] = key_node
                else:
                    self.duplicates.append((node, key, key_node, first))
        return super().construct_mapping(node, deep)


def _mapping_paths(root: yaml.Node) -> dict[int, str]:
    """id(node) -> key path of every mapping node under `root`, each by the first way to it
    (an alias shares its node; a recursive alias would loop without the `seen` check)."""
    paths: dict[int, str] = {}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            paths[id(node)] = path
            for key_node, value_node in reversed(node.value):
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                stack.append((value_node, join(path, key_text(key))))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(
                (item, f"{path}[{i}]") for i, item in reversed(list(enumerate(node.value)))
            )
    return paths


def _mark(mark: yaml.Mark | None) -> str:
    return "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}"


def _yaml_message(e: yaml.YAMLError) -> str:
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        msg = f"{_mark(e.problem_mark)}: {e.problem or 'invalid YAML'}"
        if e.context:
            where = f" at {_mark(e.context_mark)}" if e.context_mark is not None else ""
            msg += f" ({e.context}{where})"
        return " ".join(msg.split())
    return " ".join(str(e).split())


def too_large(size: int, *, at_least: bool = False) -> str:
    """The message of a file over `MAX_CONFIG_BYTES` (`at_least`: `size` is where reading
    stopped, not the file's size)."""
    limit = MAX_CONFIG_BYTES // (1024 * 1024)
    if at_least:
        return f"too large: more than {MAX_CONFIG_BYTES} bytes, the limit is {limit} MiB"
    return f"too large: {size} bytes, the limit is {limit} MiB"


def _decode(raw: bytes, source: str, prefix: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        message = f"not valid UTF-8: byte 0x{raw[e.start]:02x} at line {line}, column {column}"
        raise ConfigErrors([ConfigError(source, prefix + message)]) from None


def read_yaml(text: str | bytes, *, source: str, prefix: str = "") -> YamlDocument:
    """The data of one YAML document; ConfigErrors (one error, with `source` as its path) when
    the text is larger than `MAX_CONFIG_BYTES`, not UTF-8, not YAML or nested too deeply.

    `prefix` starts the message of a text that is no YAML document (the web config says
    "invalid YAML: "). Duplicate keys are not raised: the caller reports them, with the other
    errors of the file."""
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > MAX_CONFIG_BYTES:
        raise ConfigErrors([ConfigError(source, too_large(size))])
    if isinstance(text, bytes):
        text = _decode(text, source, prefix)
    try:
        # The reader checks the whole text for non-printable characters on construction.
        loader = _StrictLoader(text)
    except yaml.YAMLError as e:
        raise ConfigErrors([ConfigError(source, prefix + _yaml_message(e))]) from None
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as e:
        raise ConfigErrors([ConfigError(source, prefix + _yaml_message(e))]) from None
    except RecursionError:
        # PyYAML composes and constructs recursively: 100,000 "[" or 5,000 nested flow
        # mappings exhaust the interpreter's stack (tests/test_loader_properties.py).
        raise ConfigErrors([ConfigError(source, prefix + "YAML nested too deeply")]) from None
    finally:
        loader.dispose()
    if not loader.duplicates or root is None:
        return YamlDocument(data, ())
    paths = _mapping_paths(root)
    duplicates = tuple(
        Duplicate(
            key=key,
            line=node.start_mark.line + 1,
            column=node.start_mark.column + 1,
            first_line=first.start_mark.line + 1,
            key_path=join(paths.get(id(mapping), ""), key_text(key)),
        )
        for mapping, key, node, first in loader.duplicates
    )
    return YamlDocument(data, duplicates)


def read_file(path: str | os.PathLike[str], *, what: str) -> bytes:
    """The bytes of a file of at most `MAX_CONFIG_BYTES` (never more are read: /dev/zero is a
    "file" too). ConfigErrors, with the path as the error's path, when it cannot be read;
    `what` names the file in "is a directory, not a ..."."""
    source = os.fspath(path)
    try:
        with Path(source).open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigErrors([ConfigError(source, "no such file")]) from None
    except IsADirectoryError:
        raise ConfigErrors([ConfigError(source, f"is a directory, not a {what}")]) from None
    except PermissionError:
        raise ConfigErrors([ConfigError(source, "cannot read: permission denied")]) from None
    except OSError as e:
        raise ConfigErrors([ConfigError(source, f"cannot read: {e.strerror or e}")]) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigErrors([ConfigError(source, too_large(len(data), at_least=True))])
    return data
