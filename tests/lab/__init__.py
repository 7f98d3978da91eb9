"""The censorship lab: isolated Linux network namespaces that reproduce real censorship
techniques with the real mechanisms (policy routing, nftables, lying resolvers, middleboxes).

`Lab` (tests.lab.topology) builds and tears it down; docs/lab.md describes it. The names below
are imported lazily so the server processes (`python -m tests.lab.servers`) start light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Lab", "LabError", "LabUnavailable", "down"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tests.lab import topology

        return getattr(topology, name)
    raise AttributeError(name)
