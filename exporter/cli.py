"""The command line: `messaging-exporter [run|check|once] [flags]`, Prometheus-style flags.

Flags may come before or after the subcommand (`--config.file x check` and
`check --config.file x` are the same). `main(argv)` returns the exit status instead of exiting,
so tests run it in-process; the prober factory and config loader can be injected.

Exit status: 0 on success, 1 on an invalid config or an address that cannot be listened on,
2 on bad usage (argparse), 130 on Ctrl-C during `once`. `once` says what it found, for
scripts and cron jobs (`ONCE_EXIT`): 0 every service reachable, 1 something blocked, 2 no
blocking but an outage, a failure or a network down, 3 an invalid config.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from exporter import __version__
from exporter.config.loader import ConfigErrors
from exporter.config.matrix import RESOLVER_CHECK_SERVICE, expand, skipped
from exporter.config.model import Config
from exporter.config.web import WebConfig
from exporter.config.web import load as load_web_config
from exporter.judge.summary import NOT_SERVICES
from exporter.judge.verdict import judge_round
from exporter.model.judgement import BLOCKED, Judgement, Verdict
from exporter.runtime.app import (
    App,
    ConfigLoader,
    ProberFactory,
    Settings,
    default_load_config,
    default_prober_factory,
    error_lines,
    probe_once,
    run_loop,
    setup_problems,
)
from exporter.runtime.logs import FORMATS, LEVELS, configure
from exporter.web import render
from exporter.web.server import parse_listen_address

COMMANDS = ("run", "check", "once")
DEFAULT_CONFIG_FILE = "config.yaml"
DEFAULT_LISTEN_ADDRESS = ":10053"
#: The multiplication sign of the `check` line ("x" where the terminal cannot print it).
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The parsed command line."""

    command: str
    config_file: str = DEFAULT_CONFIG_FILE
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    listen_host: str | None = None
    listen_port: int = 10053
    enable_lifecycle: bool = False
    web_config_file: str | None = None
    log_level: str = "info"
    log_format: str = "logfmt"
    output_format: str = "text"  # `once --format`


def _listen_address(text: str) -> str:
    try:
        parse_listen_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


#: The --web.* flags each command takes: `check` validates a web config file but serves
#: nothing, `once` serves nothing at all.
WEB_FLAGS: dict[str | None, frozenset[str]] = {
    None: frozenset({"listen", "lifecycle", "config"}),  # before any command: `run`'s
    "run": frozenset({"listen", "lifecycle", "config"}),
    "check": frozenset({"config"}),
    "once": frozenset(),
}


def _add_common(parser: argparse.ArgumentParser, command: str | None) -> None:
    # SUPPRESS: a flag absent after the subcommand must not reset one given before it.
    s = argparse.SUPPRESS
    web = WEB_FLAGS[command]
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="PATH",
        default=s,
        help=f"configuration file (default {DEFAULT_CONFIG_FILE})",
    )
    if "listen" in web:
        parser.add_argument(
            "--web.listen-address",
            dest="listen_address",
            metavar="ADDR",
            type=_listen_address,
            default=s,
            help=f"[HOST]:PORT to serve on; ':PORT' is every interface, IPv6 as [::1]:PORT "
            f"(default {DEFAULT_LISTEN_ADDRESS})",
        )
    if "lifecycle" in web:
        parser.add_argument(
            "--web.enable-lifecycle",
            dest="enable_lifecycle",
            action="store_true",
            default=s,
            help="enable POST /-/reload",
        )
    if "config" in web:
        parser.add_argument(
            "--web.config.file",
            dest="web_config_file",
            metavar="PATH",
            default=s,
            help="TLS and basic auth for the endpoints, in the Prometheus exporter-toolkit "
            "format (docs/web-config.md); re-read on reload"
            + ("" if command != "check" else "; `check` validates it"),
        )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        choices=tuple(LEVELS),
        default=s,
        help="only log messages at this level or above (default info)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        choices=FORMATS,
        default=s,
        help="log line format (default logfmt)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="messaging-exporter",
        description="Prometheus exporter probing messaging services through every resolver "
        "and network, to tell censorship from outages.",
    )
    parser.add_argument("--version", action="version", version=f"messaging-exporter {__version__}")
    _add_common(parser, None)
    sub = parser.add_subparsers(dest="command", metavar="{run,check,once}")
    _add_common(sub.add_parser("run", help="probe and serve metrics (the default)"), "run")
    check = sub.add_parser("check", help="validate the config and print the matrix size")
    _add_common(check, "check")
    once = sub.add_parser("once", help="probe every tuple once and print the results")
    _add_common(once, "once")
    once.add_argument(
        "--format",
        dest="output_format",
        choices=("text", "json"),
        default="text",
        help="table (text) or JSON (default text)",
    )
    return parser


def parse_args(argv: Sequence[str]) -> Options:
    """The Options of `argv`; raises SystemExit on bad usage, --help and --version."""
    ns = vars(build_parser().parse_args(list(argv)))
    listen = str(ns.get("listen_address", DEFAULT_LISTEN_ADDRESS))
    host, port = parse_listen_address(listen)
    return Options(
        command=str(ns.get("command") or "run"),
        config_file=str(ns.get("config_file", DEFAULT_CONFIG_FILE)),
        listen_address=listen,
        listen_host=host,
        listen_port=port,
        enable_lifecycle=bool(ns.get("enable_lifecycle", False)),
        web_config_file=(
            str(ns["web_config_file"]) if ns.get("web_config_file") is not None else None
        ),
        # `once` prints its results and is quiet otherwise: warnings and errors only, unless
        # asked (logs go to stderr either way, never into the table).
        log_level=str(ns.get("log_level", "warn" if ns.get("command") == "once" else "info")),
        log_format=str(ns.get("log_format", "logfmt")),
        output_format=str(ns.get("output_format", "text")),
    )


def _print(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.replace(TIMES, "x")
    print(text, file=stream, flush=True)


def _load(options: Options, load_config: ConfigLoader) -> Config | None:
    try:
        return load_config(options.config_file)
    except ConfigErrors as exc:
        for line in error_lines(exc):
            _print(line, err=True)
        return None


def _load_web_config(options: Options) -> WebConfig | None:
    """The `--web.config.file` (the empty WebConfig without one); None after printing the
    error lines of a bad one."""
    if options.web_config_file is None:
        return WebConfig()
    try:
        return load_web_config(options.web_config_file)
    except ConfigErrors as exc:
        for line in error_lines(exc):
            _print(line, err=True)
        return None


def summary(path: str, config: Config) -> str:
    """The `check` line: what the config defines and the size of the probe matrix."""
    endpoints = config.endpoints()
    tuples = len(expand(config))
    return (
        f"{path}: OK, {len(config.services)} services, {len(endpoints)} endpoints, "
        f"{len(config.resolvers)} resolvers, {len(config.networks)} networks, "
        f"{tuples} tuples (endpoints {TIMES} networks {TIMES} resolvers {TIMES} families)"
    )


def web_summary(path: str, web_config: WebConfig) -> str:
    """The `check` line of a web config."""
    tls = web_config.tls
    what = (
        f"TLS ({tls.min_version}+, client certificates: {tls.client_auth_type})"
        if tls is not None
        else "plain HTTP"
    )
    users = len(web_config.basic_auth_users)
    auth = f"basic auth for {users} user{'s' if users != 1 else ''}" if users else "no auth"
    return f"{path}: OK, {what}, {auth}"


#: `once`'s exit status by what it found (docs/deployment.md, "Scripts and cron").
ONCE_EXIT: dict[str, int] = {"ok": 0, "blocked": 1, "failing": 2, "config": 3}


def once_outcome(judgement: Judgement) -> tuple[int, str]:
    """`once`'s exit status and summary line for a judged round: blocked wins over an
    outage, which wins over all reachable. Canaries and resolver checks are no service: they
    count only through the networks they find down."""
    verdicts = [f.verdict for k, f in judgement.findings.items() if k.service not in NOT_SERVICES]
    blocked = sorted(
        {
            f"{k.service} on {k.network}: {f.verdict}"
            for k, f in judgement.findings.items()
            if k.service not in NOT_SERVICES and f.blocked
        }
    )
    failing = sum(1 for v in verdicts if v is not Verdict.OK and v not in BLOCKED)
    down = sorted(n for n, up in judgement.network_up.items() if not up)
    parts = [f"{len(verdicts)} tuples", f"{verdicts.count(Verdict.OK)} ok"]
    if blocked:
        parts.append(f"{sum(1 for v in verdicts if v in BLOCKED)} blocked")
    if failing:
        parts.append(f"{failing} failing (outage, failure or network down)")
    if down:
        parts.append(f"networks down: {', '.join(down)}")
    line = f"once: {', '.join(parts)}"
    if blocked:
        status = ONCE_EXIT["blocked"]
        line += "; blocked: " + "; ".join(blocked)
    elif failing or down:
        status = ONCE_EXIT["failing"]
    else:
        status = ONCE_EXIT["ok"]
    return status, f"{line}; exit {status}"


def main(
    argv: Sequence[str] | None = None,
    *,
    prober_factory: ProberFactory = default_prober_factory,
    load_config: ConfigLoader = default_load_config,
) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit status."""
    try:
        options = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    handler = configure(level=options.log_level, fmt=options.log_format)
    try:
        config = _load(options, load_config)
        web_config = _load_web_config(options) if options.command != "once" else WebConfig()
        if config is None or web_config is None:
            return ONCE_EXIT["config"] if options.command == "once" else 1
        if options.command == "check":
            _print(summary(options.config_file, config))
            for line in skipped(config):
                _print(f"  left out of the matrix: {line}")
            if options.web_config_file is not None:
                _print(web_summary(options.web_config_file, web_config))
            return 0
        if options.command == "once":
            observations = run_loop(probe_once(config, prober_factory=prober_factory))
            judgement = judge_round(config, observations, setup_problems=setup_problems(config))
            findings = judgement.findings
            shown = [o for o in observations if o.key.service != RESOLVER_CHECK_SERVICE]
            status, line = once_outcome(judgement)
            if options.output_format == "json":
                rows = [render.summary_json(o, findings.get(o.key)) for o in shown]
                _print(json.dumps(rows, indent=1))
                _print(line, err=True)  # stdout stays one JSON document
            else:
                _print(render.text_table(shown, findings).rstrip("\n"))
                _print(line)
            return status
        settings = Settings(
            config_file=options.config_file,
            listen_host=options.listen_host,
            listen_port=options.listen_port,
            enable_lifecycle=options.enable_lifecycle,
            web_config_file=options.web_config_file,
        )
        return run_loop(_serve(settings, config, web_config, prober_factory, load_config))
    except KeyboardInterrupt:  # Ctrl-C outside `run` (which handles SIGINT itself)
        return 130
    finally:
        logging.getLogger().removeHandler(handler)


async def _serve(
    settings: Settings,
    config: Config,
    web_config: WebConfig,
    prober_factory: ProberFactory,
    load_config: ConfigLoader,
) -> int:
    app = App(
        settings=settings,
        config=config,
        prober_factory=prober_factory,
        load_config=load_config,
        web_config=web_config,
    )
    try:
        return await app.run()
    except OSError as exc:  # typically: the listen address is in use or not ours
        host = settings.listen_host or ""
        where = f"[{host}]" if ":" in host else host
        _print(f"cannot listen on {where}:{settings.listen_port}: {exc.strerror or exc}", err=True)
        return 1
