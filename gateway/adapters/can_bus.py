"""python-can at the boundary: open a bus, receive into a bounded queue, send frames.

python-can delivers frames on its own thread (Notifier) for most interfaces; the listener only
appends to a bounded deque (oldest dropped and counted when full) and wakes the event loop once per
batch, so a flood never grows memory and ingest drains in batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import can

from gateway.domain.frames import CanFrame
from gateway.errors import AdapterError
from gateway.runtime.bus_counters import BusCounters
from gateway.settings import BusSettings

log = logging.getLogger(__name__)

FrameHandler = Callable[[CanFrame, float], None]


def open_bus(settings: BusSettings) -> can.BusABC:
    kwargs: dict[str, Any] = dict(settings.options)
    if settings.bitrate is not None and settings.interface not in {"virtual"}:
        kwargs["bitrate"] = settings.bitrate
    try:
        return can.Bus(interface=settings.interface, channel=settings.channel,
                       receive_own_messages=settings.receive_own_messages, **kwargs)
    except (can.CanError, OSError, ValueError, ImportError) as error:
        raise AdapterError(f"bus {settings.name}: cannot open interface {settings.interface!r} channel "
                           f"{settings.channel!r} ({error}); check [[buses]] name={settings.name!r}") from error


class _QueueListener(can.Listener):
    def __init__(self, queue: deque[can.Message], counters: BusCounters, wake: Callable[[], None]) -> None:
        self._queue = queue
        self._counters = counters
        self._wake = wake

    def on_message_received(self, msg: can.Message) -> None:
        if len(self._queue) == self._queue.maxlen:
            self._counters.dropped_queue_full += 1
        was_empty = not self._queue
        self._queue.append(msg)
        if was_empty:
            self._wake()

    def on_error(self, exc: Exception) -> None:
        log.error("CAN receive error: %s", exc)


class CanBusService:
    """Receives from one bus into `handler` (on the event loop) and sends frames to it."""

    def __init__(self, settings: BusSettings, bus: can.BusABC, counters: BusCounters,
                 handler: FrameHandler) -> None:
        self.name = f"can:{settings.name}"
        self.ready = asyncio.Event()
        self._settings = settings
        self._bus = bus
        self._counters = counters
        self._handler = handler
        self._queue: deque[can.Message] = deque(maxlen=settings.queue_size)
        self._send_failures_logged = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        pending = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(pending.set)

        notifier = can.Notifier(self._bus, [_QueueListener(self._queue, self._counters, wake)],
                                timeout=0.1, loop=loop)
        self.ready.set()
        bus_name = self._settings.name
        try:
            while True:
                await pending.wait()
                pending.clear()
                now = time.monotonic()
                queue = self._queue
                while queue:
                    msg = queue.popleft()
                    if msg.is_error_frame or msg.is_remote_frame:
                        self._counters.received += 1
                        self._counters.rejected["error_or_remote_frame"] += 1
                        continue
                    self._handler(CanFrame(bus_name, msg.arbitration_id, bytes(msg.data), msg.timestamp,
                                           msg.is_extended_id), now)
        finally:
            notifier.stop()

    def send(self, arbitration_id: int, data: bytes, is_extended_id: bool = True) -> bool:
        try:
            self._bus.send(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=is_extended_id),
                           timeout=0.05)
        except can.CanError as error:
            if not self._send_failures_logged:
                self._send_failures_logged = True
                log.warning("bus %s: send failed (%s); further failures are only counted",
                            self._settings.name, error)
            self._counters.rejected["send_failed"] += 1
            return False
        self._send_failures_logged = False
        self._counters.sent += 1
        return True
