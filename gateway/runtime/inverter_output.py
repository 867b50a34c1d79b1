"""The site as one battery to an inverter or charger on a CAN bus (the common battery CAN protocol).

Every period it sends the whole frame set, which is also the keep-alive the inverter supervises. Stale or missing
data sends the safe state (runtime/inverter_figures.py); on shutdown the safe state is sent `shutdown_repeats`
times before the bus closes, so the inverter stops charging and discharging instead of waiting for its timeout.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.codec.battery_can import BatteryCanLayout, BatteryFigures, StandardFrame
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.inverter_figures import InverterView, SafeVoltages, inverter_view

log = logging.getLogger(__name__)

SendStandardFrame = Callable[[int, bytes], bool]


@dataclass
class InverterLinkCounters:
    """What the inverter output did, for the metrics (gateway/adapters/prometheus_inverter.py)."""

    bus: str
    frame_sets_sent: int = 0
    send_failures: int = 0
    safe_state: bool = True
    safe_reason: str | None = "not started"
    last_keepalive: float = -math.inf  # time.monotonic() of the inverter's last keep-alive frame
    last_figures: BatteryFigures | None = None  # the figures of the last frame set sent
    alarms: int = 0  # alarm conditions in the last frame set (general alarm included)
    warnings: int = 0

    def keepalive_age_s(self, now: float) -> float:
        return now - self.last_keepalive


class InverterCanOutput:
    def __init__(self, hub: SnapshotHub, layout: BatteryCanLayout, send: SendStandardFrame, *, bus: str,
                 period_s: float, stale_after_s: float, safe: SafeVoltages, shutdown_repeats: int,
                 keepalive_timeout_s: float | None, counters: InverterLinkCounters | None = None) -> None:
        self.name = f"inverter-can:{bus}"
        self.ready = asyncio.Event()
        self.counters = counters or InverterLinkCounters(bus)
        self._hub = hub
        self._layout = layout
        self._send = send
        self._bus = bus
        self._period_s = period_s
        self._stale_after_s = stale_after_s
        self._safe = safe
        self._shutdown_repeats = shutdown_repeats
        self._keepalive_timeout_s = keepalive_timeout_s
        self._keepalive_lost_logged = False

    @property
    def keepalive_id(self) -> int:
        return self._layout.keepalive_id

    def keepalive_received(self, now: float) -> None:
        """The inverter's keep-alive frame arrived (called from the bus's receive path)."""
        if self._keepalive_lost_logged:
            log.info("inverter on bus %s: keep-alive back", self._bus)
            self._keepalive_lost_logged = False
        self.counters.last_keepalive = now

    def view(self, now: float) -> InverterView:
        return inverter_view(self._hub.latest, now - self._hub.published_at, self._stale_after_s, self._layout,
                             self._safe)

    async def run(self) -> None:
        self.ready.set()
        started = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                view = self.view(now)
                self._note_state(view.safe_reason)
                self._send_set(self._layout.encode(view.figures))
                self._note_figures(view.figures)
                self._check_keepalive(now, started)
                await asyncio.sleep(self._period_s)
        finally:
            safe = inverter_view(None, math.inf, self._stale_after_s, self._layout, self._safe)
            for _ in range(self._shutdown_repeats):
                self._send_set(self._layout.encode(safe.figures))
            self._note_figures(safe.figures)
            self._note_state("the gateway stopped")

    def _send_set(self, frames: list[StandardFrame]) -> None:
        sent = [self._send(frame.arbitration_id, frame.data) for frame in frames]
        if all(sent):
            self.counters.frame_sets_sent += 1
        else:
            self.counters.send_failures += 1

    def _note_figures(self, figures: BatteryFigures) -> None:
        counters = self.counters
        counters.last_figures = figures
        counters.alarms = len(figures.alarms) + int(figures.general_alarm)
        counters.warnings = len(figures.warnings)

    def _note_state(self, reason: str | None) -> None:
        counters = self.counters
        if reason is not None and not counters.safe_state:
            log.warning("inverter on bus %s: safe state (limits 0, charge and discharge disabled): %s", self._bus,
                        reason)
        elif reason is None and counters.safe_state:
            log.info("inverter on bus %s: live site limits", self._bus)
        counters.safe_state = reason is not None
        counters.safe_reason = reason

    def _check_keepalive(self, now: float, started: float) -> None:
        timeout = self._keepalive_timeout_s
        if timeout is None or self._keepalive_lost_logged:
            return
        if self.counters.keepalive_age_s(now) > timeout and now - started > timeout:
            self._keepalive_lost_logged = True
            log.warning("inverter on bus %s: no keep-alive (id %#x) for %.0f s; is the inverter connected?", self._bus,
                        self._layout.keepalive_id, timeout)
