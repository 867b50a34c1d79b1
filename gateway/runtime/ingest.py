"""From a frame on a bus to the measurement table: decode, route to the pack, count what fails."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from gateway.codec.can_decoder import FrameDecoder
from gateway.domain.frames import CanFrame
from gateway.errors import FrameRejected
from gateway.runtime.bus_counters import BusCounters
from gateway.runtime.measurements import MeasurementTable

log = logging.getLogger(__name__)


class FrameSink(Protocol):
    """Where a bus's frames go: its ingest, or a link layer in front of it (runtime/j1939_link.py)."""

    def handle(self, frame: CanFrame, now: float) -> None: ...


class BusIngest:
    def __init__(self, bus: str, decoder: FrameDecoder, pack_of_node: Mapping[int, int],
                 table: MeasurementTable) -> None:
        self.counters = BusCounters(bus)
        self._decoder = decoder
        self._pack_of_node = dict(pack_of_node)
        self._table = table
        self._reported: set[str] = set()
        self._standard_taps: dict[int, Callable[[float], None]] = {}
        self.message_listener: Callable[[int, str, float], None] | None = None  # (pack, message, now): the poller

    def tap_standard(self, arbitration_id: int, seen: Callable[[float], None]) -> None:
        """Call `seen(now)` for every 11-bit frame with this identifier (a peer's keep-alive) instead of decoding it."""
        self._standard_taps[arbitration_id] = seen

    def move_node(self, old: int, new: int) -> None:
        """The pack at node `old` talks from `new` from now on (a J1939 address claim)."""
        self._pack_of_node[new] = self._pack_of_node.pop(old)

    def handle(self, frame: CanFrame, now: float) -> None:
        """Decode one frame into the measurement table, or count why not."""
        self.counters.received += 1
        if not frame.is_extended_id and (tap := self._standard_taps.get(frame.arbitration_id)) is not None:
            self.counters.decoded += 1
            tap(now)
            return
        try:
            decoded = self._decoder.decode(frame)
            pack = self._pack_of_node.get(decoded.node_address)
            if pack is None:
                raise FrameRejected("unknown_node", f"node {decoded.node_address}")
        except FrameRejected as rejection:
            self.counters.rejected[rejection.reason] += 1
            if rejection.reason not in self._reported:  # log a failure kind once, count every time
                self._reported.add(rejection.reason)
                log.warning("bus %s: rejecting frames (%s); further ones are only counted",
                            self.counters.bus, rejection)
            return
        self.counters.decoded += 1
        self._table.apply(pack, decoded, now)
        if self.message_listener is not None:
            self.message_listener(pack, decoded.message, now)
