"""`--web.config.file`: TLS and basic auth for the endpoints, in the Prometheus
exporter-toolkit format (https://github.com/prometheus/exporter-toolkit, docs/web-config.md).

```yaml
tls_server_config:
  cert_file: server.crt            # relative paths are relative to this file's directory
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert   # optional, default NoClientCert
  client_ca_file: clients-ca.crt   # needed by the two Verify* policies
  min_version: TLS12               # optional: TLS10, TLS11, TLS12 (default), TLS13
  max_version: TLS13               # optional
basic_auth_users:
  prometheus: $2b$10$...           # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')
```

Decoding is strict like the config loader's: the YAML is read by the same reader
(`exporter.config.yamlfile`: size limit, UTF-8 only, a key given twice is an error), and
unknown keys, wrong types, bad values and files that cannot be read are errors naming the key
path, all of them at once (`ConfigErrors`).

No sockets: the only I/O is reading the file and the certificate files it names.
`ssl_context()` builds the server-side `ssl.SSLContext` (a bad certificate or key is an error
naming its key, found at load time, not at the first connection).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from exporter.config.errors import ConfigError, ConfigErrors
from exporter.config.errors import describe as _describe
from exporter.config.errors import quote as _q
from exporter.config.yamlfile import read_file, read_yaml

__all__ = [
    "CLIENT_AUTH_TYPES",
    "TLS_VERSIONS",
    "TlsServerConfig",
    "WebConfig",
    "load",
    "parse",
    "ssl_context",
]

#: The TLS versions of `min_version` / `max_version`, as exporter-toolkit spells them.
TLS_VERSIONS: Final[Mapping[str, ssl.TLSVersion]] = MappingProxyType(
    {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
)

#: The client certificate policies supported, with Python's verify mode. exporter-toolkit's
#: RequestClientCert and RequireAnyClientCert (a certificate asked for but never verified)
#: have no equivalent in Python's ssl module and are refused with a message saying so.
CLIENT_AUTH_TYPES: Final[Mapping[str, ssl.VerifyMode]] = MappingProxyType(
    {
        "NoClientCert": ssl.CERT_NONE,
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    }
)
_UNVERIFIED_CLIENT_AUTH: Final = ("RequestClientCert", "RequireAnyClientCert")

_TOP_KEYS: Final = ("tls_server_config", "basic_auth_users")
_TLS_KEYS: Final = (
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
)
#: A bcrypt hash in modular crypt format: $2a$, $2b$ or $2y$, a cost of 04-31, 53 characters.
_BCRYPT: Final = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsServerConfig:
    """`tls_server_config`, file paths resolved against the web config's directory."""

    cert_file: str
    key_file: str
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    min_version: str = "TLS12"
    max_version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebConfig:
    """The whole web config; the empty one (no TLS, no users) serves plain open HTTP."""

    tls: TlsServerConfig | None = None
    #: user -> bcrypt hash; empty: no authentication.
    basic_auth_users: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _unknown_keys(
    data: Mapping[Any, Any], allowed: tuple[str, ...], prefix: str, errors: list[ConfigError]
) -> None:
    for key in data:
        if key not in allowed:
            errors.append(
                ConfigError(f"{prefix}{key}", f"unknown key (allowed: {', '.join(allowed)})")
            )


def _readable(path: Path, where: str, errors: list[ConfigError]) -> None:
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        errors.append(ConfigError(where, f"{_q(str(path))}: no such file"))
    except IsADirectoryError:
        errors.append(ConfigError(where, f"{_q(str(path))}: is a directory, not a file"))
    except OSError as e:
        errors.append(ConfigError(where, f"{_q(str(path))}: cannot read: {e.strerror or e}"))


def _client_auth(values: Mapping[str, str], ca_given: bool, errors: list[ConfigError]) -> str:
    """The client_auth_type of `tls_server_config`, checked with its client_ca_file."""
    prefix = "tls_server_config."
    auth = values.get("client_auth_type", "NoClientCert")
    if auth in _UNVERIFIED_CLIENT_AUTH:
        errors.append(
            ConfigError(
                prefix + "client_auth_type",
                f"{_q(auth)} is not supported (a client certificate that is never verified); "
                f"use one of {', '.join(CLIENT_AUTH_TYPES)}",
            )
        )
    elif auth not in CLIENT_AUTH_TYPES:
        errors.append(
            ConfigError(
                prefix + "client_auth_type",
                f"unknown policy {_q(auth)} (allowed: {', '.join(CLIENT_AUTH_TYPES)})",
            )
        )
    elif auth == "NoClientCert" and "client_ca_file" in values:
        errors.append(
            ConfigError(
                prefix + "client_ca_file",
                "set without a client_auth_type that verifies client certificates "
                "(VerifyClientCertIfGiven or RequireAndVerifyClientCert)",
            )
        )
    elif auth != "NoClientCert" and not ca_given:
        errors.append(ConfigError(prefix + "client_ca_file", f"missing (required by {auth})"))
    return auth


def _tls(data: object, base_dir: Path, errors: list[ConfigError]) -> TlsServerConfig | None:
    prefix = "tls_server_config."
    if not isinstance(data, Mapping):
        errors.append(
            ConfigError("tls_server_config", f"expected a mapping, got {_describe(data)}")
        )
        return None
    before = len(errors)
    _unknown_keys(data, _TLS_KEYS, prefix, errors)
    values: dict[str, str] = {}
    for key in _TLS_KEYS:
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str) or not value:
            errors.append(
                ConfigError(prefix + key, f"expected a non-empty string, got {_describe(value)}")
            )
            continue
        values[key] = value
    for key in ("cert_file", "key_file"):
        if key not in data:
            errors.append(ConfigError(prefix + key, "missing (required with tls_server_config)"))
    for key in ("cert_file", "key_file", "client_ca_file"):
        if key in values:
            values[key] = str(base_dir / values[key])
            _readable(Path(values[key]), prefix + key, errors)
    auth = _client_auth(values, "client_ca_file" in data, errors)
    for key in ("min_version", "max_version"):
        if key in values and values[key] not in TLS_VERSIONS:
            errors.append(
                ConfigError(
                    prefix + key,
                    f"unknown TLS version {_q(values[key])} (allowed: {', '.join(TLS_VERSIONS)})",
                )
            )
    low, high = values.get("min_version", "TLS12"), values.get("max_version")
    if (
        high is not None
        and low in TLS_VERSIONS
        and high in TLS_VERSIONS
        and TLS_VERSIONS[low] > TLS_VERSIONS[high]
    ):
        errors.append(
            ConfigError(prefix + "max_version", f"{high} is lower than min_version {low}")
        )
    if len(errors) > before:
        return None
    return TlsServerConfig(
        cert_file=values["cert_file"],
        key_file=values["key_file"],
        client_auth_type=auth,
        client_ca_file=values.get("client_ca_file"),
        min_version=low,
        max_version=high,
    )


def _users(data: object, errors: list[ConfigError]) -> Mapping[str, str]:
    if not isinstance(data, Mapping):
        errors.append(ConfigError("basic_auth_users", f"expected a mapping, got {_describe(data)}"))
        return MappingProxyType({})
    users: dict[str, str] = {}
    for user, hashed in data.items():
        where = f"basic_auth_users.{user}"
        if not isinstance(user, str) or not user or ":" in user:
            errors.append(ConfigError(where, "a user name must be a non-empty string without ':'"))
            continue
        if not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
            got = "a string that is not one" if isinstance(hashed, str) else _describe(hashed)
            errors.append(
                ConfigError(
                    where,
                    f"expected a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters), got {got}",
                )
            )
            continue
        users[user] = hashed
    return MappingProxyType(users)


def parse(data: object, *, base_dir: Path, source: str = "web config") -> WebConfig:
    """The WebConfig of decoded YAML `data` (None: the empty config). Raises ConfigErrors."""
    if data is None:
        return WebConfig()
    if not isinstance(data, Mapping):
        raise ConfigErrors([ConfigError(source, f"expected a mapping, got {_describe(data)}")])
    errors: list[ConfigError] = []
    _unknown_keys(data, _TOP_KEYS, "", errors)
    tls = None
    if data.get("tls_server_config") is not None:
        tls = _tls(data["tls_server_config"], base_dir, errors)
    users: Mapping[str, str] = MappingProxyType({})
    if data.get("basic_auth_users") is not None:
        users = _users(data["basic_auth_users"], errors)
    if errors:
        raise ConfigErrors(errors)
    config = WebConfig(tls=tls, basic_auth_users=users)
    if tls is not None:
        ssl_context(config)  # a certificate or key that cannot be used: an error now
    return config


def load(path: str | os.PathLike[str]) -> WebConfig:
    """The WebConfig of a YAML file; relative paths in it are relative to its directory.

    Read like the main config (`exporter.config.yamlfile`): a key given twice is an error
    naming its key path, reported with the other errors of the file."""
    source = os.fspath(path)
    text = read_file(source, what="web config file")
    document = read_yaml(text, source=source, prefix="invalid YAML: ")
    errors = [
        ConfigError(
            d.key_path,
            f"duplicate key (line {d.line}, column {d.column}; first on line {d.first_line})",
        )
        for d in document.duplicates
    ]
    try:
        config = parse(document.data, base_dir=Path(source).parent, source=source)
    except ConfigErrors as e:
        raise ConfigErrors([*errors, *e.errors]) from None
    if errors:
        raise ConfigErrors(errors)
    return config


def ssl_context(config: WebConfig, context: ssl.SSLContext | None = None) -> ssl.SSLContext:
    """The server-side SSLContext of `config.tls` (which must be set), or `context` updated
    in place (a reload: new connections get the new certificate, the listener stays).

    Raises ConfigErrors naming the key whose file cannot be used."""
    tls = config.tls
    if tls is None:
        raise ValueError("no tls_server_config")
    ctx = context if context is not None else ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    prefix = "tls_server_config."
    try:
        ctx.minimum_version = TLS_VERSIONS[tls.min_version]
        ctx.maximum_version = (
            TLS_VERSIONS[tls.max_version]
            if tls.max_version is not None
            else ssl.TLSVersion.MAXIMUM_SUPPORTED
        )
    except (ValueError, ssl.SSLError) as e:
        raise ConfigErrors([ConfigError(prefix + "min_version", str(e))]) from None
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, OSError) as e:
        raise ConfigErrors(
            [
                ConfigError(
                    prefix + "cert_file",
                    f"cannot use {_q(tls.cert_file)} with key_file {_q(tls.key_file)}: "
                    f"{getattr(e, 'reason', None) or e}",
                )
            ]
        ) from None
    ctx.verify_mode = CLIENT_AUTH_TYPES[tls.client_auth_type]
    if tls.client_ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        except (ssl.SSLError, OSError) as e:
            raise ConfigErrors(
                [
                    ConfigError(
                        prefix + "client_ca_file",
                        f"cannot use {_q(tls.client_ca_file)}: {getattr(e, 'reason', None) or e}",
                    )
                ]
            ) from None
    return ctx
