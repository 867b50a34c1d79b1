"""End-to-end protection of a frame: CRC over identifier and payload, rolling counter."""

from __future__ import annotations

from crccheck.crc import Crc8SaeJ1850

from gateway.errors import FrameRejected

COUNTER_MODULO = 16


def frame_crc(arbitration_id: int, data: bytes, crc_byte: int) -> int:
    """CRC-8/SAE-J1850 over the identifier (4 bytes, big-endian) and every data byte but the CRC's."""
    covered = arbitration_id.to_bytes(4, "big") + data[:crc_byte] + data[crc_byte + 1 :]
    return int(Crc8SaeJ1850.calc(covered))


class CounterTracker:
    """Per-identifier rolling-counter check: a repeat or a jump rejects the frame, then resynchronises."""

    def __init__(self, max_step: int) -> None:
        self._max_step = max_step
        self._last: dict[int, int] = {}

    def check(self, arbitration_id: int, counter: int) -> None:
        last = self._last.get(arbitration_id)
        self._last[arbitration_id] = counter
        if last is None:
            return
        step = (counter - last) % COUNTER_MODULO
        if step == 0:
            raise FrameRejected("counter_repeated", f"id {arbitration_id:#x} counter {counter}")
        if step > self._max_step:
            raise FrameRejected("counter_jump", f"id {arbitration_id:#x} {last} -> {counter}")
