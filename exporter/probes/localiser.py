"""The localisation budget: how often, how many at once and for how long the exporter
localises failures on the path (`exporter.probes.path` does one localisation)."""

from __future__ import annotations

import asyncio

from exporter.config.model import Localisation
from exporter.model.observation import PathObservation, PathOutcome, Phase
from exporter.probes.network import Dialer
from exporter.probes.path import localise

#: network, address, port, phase, variant
_Key = tuple[str, str, int, Phase, str]


class Localiser:
    """Localisation under the budget of `config.localisation`: at most once per network,
    address, port and phase per interval (a later failure reuses the result, and one that
    comes while it runs waits for it: a thousand tuples failing to one blocked address make
    one localisation, not a thousand), `concurrency` different ones at once (a failure
    meeting a full house is not localised, and says so), bounded in time. Only the address
    the failing probe itself dialled is ever traced."""

    def __init__(self, options: Localisation, interval: float) -> None:
        self._options = options
        self._every = options.interval if options.interval is not None else interval
        self._found: dict[_Key, tuple[float, PathObservation]] = {}
        #: The localisations running now, by key; each caller awaits the same one.
        self._running: dict[_Key, asyncio.Task[PathObservation]] = {}

    async def run(
        self,
        dialer: Dialer,
        phase: Phase,
        address: str,
        port: int,
        payload: bytes = b"",
        *,
        variant: str = "",
    ) -> PathObservation:
        """Where the exchange ends. `variant` tells apart exchanges of one phase that a
        censor may treat differently (MTProto's two forms to one data centre): each is
        localised, and reused, on its own."""
        now = asyncio.get_running_loop().time()
        key = (dialer.name, address, port, phase, variant)
        found = self._found.get(key)
        if found is not None and now - found[0] < self._every:
            return found[1]
        task = self._running.get(key)
        if task is None:
            if len(self._running) >= self._options.concurrency:
                return PathObservation(
                    phase=phase,
                    outcome=PathOutcome.INCONCLUSIVE,
                    detail=f"not localised: {len(self._running)} localisations already running "
                    "(localisation.concurrency)",
                )
            task = asyncio.create_task(
                self._measure(key, dialer, payload, now), name=f"localise {address}:{port}"
            )
            self._running[key] = task
            task.add_done_callback(lambda _: self._running.pop(key, None))
        # Shielded: a caller cancelled (its probe's safety limit) leaves the others theirs.
        return await asyncio.shield(task)

    async def _measure(
        self, key: _Key, dialer: Dialer, payload: bytes, now: float
    ) -> PathObservation:
        _, address, port, phase, _variant = key
        try:
            async with asyncio.timeout(self._options.timeout):
                result = await localise(
                    dialer,
                    phase,
                    address,
                    port,
                    payload=payload,
                    max_hops=self._options.max_hops,
                )
        except TimeoutError:
            result = PathObservation(
                phase=phase,
                outcome=PathOutcome.INCONCLUSIVE,
                detail=f"not localised within localisation.timeout ({self._options.timeout:g}s)",
            )
        except OSError as exc:  # the network's own sockets could not be made
            result = PathObservation(
                phase=phase,
                outcome=PathOutcome.INCONCLUSIVE,
                detail=f"not localised: {exc.strerror or exc}",
            )
        self._found = {k: v for k, v in self._found.items() if now - v[0] < self._every}
        self._found[key] = (now, result)
        return result

    async def aclose(self) -> None:
        """Cancel the localisations still running (a replaced or stopped prober)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
