"""The real gateway under test: built by `build_gateway` from the bench site, fed the CAN load, ticks sampled.

Everything the gateway runs in production runs here, in this process: python-can's receive thread per bus,
ingest, the engine at its configured rate, the Modbus output (pymodbus), plus the CAN load's sending thread,
which stands in for the packs (on a real site their frames arrive from the kernel instead).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.modbus_canload import CanLoad, frames_per_second, record
from bench.modbus_figures import Sample
from bench.modbus_site import simulated_packs, site_settings
from gateway.app import Gateway, build_gateway, run_gateway
from gateway.runtime.engine import Engine
from gateway.runtime.hub import SnapshotHub

DRAIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CanTotals:
    received: int
    dropped: int
    rejected: int


def can_totals(hub: SnapshotHub) -> CanTotals:
    buses = hub.latest.buses if hub.latest is not None else ()
    return CanTotals(sum(b.frames_received for b in buses), sum(b.frames_dropped_queue_full for b in buses),
                     sum(sum(b.frames_rejected.values()) for b in buses))


@dataclass
class RunningGateway:
    samples: list[Sample]
    period_s: float
    offered_frames_per_s: float
    hub: SnapshotHub
    load: CanLoad

    @property
    def load_late(self) -> list[tuple[float, float]]:
        return self.load.lateness

    async def drain(self) -> dict[str, float]:
        """Stop the CAN load, wait until the gateway has received every frame sent (or the timeout): totals."""
        self.load.stop()
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        totals = can_totals(self.hub)
        while totals.received + totals.dropped < self.load.sent and time.monotonic() < deadline:
            await asyncio.sleep(self.period_s)
            totals = can_totals(self.hub)
        return {"frames_sent": self.load.sent, "frames_received": totals.received, "frames_dropped": totals.dropped,
                "frames_rejected": totals.rejected, "identity_answers": self.load.identity_answers}


def _sample_ticks(engine: Engine, hub: SnapshotHub, load: CanLoad, samples: list[Sample]) -> None:
    """Record a Sample after every engine tick; `now` is the tick's start as the engine took it."""
    tick = engine.tick

    async def sampled(now: float, dt_s: float) -> None:
        await tick(now, dt_s)
        totals = can_totals(hub)
        samples.append(Sample(now, time.monotonic() - now, time.process_time(), load.cpu_s, load.sent,
                              totals.received, totals.dropped, totals.rejected))

    engine.tick = sampled  # type: ignore[method-assign]  # the bench observes; the engine is not changed


@asynccontextmanager
async def running_gateway(port: int, packs: int, buses: int, store: Path, *, opcua_port: int | None = None,
                          prometheus_port: int | None = None) -> AsyncIterator[RunningGateway]:
    settings = site_settings(packs, buses, port, store, tag=store.parent.name, opcua_port=opcua_port,
                             prometheus_port=prometheus_port)
    recorded = record(settings, simulated_packs(settings))
    gateway = build_gateway(settings)
    period_s = 1.0 / settings.engine.tick_hz
    load = CanLoad(recorded, period_s)
    samples: list[Sample] = []
    _sample_ticks(next(s for s in gateway.services if isinstance(s, Engine)), gateway.hub, load, samples)
    stop = asyncio.Event()
    running = asyncio.create_task(run_gateway(gateway, stop))
    await until_ready(gateway, running)
    load.start()
    try:
        yield RunningGateway(samples, period_s, frames_per_second(recorded), gateway.hub, load)
    finally:
        load.stop()
        stop.set()
        await running


async def until_ready(gateway: Gateway, running: asyncio.Task[None]) -> None:
    """Until every service of the gateway is ready; what stopped it, if it stopped first."""
    ready = asyncio.gather(*(s.ready.wait() for s in gateway.services))
    first: list[asyncio.Future[Any]] = [running, ready]
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        ready.cancel()
        await running  # raises what stopped it
        raise RuntimeError("the gateway stopped before it was ready")
