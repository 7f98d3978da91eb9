"""Config errors: one problem (`ConfigError`: a key path and what is wrong), every problem of
a file (`ConfigErrors`), and the spelling of values inside their messages.

A message is always one line: values are quoted as JSON strings (`quote`) or described as YAML
would spell them (`describe`), so a key or value holding a line break cannot split it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_REPORTED_ERRORS",
    "ConfigError",
    "ConfigErrors",
    "article",
    "describe",
    "join",
    "key_text",
    "quote",
]


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One problem of a config: where (a key path) and what."""

    path: str  # key path like "services.telegram.endpoints.web.port"
    message: str  # e.g. "70000 is not a port (1-65535)"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


#: Errors reported at most (a real config narrowed wrongly can have ~150); past it one line
#: says how many more there were. A generated or hostile file with 200,000 bad list items
#: would otherwise print 17 MB of errors.
MAX_REPORTED_ERRORS: Final = 1000


class ConfigErrors(Exception):
    """Every problem of a config; `str()` is one line per problem.

    At most `MAX_REPORTED_ERRORS` are kept, plus a last line counting the ones left out."""

    errors: tuple[ConfigError, ...]

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        kept = tuple(errors)
        if len(kept) > MAX_REPORTED_ERRORS + 1:
            left_out = len(kept) - MAX_REPORTED_ERRORS
            more = ConfigError(
                kept[MAX_REPORTED_ERRORS].path,
                f"... and {left_out} more errors not shown (fix the ones above first)",
            )
            kept = (*kept[:MAX_REPORTED_ERRORS], more)
        self.errors = kept
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def quote(text: str) -> str:
    """A string quoted for an error message, always on one line."""
    return json.dumps(text, ensure_ascii=False)


def describe(value: object) -> str:
    """A value as YAML would spell it, short, for "got ..." in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quote(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def article(word: str) -> str:
    """The indefinite article of `word` ("a" or "an")."""
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def join(path: str, key: str) -> str:
    """The key path of `key` inside the mapping at `path` ("" is the top level)."""
    return f"{path}.{key}" if path else key


def key_text(key: object) -> str:
    """A key as it appears in a key path. An empty key or one with a line break or another
    unprintable character is quoted (`""`, `"a\\nb"`), so that a path is always one line and
    never reads as its parent's ("services." or "")."""
    plain = isinstance(key, str) and key and key.isprintable()
    return key if plain and isinstance(key, str) else describe(key)
