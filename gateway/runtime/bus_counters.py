"""Per-bus frame counters and bus state (self-metrics), copied into every snapshot; what a bus state change says."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

from gateway.domain.snapshot import BusStatistics, PollStatistics


class BusErrorState(IntEnum):
    """The CAN controller's error state as error frames or the interface report it (else ACTIVE while open)."""

    ACTIVE = 0  # error-active: normal operation
    PASSIVE = 1  # error-passive: an error counter passed 127, the controller no longer sends active error flags
    OFF = 2  # bus-off: the controller left the bus


@dataclass(frozen=True, slots=True)
class BusStateChange:
    """A bus went down, came back, or its controller changed error state (told to the listeners of the bus)."""

    bus: str
    up: bool
    error_state: BusErrorState
    reason: str  # in words: "receive failed: ...", "bus-off (error frame)", "reopened", "error-passive", ...
    wall_time: float  # Unix time


class BusCounters:
    def __init__(self, bus: str) -> None:
        self.bus = bus
        self.received = 0
        self.decoded = 0
        self.rejected: Counter[str] = Counter()
        self.dropped_queue_full = 0
        self.sent = 0
        self.up = False  # the bus is open (set by its CAN service)
        self.error_state = BusErrorState.ACTIVE
        self.error_frames = 0
        self.failures = 0  # times the bus was lost and closed
        self.bus_off = 0  # of those, times the controller went bus-off
        self.reconnects = 0  # times a lost bus was opened again
        self.state_changed_wall_time = math.nan  # Unix time of the last change of `up` or `error_state`
        self.polls: Callable[[], tuple[PollStatistics, ...]] = tuple  # the bus's poller, when it has one
        self.poll_load_ratio = 0.0
        self.polls_deferred = 0

    def statistics(self) -> BusStatistics:
        return BusStatistics(self.bus, self.received, self.decoded, MappingProxyType(dict(self.rejected)),
                             self.dropped_queue_full, self.sent, up=self.up, error_state=int(self.error_state),
                             error_frames=self.error_frames, failures=self.failures, bus_off=self.bus_off,
                             reconnects=self.reconnects, state_changed_wall_time=self.state_changed_wall_time,
                             polls=self.polls(), poll_load_ratio=self.poll_load_ratio,
                             polls_deferred=self.polls_deferred)
