"""The HTTP server: /metrics, the landing page, health and readiness, reload, /probes.

Only GETs and one bodiless POST are served, so requests are capped at `MAX_REQUEST_BYTES`.
A client cannot hold the server with a slow request: aiohttp caps the head (a line at
`MAX_LINE_BYTES`, at most `MAX_HEADERS` headers: 400 past either), and a connection whose
request head has not arrived within `IDLE_TIMEOUT` seconds of the connect or of the last
response is closed (aiohttp's keep-alive timer, which it also runs before the first request;
a slowloris client dripping header lines is cut there). A POST body gets `BODY_TIMEOUT`.
The handlers read state through the callables of a `Site`; they never touch the scheduler
directly, and a scrape only renders the store's immutable snapshot.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bcrypt
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from exporter import __version__
from exporter.config.matrix import Target
from exporter.exposition.store import Store
from exporter.judge.changes import Changes
from exporter.model.observation import LABEL_NAMES, TupleKey
from exporter.web import render, statuspage

#: Largest request accepted (the body of the only POST is ignored).
MAX_REQUEST_BYTES = 4096

#: Seconds a stopping server gives open requests before closing them.
SHUTDOWN_TIMEOUT = 2.0

#: Seconds a connection may take to send a complete request head, counted from the connect
#: or the end of the previous response (the keep-alive timeout). Prometheus keeps scrape
#: connections alive; with a scrape interval above this it just reconnects.
IDLE_TIMEOUT = 15.0
#: Seconds allowed to read the body of a POST (at most `MAX_REQUEST_BYTES`).
BODY_TIMEOUT = 5.0
#: Longest request line or header line, and most header lines, of a request (aiohttp's
#: defaults, named here because they bound what a client can make us hold: < 1.1 MB).
MAX_LINE_BYTES = 8190
MAX_HEADERS = 128

LIFECYCLE_DISABLED = (
    "Lifecycle API is not enabled. Start the exporter with --web.enable-lifecycle to enable "
    "POST /-/reload.\n"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadOutcome:
    """The result of a reload: `errors` has one line per problem when `ok` is False."""

    ok: bool
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    """What the web server serves, as callables into the running exporter."""

    registry: CollectorRegistry
    store: Store
    ready: Callable[[], bool]
    target: Callable[[TupleKey], Target | None]
    target_count: Callable[[], int]
    reload: Callable[[], Awaitable[ReloadOutcome]]
    enable_lifecycle: bool = False
    version: str = __version__
    #: Checks the Authorization header of every request (None: no authentication).
    auth: BasicAuth | None = None
    #: Serves /metrics (None: prometheus_client's handler over `registry`).
    metrics: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
    #: Recent verdict changes, shown on the status page and in /api/v1/status.
    changes: Changes = field(default_factory=Changes)
    #: Unix seconds now (passed in so tests can fix it).
    now: Callable[[], float] = time.time


LINKS: tuple[tuple[str, str], ...] = (
    ("/metrics", "metrics"),
    ("/probes", "the last probe of every tuple"),
    ("/-/healthy", "liveness"),
    ("/-/ready", "readiness (after the first round)"),
)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(data, ensure_ascii=False, indent=1) + "\n",
        content_type="application/json",
    )


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


def _text(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain", charset="utf-8")


def _key_from_query(query: Sequence[tuple[str, str]]) -> TupleKey | None:
    values = dict(query)
    try:
        return TupleKey(
            service=values["service"],
            endpoint=values["endpoint"],
            network=values["network"],
            resolver=values["resolver"],
            family=int(values["family"]),
        )
    except (KeyError, ValueError):
        return None


class _Handlers:
    def __init__(self, site: Site) -> None:
        self._site = site

    async def landing(self, request: web.Request) -> web.Response:
        site = self._site
        return _html(
            statuspage.status_html(
                site.store.snapshot(),
                site.changes,
                now=site.now(),
                version=site.version,
                targets=site.target,
            )
        )

    async def status(self, request: web.Request) -> web.Response:
        site = self._site
        return _json(
            statuspage.status_json(
                site.store.snapshot(), site.changes, now=site.now(), targets=site.target
            )
        )

    async def badge(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        state = statuspage.service_state(self._site.store.snapshot(), service)
        if state is None:
            return _text(f"unknown service {service!r}\n", status=404)
        return web.Response(
            text=statuspage.badge_svg(service, state),
            content_type="image/svg+xml",
            charset="utf-8",
            headers={"Cache-Control": f"max-age={statuspage.REFRESH_SECONDS}"},
        )

    async def healthy(self, request: web.Request) -> web.Response:
        return _text("Healthy\n")

    async def ready(self, request: web.Request) -> web.Response:
        if self._site.ready():
            return _text("Ready\n")
        return _text("Not ready: the first round of probes has not finished.\n", status=503)

    async def reload(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                # Any body is ignored; reading it enforces client_max_size (413).
                await request.read()
        except TimeoutError:
            return _text("request body not received in time\n", status=408)
        if not self._site.enable_lifecycle:
            return _text(LIFECYCLE_DISABLED, status=403)
        outcome = await self._site.reload()
        if outcome.ok:
            return _text("OK\n")
        return _text(
            "failed to reload config, keeping the running one:\n"
            + "".join(f"{line}\n" for line in outcome.errors),
            status=500,
        )

    async def probes(self, request: web.Request) -> web.Response:
        fmt = request.query.get("format", "html")
        if fmt not in ("html", "json"):
            return _text("format must be html or json\n", status=400)
        selected = [(n, request.query[n]) for n in LABEL_NAMES if n in request.query]
        snapshot = self._site.store.snapshot()
        if len(selected) == len(LABEL_NAMES):
            key = _key_from_query(selected)
            series = snapshot.get(key) if key is not None else None
            last = None if key is None or series is None else series.last
            if key is None or last is None:
                return _text("no probe of this tuple\n", status=404)
            target = self._site.target(key)
            finding = snapshot.judgement.findings.get(key)
            if fmt == "json":
                return _json(render.detail_json(last, target, finding))
            return _html(render.detail_html(last, target, finding))
        lasts = (
            s.last
            for k, s in snapshot.series.items()
            if all(render.labels_of(k)[n] == v for n, v in selected)
        )
        observations = [obs for obs in lasts if obs is not None]
        findings = snapshot.judgement.findings
        if fmt == "json":
            return _json(
                {
                    "targets": self._site.target_count(),
                    "probes": [render.summary_json(o, findings.get(o.key)) for o in observations],
                }
            )
        return _html(
            render.probes_html(observations, targets=self._site.target_count(), findings=findings)
        )


#: Successful checks remembered at most (the cache is emptied when full).
AUTH_CACHE_SIZE = 1024

#: A hash for unknown users, so that a wrong user name costs as much as a wrong password.
_DUMMY_HASH = b"$2b$10$2E9fJP6lz2IKOODj36WOp.c2loPSFOOMbvUc5FrhvVsixv2jikX6G"


class BasicAuth:
    """HTTP basic auth against bcrypt hashes (`basic_auth_users` of the web config).

    bcrypt is slow on purpose, so a successful check is remembered (as a SHA-256 of user,
    stored hash and password, never the password) and the next scrape with the same
    credentials costs a dictionary lookup, as in exporter-toolkit. Failures are never
    remembered. bcrypt runs in a thread, never on the event loop. `users` can be replaced
    (a reload); the cache is keyed by the stored hash, so a changed hash is checked afresh.
    """

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = users
        self._ok: set[bytes] = set()
        #: bcrypt checks done (tests read it to see the cache work).
        self.bcrypt_checks = 0

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    async def allowed(self, header: str | None) -> bool:
        if not self.users:
            return True
        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self.users.get(user)
        stored = (hashed if hashed is not None else _DUMMY_HASH.decode()).encode()
        key = hashlib.sha256(b"\0".join((user.encode(), stored, password.encode()))).digest()
        if hashed is not None and key in self._ok:
            return True
        self.bcrypt_checks += 1
        ok = await asyncio.to_thread(_checkpw, password.encode(), stored)
        if not ok or hashed is None:
            return False
        if len(self._ok) >= AUTH_CACHE_SIZE:
            self._ok.clear()
        self._ok.add(key)
        return True


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` header, or None."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


UNAUTHORIZED = "Unauthorized\n"


def _auth_middleware(auth: BasicAuth) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not await auth.allowed(request.headers.get("Authorization")):
            return web.Response(
                status=401,
                text=UNAUTHORIZED,
                content_type="text/plain",
                headers={"WWW-Authenticate": "Basic"},
            )
        return await handler(request)

    return middleware


def make_app(site: Site) -> web.Application:
    """The aiohttp application of `site`."""
    middlewares = [_auth_middleware(site.auth)] if site.auth is not None else []
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=middlewares)
    h = _Handlers(site)
    app.router.add_get("/", h.landing)
    app.router.add_get("/metrics", site.metrics or make_aiohttp_handler(site.registry))
    app.router.add_get("/-/healthy", h.healthy)
    app.router.add_get("/-/ready", h.ready)
    app.router.add_post("/-/reload", h.reload)
    app.router.add_get("/probes", h.probes)
    app.router.add_get("/api/v1/status", h.status)
    app.router.add_get("/api/v1/badge/{service}.svg", h.badge)
    return app


def parse_listen_address(text: str) -> tuple[str | None, int]:
    """`--web.listen-address`: ":PORT" (every interface), "HOST:PORT" or "[V6]:PORT".

    Returns (host or None for every interface, port). Raises ValueError.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"{text!r} has no port: expected [HOST]:PORT, e.g. :10053")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host:
            raise ValueError(f"{text!r}: empty IPv6 address in brackets")
    elif ":" in host:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:10053")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number 0-65535")
    return (host or None), int(port_text)


class _RequestLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's request logger, with a malformed request (a line too long, too many headers,
    bytes that are no HTTP) logged at debug level without a traceback: it is the client's
    fault, costs us a 400, and must not let any client write error lines at will (aiohttp
    itself demotes only a bad method on a connection's first request)."""

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            self.debug("malformed request refused (%s): %s", exc.code, exc.message)
            return
        super().exception(msg, *args, **kwargs)


class WebServer:
    """Serves an aiohttp app on one listen address; `start()` returns the bound addresses."""

    def __init__(self, app: web.Application, *, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            keepalive_timeout=idle_timeout,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
            max_headers=MAX_HEADERS,
            logger=_RequestLog(logging.getLogger("aiohttp.server")),
        )
        self._started = False

    async def start(
        self, host: str | None, port: int, *, ssl_context: ssl.SSLContext | None = None
    ) -> list[tuple[str, int]]:
        """Listen on `host` (None: every interface) and `port` (0: any free port), over TLS
        when `ssl_context` is given."""
        await self._runner.setup()
        self._started = True
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        return [(str(a[0]), int(a[1])) for a in self._runner.addresses]

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._runner.cleanup()
