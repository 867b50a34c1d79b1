"""Integrity faults applied to a pack's encoded frames: corrupted CRC, frozen rolling counters."""

from __future__ import annotations

from dataclasses import replace

from gateway.codec.can_encoder import EncodedFrame
from gateway.codec.integrity import frame_crc
from gateway.codec.protocol import MessageBinding, PackProtocol

CRC_CORRUPTION = 0x5A  # any non-zero XOR makes the CRC byte wrong


def corrupt_crc(frame: EncodedFrame, crc_byte: int) -> EncodedFrame:
    data = bytearray(frame.data)
    data[crc_byte] ^= CRC_CORRUPTION
    return replace(frame, data=bytes(data))


class CounterFreezer:
    """While active, every identifier keeps sending the counter it had when the fault began
    (CRC recomputed, so only the counter check can reject the frames)."""

    def __init__(self, protocol: PackProtocol) -> None:
        self._protocol = protocol
        self._by_base_id: dict[int, MessageBinding] = {
            binding.base_frame_id: binding for binding in protocol.messages.values()
        }
        self._frozen: dict[int, int] = {}

    def reset(self) -> None:
        self._frozen.clear()

    def apply(self, frame: EncodedFrame) -> EncodedFrame:
        protocol = self._protocol
        binding = self._by_base_id[frame.arbitration_id & ~protocol.node_mask]
        raw = binding.message.decode(frame.data, decode_choices=False, scaling=False)
        counter = self._frozen.setdefault(frame.arbitration_id, int(raw[protocol.counter_signal]))
        if counter == int(raw[protocol.counter_signal]):
            return frame
        raw[protocol.counter_signal] = counter
        data = bytearray(binding.message.encode(raw, scaling=False, strict=False))
        data[protocol.crc_byte] = frame_crc(frame.arbitration_id, bytes(data), protocol.crc_byte)
        return replace(frame, data=bytes(data))
