"""Garbage on the bus: frames a real bus sees from broken or foreign nodes.

A mix of: unknown extended identifiers, unknown standard (11-bit) identifiers, the pack's own
protocol identifiers with a wrong length, and the pack's own identifiers with the right length and
random bytes (the CRC is forced wrong, so garbage can never be decoded as a measurement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.codec.integrity import frame_crc
from gateway.codec.protocol import PackProtocol

MAX_DATA_LENGTH = 8


@dataclass(frozen=True, slots=True)
class RawFrame:
    arbitration_id: int
    data: bytes
    is_extended_id: bool = True


class GarbageFrames:
    def __init__(self, protocol: PackProtocol, node_address: int, rng: np.random.Generator) -> None:
        self._protocol = protocol
        self._rng = rng
        self._node = node_address & protocol.node_mask
        self._base_ids = {binding.base_frame_id for binding in protocol.messages.values()}
        self._own = [binding for binding in protocol.messages.values() if binding.direction == "from_pack"]

    def _bytes(self, length: int) -> bytes:
        return self._rng.integers(0, 256, size=length, dtype=np.uint8).tobytes()

    def _unknown_extended(self) -> RawFrame:
        while True:
            arbitration_id = int(self._rng.integers(0, 1 << 29))
            if arbitration_id & ~self._protocol.node_mask not in self._base_ids:
                return RawFrame(arbitration_id, self._bytes(int(self._rng.integers(0, MAX_DATA_LENGTH + 1))))

    def _own_id(self, wrong_length: bool) -> RawFrame:
        binding = self._own[int(self._rng.integers(0, len(self._own)))]
        arbitration_id = binding.base_frame_id | self._node
        if wrong_length:
            lengths = [n for n in range(MAX_DATA_LENGTH + 1) if n != binding.length]
            return RawFrame(arbitration_id, self._bytes(lengths[int(self._rng.integers(0, len(lengths)))]))
        data = bytearray(self._bytes(binding.length))
        crc_byte = self._protocol.crc_byte
        if frame_crc(arbitration_id, bytes(data), crc_byte) == data[crc_byte]:
            data[crc_byte] ^= 0xFF
        return RawFrame(arbitration_id, bytes(data))

    def make(self) -> RawFrame:
        kind = int(self._rng.integers(0, 4))
        if kind == 0:
            return self._unknown_extended()
        if kind == 1:
            standard_id = int(self._rng.integers(0, 1 << 11))
            length = int(self._rng.integers(0, MAX_DATA_LENGTH + 1))
            return RawFrame(standard_id, self._bytes(length), is_extended_id=False)
        if not self._own:
            return self._unknown_extended()
        return self._own_id(wrong_length=kind == 2)
