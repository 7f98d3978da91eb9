"""exporter.probes.compat: every private dnspython / aioquic name the probes use still exists.

The probes read these names defensively (a missing one degrades a measurement, it does not
crash), so an upgrade that drops one would go unnoticed: this test is where it is noticed,
naming the library, its installed version and the name. Nothing here opens a socket.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import aioquic
import dns.version
import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

try:  # compat imports the private modules themselves: their loss is reported below, named
    from exporter.probes import compat
except ImportError as exc:
    IMPORT_ERROR: ImportError | None = exc
    PRIVATE_NAMES: tuple[tuple[str, str, str, str], ...] = ()
else:
    IMPORT_ERROR = None
    PRIVATE_NAMES = compat.PRIVATE_NAMES

PROBES = Path(__file__).resolve().parent.parent / "exporter" / "probes"


def _fresh_instance(where: str) -> object:
    """An instance of the class an instance attribute belongs to, built without I/O."""
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    if where == "aioquic.QuicConnection()":
        return quic
    if where == "dns.quic._asyncio.AsyncioQuicConnection()":
        from dns.quic._asyncio import AsyncioQuicConnection

        # Not run(): no task, no socket, no packet.
        return AsyncioQuicConnection(quic, "127.0.0.1", 853, None, 0)
    raise AssertionError(f"compat.PRIVATE_NAMES names an unknown owner {where!r}")


def test_compat_imports() -> None:
    assert IMPORT_ERROR is None, (
        f"exporter/probes/compat.py no longer imports with dnspython {dns.version.version} "
        f"and aioquic {aioquic.__version__}: {IMPORT_ERROR} (a private module or name it "
        "uses is gone; see its docstring for what for)"
    )


@pytest.mark.parametrize(
    ("library", "version", "where", "name"),
    PRIVATE_NAMES,
    ids=[f"{where}.{name}" for _, _, where, name in PRIVATE_NAMES],
)
async def test_private_name_exists(library: str, version: str, where: str, name: str) -> None:
    # async: dnspython's connection makes asyncio primitives, as it does inside a probe.
    owner = _fresh_instance(where) if where.endswith("()") else importlib.import_module(where)
    assert hasattr(owner, name), (
        f"{library} {version} has no {where}.{name} any more: exporter/probes/compat.py uses "
        "it (see its docstring for what for); adapt compat.py to this version"
    )


def test_the_accessors_read_a_fresh_connection() -> None:
    """The accessors' types hold on the installed versions: no close yet, ours or not."""
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    assert compat.pending_close(quic) is None
    assert compat.close_is_local(quic) is False
    assert compat.quic_version(quic) is None  # negotiated in the handshake
    assert compat.inner_quic(object()) is None


def test_no_private_name_is_used_outside_compat() -> None:
    """Only compat.py imports a private dnspython / aioquic module or reads a private
    attribute by name (`getattr(x, "_name")`)."""
    private_import = re.compile(r"^\s*(?:from|import)\s+(?:dns|aioquic)\S*\._[a-z]", re.M)
    private_getattr = re.compile(r"getattr\([^,]+,\s*\"_[a-z]")
    offenders = [
        str(path.relative_to(PROBES))
        for path in PROBES.rglob("*.py")
        if path.name != "compat.py"
        and (private_import.search(text := path.read_text()) or private_getattr.search(text))
    ]
    assert not offenders
