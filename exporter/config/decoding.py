"""The decoding context: where errors are collected, and the shapes every section shares
(a mapping of known keys, a mapping of names, a list).

A mapping with a fixed schema is declared once, as a `Fields` table: key -> decoder. The
table gives both the keys allowed (an unknown key's error lists them, in table order) and how
each given key is decoded (in table order too). A decoder records its errors and returns
None for a value it refuses; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from exporter.config.errors import ConfigError, article, describe, join, key_text, quote

__all__ = ["NAME", "Decode", "Decoder", "Fields", "later"]

#: Names of resolvers, networks, services and endpoints: Prometheus label values.
NAME: Final = re.compile(r"[a-z0-9][a-z0-9_.-]*")


class Decoder:
    """The errors found so far, and the directory relative CA file paths are taken from."""

    def __init__(self, base_dir: Path | None) -> None:
        self.errors: list[ConfigError] = []
        self.base_dir = base_dir

    def error(self, path: str, message: str) -> None:
        self.errors.append(ConfigError(path, message))

    def mapping(self, path: str, value: object, what: str) -> Mapping[object, object] | None:
        if isinstance(value, Mapping):
            return value
        self.error(path, f"expected {what}, got {describe(value)}")
        return None

    def fields(
        self, path: str, value: object, allowed: Collection[str], what: str
    ) -> dict[str, object] | None:
        """The known keys of a fixed-schema mapping, undecoded; every other key is an error."""
        m = self.mapping(path, value, what)
        if m is None:
            return None
        out: dict[str, object] = {}
        for key, item in m.items():
            if isinstance(key, str) and key in allowed:
                out[key] = item
            else:
                self.error(
                    join(path, key_text(key)), f"unknown key (allowed: {', '.join(allowed)})"
                )
        return out

    def decode(self, path: str, given: Mapping[str, object], table: Fields) -> dict[str, Any]:
        """Each key of `given` decoded by its decoder of `table`, in table order; a value is
        None when its decoder refused it (the error is recorded)."""
        return {
            key: decode(self, join(path, key), given[key])
            for key, decode in table.items()
            if key in given
        }

    def section(self, path: str, value: object, table: Fields, what: str) -> dict[str, Any] | None:
        """A fixed-schema mapping decoded by `table` (`fields`, then `decode`); None when it is
        not a mapping or a value of it was refused (an unknown key alone is not a refusal:
        it is reported, and the known keys still count)."""
        given = self.fields(path, value, table, what)
        if given is None:
            return None
        n = len(self.errors)
        decoded = self.decode(path, given, table)
        return decoded if len(self.errors) == n else None

    def named(
        self,
        path: str,
        value: object,
        what: str,
        *,
        reserved: Mapping[str, str] = MappingProxyType({}),
    ) -> list[tuple[str, str | None, object]]:
        """(path, name or None when invalid, body) of each entry of a mapping of names.

        `reserved` maps names that may not be used to the reason, ending the message."""
        m = self.mapping(path, value, f"a mapping of {what} names to {what}s")
        if m is None:
            return []
        out: list[tuple[str, str | None, object]] = []
        for key, body in m.items():
            entry_path = join(path, key_text(key))
            name: str | None = None
            if not isinstance(key, str):
                self.error(
                    entry_path,
                    f"{article(what)} {what} name must be a string, got {describe(key)} (quote it)",
                )
            elif not NAME.fullmatch(key):
                self.error(
                    entry_path,
                    f"invalid {what} name {quote(key)}: use lowercase letters, digits, '_', '.' "
                    "and '-', starting with a letter or digit (names are Prometheus label values)",
                )
            elif key in reserved:
                self.error(entry_path, f"the {what} name {quote(key)} is reserved {reserved[key]}")
            else:
                name = key
            out.append((entry_path, name, body))
        return out

    def nonempty_list(
        self, path: str, value: object, what: str, *, empty_hint: str | None = None
    ) -> Sequence[object] | None:
        if not isinstance(value, list | tuple):
            self.error(path, f"expected a list of {what}, got {describe(value)}")
            return None
        if not value:
            hint = f"({empty_hint})" if empty_hint else f"(a list of {what})"
            self.error(path, f"must not be empty {hint}")
            return None
        return value

    def optional_list(self, path: str, value: object, what: str) -> Sequence[object] | None:
        """A list that may be empty (`[]` replaces a default list with nothing)."""
        if isinstance(value, list | tuple):
            return value
        self.error(path, f"expected a list of {what} (or [] for none), got {describe(value)}")
        return None


#: A decoder of one key: (context, key path, value) -> the decoded value, or None refused.
Decode: TypeAlias = Callable[[Decoder, str, object], object]
#: The schema of a mapping: key -> its decoder, in the order errors list and decode them.
Fields: TypeAlias = Mapping[str, Decode]


def later(d: Decoder, path: str, value: object) -> object:
    """The decoder of a key its section decodes itself, after the keys it depends on (the
    endpoints of a service need the service's narrowing): the value as given."""
    return value
