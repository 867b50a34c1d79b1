"""Non-blocking receive of gateway commands from one bus: poll, decode (to_pack), count rejects.

A `link_layer` (a J1939 bus: `j1939_bus.J1939BusLink.take`) sees every frame first and keeps those it takes from the
decoder."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import can

from gateway.codec.can_decoder import DecodedFrame, FrameDecoder
from gateway.codec.protocol import PackProtocol
from gateway.domain.frames import CanFrame
from gateway.errors import FrameRejected

MAX_FRAMES_PER_POLL = 512
LinkLayer = Callable[[CanFrame], bool]


class CommandReceiver:
    def __init__(self, bus_name: str, bus: can.BusABC, protocols: Iterable[PackProtocol],
                 link_layer: LinkLayer | None = None) -> None:
        unique = {protocol.name: protocol for protocol in protocols}
        self.bus_name = bus_name
        self._bus = bus
        self._decoder = FrameDecoder(unique.values(), direction="to_pack")
        self._link_layer = link_layer
        self.received = 0
        self.receive_errors = 0
        self.rejected: Counter[str] = Counter()

    def poll(self) -> list[DecodedFrame]:
        """Everything already waiting on the bus (at most MAX_FRAMES_PER_POLL), decoded; never blocks."""
        decoded: list[DecodedFrame] = []
        for _ in range(MAX_FRAMES_PER_POLL):
            try:
                message = self._bus.recv(timeout=0.0)
            except can.CanError:
                self.receive_errors += 1
                break
            if message is None:
                break
            self.received += 1
            if message.is_error_frame or message.is_remote_frame:
                self.rejected["error_or_remote_frame"] += 1
                continue
            frame = CanFrame(self.bus_name, message.arbitration_id, bytes(message.data), message.timestamp,
                             message.is_extended_id)
            try:
                if self._link_layer is not None and self._link_layer(frame):
                    continue
                decoded.append(self._decoder.decode(frame))
            except FrameRejected as rejected:
                self.rejected[rejected.reason] += 1
        return decoded
