"""YAML → `exporter.config.model.Config`, or every problem of the file at once.

Decoding is strict: unknown keys, wrong types and dangling names are errors, and every error is
collected (never only the first) as a `ConfigError` naming the key path, e.g.
``services.telegram.endpoints.web.port: 70000 is not a port (1-65535)``.

Besides each key on its own, the probe matrix is checked as a whole: a tuple that can never
work (a UDP resolver through a SOCKS proxy, DoQ through an interface or namespace) is an error,
never a tuple silently skipped.

Pure core: no sockets. The only I/O is reading the config file and the CA files it names.
See docs/configuration.md for the reference of every key.

This module is the public face of the decoder; the work is done by the modules of
`exporter.config`: `yamlfile` (strict YAML reading), `decoding` (the context and the key
tables), `scalars`, `options`, `resolvers`, `networks`, `sections`, `endpoints`, `rules` and
`document` (the top level).
"""

from __future__ import annotations

import os
from pathlib import Path

from exporter.config.decoding import Decoder
from exporter.config.document import decode_config
from exporter.config.errors import MAX_REPORTED_ERRORS, ConfigError, ConfigErrors
from exporter.config.model import Config
from exporter.config.scalars import parse_duration
from exporter.config.yamlfile import MAX_CONFIG_BYTES, read_file, read_yaml

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_REPORTED_ERRORS",
    "ConfigError",
    "ConfigErrors",
    "load",
    "parse",
    "parse_duration",
    "parse_yaml",
]


def parse(data: object, *, base_dir: str | os.PathLike[str] | None = None) -> Config:
    """The Config of already-decoded YAML data (plain dicts, lists and scalars).

    Relative ca_file / extra_ca_file paths are taken from `base_dir` (default: the current
    directory). Raises ConfigErrors with every problem found.
    """
    d = Decoder(Path(base_dir) if base_dir is not None else None)
    config = decode_config(d, data)
    if config is None:
        raise ConfigErrors(d.errors)
    return config


def parse_yaml(
    text: str | bytes,
    *,
    source: str = "<yaml>",
    base_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """The Config of a YAML document. `source` is the path of YAML and encoding errors.

    Whatever the text, the outcome is a Config or ConfigErrors: a document larger than
    `MAX_CONFIG_BYTES` or nested deeper than the YAML parser's recursion allows is an error
    with the source as its path, never a traceback. Aliases are not expanded (PyYAML shares
    the aliased object), so an alias bomb costs no memory, and the schema never walks deeper
    than its own keys. A key given twice is an error, reported with the others."""
    document = read_yaml(text, source=source)
    errors = [ConfigError(source, str(duplicate)) for duplicate in document.duplicates]
    try:
        config = parse(document.data, base_dir=base_dir)
    except ConfigErrors as e:
        raise ConfigErrors([*errors, *e.errors]) from None
    if errors:
        raise ConfigErrors(errors)
    return config


def load(path: str | os.PathLike[str]) -> Config:
    """The Config of a YAML file. Relative CA file paths are relative to the file's directory."""
    source = os.fspath(path)
    data = read_file(source, what="config file")
    return parse_yaml(data, source=source, base_dir=Path(source).parent)
