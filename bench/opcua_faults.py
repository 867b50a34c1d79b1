"""Alarm latency for the OPC UA benchmark: a pack starts reporting a fault flag on the bus; how soon the alarm shows.

The CAN load (bench.modbus_canload) plays recordings. `faulty` copies a pack's recording with bit 0 of FaultFlags
set in every PackStatus frame (counter kept, CRC recomputed): the gateway's `pack_reported_fault` rule (severity
alarm, delay 0 s, mappings/protection/default.yaml) then raises the alarm at the next engine tick. `FaultLoad`
swaps a pack's recording for its faulty copy and back, and records when the first faulty frame went out, so the
latency runs from the frame on the bus to the snapshot that carries the alarm (what Modbus, OPC UA and Prometheus
read) and includes up to one engine period of waiting for the tick.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import can

from bench.modbus_canload import Burst, CanLoad, RecordedPack
from gateway.codec.integrity import frame_crc
from gateway.codec.protocol import PackProtocol
from gateway.domain.measurement import ScalarField

STATUS_MESSAGE = "PackStatus"
FAULT_FLAG = 0x01  # a pack-specific flag, neither insulation (bit 4) nor contactor


def _fault_signal(protocol: PackProtocol) -> str:
    binding = protocol.messages[STATUS_MESSAGE]
    for signal, bound in binding.bindings.items():
        if bound.field == ScalarField.PACK_FAULT_FLAGS:
            return signal
    raise ValueError(f"{protocol.name}: {STATUS_MESSAGE} carries no {ScalarField.PACK_FAULT_FLAGS}")


def faulty(pack: RecordedPack, protocol: PackProtocol) -> RecordedPack:
    """The same recording, with the fault flag set in every status frame."""
    message = protocol.messages[STATUS_MESSAGE].message
    signal = _fault_signal(protocol)
    status_id = protocol.frame_id(STATUS_MESSAGE, pack.node_address)

    def flagged(frame: can.Message) -> can.Message:
        if frame.arbitration_id != status_id:
            return frame
        signals = message.decode(bytes(frame.data), decode_choices=False, scaling=False)
        signals[signal] = int(signals[signal]) | FAULT_FLAG
        data = bytearray(message.encode(signals, scaling=False, strict=False))
        data[protocol.crc_byte] = frame_crc(status_id, bytes(data), protocol.crc_byte)
        return can.Message(arbitration_id=frame.arbitration_id, data=bytes(data), is_extended_id=True,
                           channel=frame.channel)

    return replace(pack, periods=tuple(tuple(flagged(f) for f in burst) for burst in pack.periods))


class FaultLoad(CanLoad):
    """The CAN load, able to swap one pack's recording for another while playing."""

    def __init__(self, packs: Sequence[RecordedPack], period_s: float) -> None:
        super().__init__(packs, period_s)
        self._watched: set[int] = set()  # ids of the bursts whose first send is awaited
        self.first_sent: float | None = None  # monotonic time the first watched burst went out

    def play(self, index: int, pack: RecordedPack) -> None:
        """From its next period on, pack `index` sends `pack`'s frames; `first_sent` will say when they start."""
        self.first_sent = None
        self._watched = {id(burst) for burst in pack.periods}
        self._packs[index] = pack  # one list item replaced: the sending thread sees the old or the new one

    def _send(self, channel: str, burst: Burst) -> None:
        if self.first_sent is None and id(burst) in self._watched:
            self.first_sent = time.monotonic()
        super()._send(channel, burst)
