"""Per-bus frame counters (self-metrics), copied into every snapshot."""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType

from gateway.domain.snapshot import BusStatistics


class BusCounters:
    def __init__(self, bus: str) -> None:
        self.bus = bus
        self.received = 0
        self.decoded = 0
        self.rejected: Counter[str] = Counter()
        self.dropped_queue_full = 0
        self.sent = 0

    def statistics(self) -> BusStatistics:
        return BusStatistics(self.bus, self.received, self.decoded, MappingProxyType(dict(self.rejected)),
                             self.dropped_queue_full, self.sent)
