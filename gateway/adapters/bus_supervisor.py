"""The health of one CAN bus: up or down, the controller's error state, when to try reopening a lost bus.

A bus is lost when its interface fails: receive or send raises an OS-level error, the interface reports
`can.BusState.ERROR`, or an error frame says bus-off. Error-passive and back come from error frames only (python-can's
`BusState.PASSIVE` means listen-only mode on PCAN, IXXAT and SYSTEC, not an error state). `CanBusService` closes a
lost bus and reopens it after `reconnect_delay_s`: the initial delay doubling per failed try up to the maximum. The
supervisor keeps the counters (`BusCounters`), logs a loss once and its recovery once, and tells its listeners
(`BusStateChange`, on the event loop) so the engine can turn them into events.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import can

from gateway.runtime.bus_counters import BusCounters, BusErrorState, BusStateChange

log = logging.getLogger(__name__)

StateListener = Callable[[BusStateChange], None]

# Linux SocketCAN error frames (linux/can/error.h), as python-can delivers them: the class in the identifier,
# the controller's status in data[1]. Other interfaces that report error frames use the same layout.
_ERR_CRTL = 0x004
_ERR_BUSOFF = 0x040
_ERR_RESTARTED = 0x100
_CRTL_PASSIVE = 0x10 | 0x20  # receive / transmit error-passive
_CRTL_ACTIVE = 0x40  # back to error-active


def reconnect_delay_s(attempt: int, initial_s: float, max_s: float, jitter_ratio: float = 0.0,
                      rng: random.Random | None = None) -> float:
    """The wait before try `attempt` (0-based) to reopen a lost bus: initial x 2^attempt, at most max_s, shortened
    by up to `jitter_ratio` of itself at random."""
    delay = min(max_s, initial_s * 2.0 ** min(attempt, 62))
    if jitter_ratio > 0.0:
        delay *= 1.0 - jitter_ratio * (rng or random).random()
    return delay


def error_frame_state(message: can.Message) -> BusErrorState | None:
    """The error state an error frame announces, None when it announces none (a bus error, a lost arbitration)."""
    error_class = message.arbitration_id
    if error_class & _ERR_BUSOFF:
        return BusErrorState.OFF
    if error_class & _ERR_RESTARTED:
        return BusErrorState.ACTIVE
    if error_class & _ERR_CRTL and len(message.data) > 1:
        status = message.data[1]
        if status & _CRTL_PASSIVE:
            return BusErrorState.PASSIVE
        if status & _CRTL_ACTIVE:
            return BusErrorState.ACTIVE
    return None


class BusSupervisor:
    """Counts, logs and announces the state changes of one bus; every method runs on the event loop."""

    def __init__(self, bus: str, counters: BusCounters) -> None:
        self.bus = bus
        self.listeners: list[StateListener] = []
        self._counters = counters
        self._down_since = 0.0
        self._failed_tries = 0

    def opened(self) -> None:
        """The bus was opened at start (no event: nothing was lost)."""
        self._counters.up = True
        self._counters.error_state = BusErrorState.ACTIVE
        self._counters.state_changed_wall_time = time.time()

    def lost(self, reason: str, *, bus_off: bool = False) -> None:
        counters = self._counters
        counters.up = False
        counters.failures += 1
        if bus_off:
            counters.bus_off += 1
            counters.error_state = BusErrorState.OFF
        self._down_since = time.monotonic()
        self._failed_tries = 0
        log.warning("bus %s: down (%s); reopening it with backoff, failed tries are only counted", self.bus, reason)
        self._announce(reason)

    def reopen_failed(self, error: Exception) -> None:
        self._failed_tries += 1
        log.debug("bus %s: reopening failed (%s)", self.bus, error)

    def reopened(self) -> None:
        counters = self._counters
        counters.up = True
        counters.reconnects += 1
        counters.error_state = BusErrorState.ACTIVE
        log.info("bus %s: up again after %.1f s (%d failed tries, reconnect %d)", self.bus,
                    time.monotonic() - self._down_since, self._failed_tries, counters.reconnects)
        self._announce("reopened")

    def error_state_reported(self, state: BusErrorState) -> None:
        """A state the interface or an error frame reported while the bus is open (bus-off is `lost`)."""
        if state == self._counters.error_state or state is BusErrorState.OFF:
            return
        self._counters.error_state = state
        if state is BusErrorState.PASSIVE:
            log.warning("bus %s: controller error-passive (wiring, termination or a failing node)", self.bus)
        else:
            log.warning("bus %s: controller error-active again", self.bus)
        self._announce("error-passive" if state is BusErrorState.PASSIVE else "error-active")

    def _announce(self, reason: str) -> None:
        counters = self._counters
        counters.state_changed_wall_time = time.time()
        change = BusStateChange(self.bus, counters.up, counters.error_state, reason,
                                counters.state_changed_wall_time)
        for listener in self.listeners:
            listener(change)
