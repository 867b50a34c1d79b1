"""A CAN bus service running in the test's event loop, on a bus its settings open, with what it delivered."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import can

from gateway.adapters.can_bus import CanBusService, open_bus
from gateway.domain.frames import CanFrame
from gateway.runtime.bus_counters import BusCounters, BusStateChange
from gateway.settings import BusSettings

PACK_STATUS_ID = 0x18FF0101


@dataclass
class Running:
    service: CanBusService
    bus: can.BusABC  # the bus the service was built with
    counters: BusCounters
    frames: list[CanFrame] = field(default_factory=list)
    changes: list[BusStateChange] = field(default_factory=list)


def bus_settings(interface: str = "virtual", **overrides: object) -> BusSettings:
    values: dict[str, object] = {"name": "bus", "interface": interface, "channel": f"can-test-{uuid.uuid4().hex}",
                                 "bitrate": None, "reconnect_initial_delay_s": 0.05, "reconnect_max_delay_s": 0.2}
    return BusSettings.model_validate(values | overrides)


@contextlib.asynccontextmanager
async def serving(settings: BusSettings) -> AsyncIterator[Running]:
    counters = BusCounters(settings.name)
    bus = open_bus(settings)
    running = Running(CanBusService(settings, bus, counters, lambda frame, _now: running.frames.append(frame)),
                      bus, counters)
    running.service.add_state_listener(running.changes.append)
    task = asyncio.create_task(running.service.run())
    await running.service.ready.wait()
    try:
        yield running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        running.service.close()


@contextlib.contextmanager
def peer_on(settings: BusSettings) -> Iterator[can.BusABC]:
    peer = can.Bus(interface="virtual", channel=settings.channel)
    try:
        yield peer
    finally:
        peer.shutdown()


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.01)


def error_frame(error_class: int, controller_status: int = 0) -> can.Message:
    return can.Message(is_error_frame=True, arbitration_id=error_class, data=bytes([0, controller_status, 0, 0]),
                       is_extended_id=False)
