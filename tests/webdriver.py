"""A small W3C WebDriver client for Debian's chromedriver, inside a network namespace.

Just what the browser tests need (sessions, navigation, CSS lookups, clicks, scripts,
screenshots), over http.client: no selenium, no browser download. chromedriver listens on
127.0.0.1 of the namespace it runs in; the client's socket is made inside that namespace
(exporter.probes.network.namespace), so the browser and everything it loads stay there.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from exporter.probes.network import namespace

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: W3C's key of an element reference in a JSON answer.
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
#: Chromium flags: headless, nothing fetched in the background, no QUIC.
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a test namespace
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
)

T = TypeVar("T")


class WebDriverError(RuntimeError):
    """An error answer of chromedriver: `error` is the W3C error code."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.error = error


class _Connection(http.client.HTTPConnection):
    """An HTTP connection whose socket is made inside network namespace `netns`."""

    def __init__(self, host: str, port: int, netns: str | None, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._netns = netns

    def connect(self) -> None:
        with namespace(self._netns):
            self.sock = socket.create_connection((self.host, self.port), self.timeout)


class Driver:
    """chromedriver at 127.0.0.1:`port` of namespace `netns` (None: this namespace)."""

    def __init__(self, port: int, netns: str | None, *, timeout: float = 30.0) -> None:
        self.port = port
        self.netns = netns
        self.timeout = timeout

    def request(self, method: str, path: str, body: object = None) -> Any:
        """One command; its `value`, or WebDriverError."""
        conn = _Connection("127.0.0.1", self.port, self.netns, self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            answer = json.loads(resp.read() or b"{}")
        finally:
            conn.close()
        value = answer.get("value") if isinstance(answer, dict) else None
        if resp.status != 200:
            error = value if isinstance(value, dict) else {}
            raise WebDriverError(
                resp.status, str(error.get("error")), str(error.get("message"))[:2000]
            )
        return value

    def ready(self) -> bool:
        try:
            return bool(self.request("GET", "/status")["ready"])
        except (OSError, http.client.HTTPException, ValueError):
            return False

    def session(self, *, args: Sequence[str] = (), mobile: dict[str, Any] | None = None) -> Session:
        """A new Chromium session with FLAGS and `args`; `mobile` is chromedriver's
        mobileEmulation (e.g. {"deviceMetrics": {"width": 390, "height": 844}})."""
        options: dict[str, Any] = {"binary": CHROMIUM, "args": [*FLAGS, *args]}
        if mobile is not None:
            options["mobileEmulation"] = mobile
        caps = {"browserName": "chrome", "goog:chromeOptions": options}
        value = self.request("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        return Session(self, str(value["sessionId"]))


@contextmanager
def chromedriver(
    run_in: Callable[..., subprocess.Popen[Any]],
    netns: str,
    log: Path,
    *,
    port: int = 9515,
    timeout: float = 15.0,
) -> Iterator[Driver]:
    """Start chromedriver with `run_in(argv, **popen)` (e.g. the lab's `run_in` bound to a
    namespace) and stop it at the end; `log` gets its verbose log."""
    proc = run_in(
        [CHROMEDRIVER, f"--port={port}", f"--log-path={log}", "--verbose"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = Driver(port, netns)
    try:
        deadline = time.monotonic() + timeout
        while not driver.ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"chromedriver not ready (exit {proc.poll()}); log {log}:\n"
                    + (log.read_text(errors="replace")[-3000:] if log.exists() else "")
                )
            time.sleep(0.05)
        yield driver
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Session:
    """One browser: navigate, find by CSS, click, run scripts, take screenshots."""

    def __init__(self, driver: Driver, session_id: str) -> None:
        self._driver = driver
        self.id = session_id

    def _cmd(self, method: str, path: str, body: object = None) -> Any:
        return self._driver.request(method, f"/session/{self.id}{path}", body)

    def close(self) -> None:
        self._driver.request("DELETE", f"/session/{self.id}")

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str) -> None:
        self._cmd("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return str(self._cmd("GET", "/url"))

    @property
    def source(self) -> str:
        return str(self._cmd("GET", "/source"))

    def back(self) -> None:
        self._cmd("POST", "/back", {})

    def find(self, css: str) -> str:
        """The first element matching `css` (its WebDriver id)."""
        return str(self._cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def find_all(self, css: str) -> list[str]:
        found = self._cmd("POST", "/elements", {"using": "css selector", "value": css})
        return [str(e[ELEMENT]) for e in found]

    def click(self, element: str) -> None:
        """A real click (chromedriver scrolls the element into view and dispatches the mouse
        events at its centre; it fails if something else would receive them)."""
        self._cmd("POST", f"/element/{element}/click", {})

    def text(self, element: str) -> str:
        return str(self._cmd("GET", f"/element/{element}/text"))

    def attribute(self, element: str, name: str) -> str | None:
        value = self._cmd("GET", f"/element/{element}/attribute/{name}")
        return None if value is None else str(value)

    def execute(self, script: str, *args: Any) -> Any:
        """Run `script` (a function body; `arguments` holds `args`) in the page; its result."""
        return self._cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def execute_async(self, script: str, *args: Any) -> Any:
        """Run `script`; it calls `arguments[arguments.length - 1](result)` when done."""
        return self._cmd("POST", "/execute/async", {"script": script, "args": list(args)})

    def set_window_size(self, width: int, height: int) -> None:
        self._cmd("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path: Path) -> int:
        """Save a PNG of the viewport to `path`; its size in bytes."""
        png = base64.b64decode(self._cmd("GET", "/screenshot"))
        path.write_bytes(png)
        return len(png)

    def cdp(self, command: str, params: dict[str, Any] | None = None) -> Any:
        """A DevTools command through chromedriver (e.g. Page.captureScreenshot)."""
        return self._cmd("POST", "/goog/cdp/execute", {"cmd": command, "params": params or {}})

    def wait(self, condition: Callable[[], T | None], timeout: float = 10.0) -> T:
        """Poll `condition` until it returns something true; that value."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(0.05)
