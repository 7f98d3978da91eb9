"""Log lines as logfmt or JSON, on stdlib logging.

Structured fields travel in `LogRecord.fields`, set with `extra=fields(k=v, ...)`:

    log.debug("probe failed", extra=fields(**observation_fields(obs)))
    -> ts=2024-05-01T10:00:00.123Z level=debug logger=exporter.runtime.scheduler msg="probe failed"
       service=telegram endpoint=web ... result=timeout phase=connect

Secrets: a `Proxy` given as a field value is written as its `redacted_url`, and nothing here
logs config objects; a proxy password must never reach a log line.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Mapping
from typing import Final, TextIO

from exporter.config.model import Network, Proxy
from exporter.model.observation import LABEL_NAMES, Observation, Phase

#: `--log.level` values, Prometheus-style.
LEVELS: Final[Mapping[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
#: `--log.format` values.
FORMATS: Final = ("logfmt", "json")

_LEVEL_NAMES: Final[Mapping[int, str]] = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}

#: The attribute of a LogRecord holding its structured fields.
FIELDS_ATTR: Final = "fields"

#: Marks the handler `configure()` installed, so a second call replaces it.
_HANDLER_MARK: Final = "_messaging_exporter_handler"


def fields(**values: object) -> dict[str, object]:
    """The `extra=` of a log call carrying structured fields."""
    return {FIELDS_ATTR: values}


def observation_fields(obs: Observation) -> dict[str, object]:
    """The fields of a probe's log line: its labels, result, failed phase and duration."""
    out: dict[str, object] = dict(zip(LABEL_NAMES, obs.key.labels(), strict=True))
    out["result"] = obs.result
    if obs.failed_phase is not None:
        out["phase"] = obs.failed_phase.value
    total = obs.phases.get(Phase.TOTAL)
    if total is not None:
        out["duration_seconds"] = round(total, 6)
    if obs.address is not None:
        out["address"] = obs.address
    detail = _failure_detail(obs)
    if detail is not None:
        out["detail"] = detail
    if obs.attempts != 1:
        out["attempts"] = obs.attempts
    return out


def _failure_detail(obs: Observation) -> str | None:
    """The exception text of the step that failed, if the probe recorded one."""
    if obs.error is None:
        return None
    steps: list[object] = [
        obs.dns,
        *obs.connects,
        obs.tls,
        obs.http,
        obs.quic,
        obs.stun,
        obs.mtproto,
    ]
    for step in steps:
        if step is None:
            continue
        error = getattr(step, "error", None)
        detail = getattr(step, "detail", None)
        if error is not None and isinstance(detail, str):
            return detail
    return None


def _timestamp(created: float) -> str:
    whole = math.floor(created)
    millis = int((created - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _plain(value: object) -> object:
    """A field value as JSON-able data; secrets redacted."""
    if isinstance(value, Proxy):
        return value.redacted_url
    if isinstance(value, Network):
        return value.name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _record_fields(record: logging.LogRecord) -> Mapping[str, object]:
    values = getattr(record, FIELDS_ATTR, None)
    return values if isinstance(values, Mapping) else {}


class LogfmtFormatter(logging.Formatter):
    """`key=value` pairs; values quoted when they hold a space, `=`, a quote or nothing."""

    def format(self, record: logging.LogRecord) -> str:
        pairs: list[tuple[str, object]] = [
            ("ts", _timestamp(record.created)),
            ("level", _LEVEL_NAMES.get(record.levelno, record.levelname.lower())),
            ("logger", record.name),
            ("msg", record.getMessage()),
        ]
        pairs.extend(_record_fields(record).items())
        if record.exc_info:
            pairs.append(("exc", self.formatException(record.exc_info)))
        return " ".join(f"{_logfmt_key(k)}={_logfmt_value(v)}" for k, v in pairs)


def _logfmt_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in key) or "_"


def _logfmt_value(value: object) -> str:
    plain = _plain(value)
    if plain is None:
        return '""'
    if isinstance(plain, bool):
        return "true" if plain else "false"
    text = str(plain)
    if text and not any(c in text for c in ' ="\\') and text.isprintable():
        return text
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": _timestamp(record.created),
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _record_fields(record).items():
            out.setdefault(key, _plain(value))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def make_handler(*, level: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `fmt` lines at `level` and above to `stream` (default stderr)."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(LEVELS)})")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (one of {', '.join(FORMATS)})")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setLevel(LEVELS[level])
    handler.setFormatter(LogfmtFormatter() if fmt == "logfmt" else JsonFormatter())
    return handler


def configure(*, level: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record at `level` and above to `stream` as `fmt` (process-wide: call
    once from the CLI). Replaces a handler installed by an earlier call."""
    handler = make_handler(level=level, fmt=fmt, stream=stream)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    return handler
