"""The exporter as a real process (`python -m exporter run`) on a loopback port, for tests
that need what only a process shows: its resident memory, its logs on stderr, its signals.

Every stderr line is kept (`lines`) and read continuously, so a debug-level log never fills
the pipe; `wait_for(needle)` awaits a log line instead of sleeping. `stop()` sends SIGTERM
and waits; leaving the context kills a process that is still running, so none is left behind.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
from pathlib import Path
from types import TracebackType

import aiohttp

REPO = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ExporterProcess:
    """`async with ExporterProcess(config_path, "--log.level", "debug") as exporter: ...`"""

    def __init__(self, config: Path, *argv: str) -> None:
        self.config = config
        self.argv = argv
        self.port = free_port()
        self.lines: list[str] = []
        self.stdout = b""
        self.returncode: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def __aenter__(self) -> ExporterProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "exporter",
            "run",
            "--config.file",
            str(self.config),
            "--web.listen-address",
            f"127.0.0.1:{self.port}",
            *self.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
            env=env,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._proc is not None
        assert self._reader is not None
        if self._proc.returncode is None:
            self._proc.kill()
        self.returncode = await self._proc.wait()
        await self._reader

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def wait_for(self, needle: str, *, count: int = 1, timeout: float = 30) -> None:  # noqa: ASYNC109  # a test helper's budget
        """Until `count` stderr lines contain `needle`; fails with the log so far."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                while sum(needle in line for line in self.lines) < count:
                    assert self._proc is not None
                    if self._proc.stderr is not None and self._proc.stderr.at_eof():
                        raise AssertionError(f"exporter exited before {needle!r}")
                    await self._changed.wait()
        except (TimeoutError, AssertionError) as e:
            raise AssertionError(
                f"{e or 'timeout'} waiting for {needle!r}; log:\n{self.log}"
            ) from None

    async def get(self, path: str, *, auth: tuple[str, str] | None = None) -> tuple[int, str]:
        """GET `path`, with HTTP basic `auth` = (user, password) when given."""
        headers = {}
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + path, headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    async def post(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.post(self.url + path) as resp:
            return resp.status, await resp.text()

    def signal(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        self._proc.send_signal(sig)

    async def stop(self) -> int:
        """SIGTERM, then the exit status (stdout is kept in `stdout`)."""
        assert self._proc is not None
        assert self._proc.stdout is not None
        self._proc.send_signal(signal.SIGTERM)
        self.stdout = await self._proc.stdout.read()
        self.returncode = await self._proc.wait()
        return self.returncode

    def rss_bytes(self) -> int:
        """Resident memory now, from /proc/<pid>/status (VmRSS, kB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/<pid>/status")
