"""Scaled integers in 16-bit registers: register types, not-implemented values, word order.

`raw = round(value * unit_factor / scale)`, halves rounded away from zero. A value that is NaN,
infinite or outside the type's range is published as the type's not-implemented value (SunSpec
style), never clamped. Counter sources wrap around within the type's range instead. 32-bit values
take two registers, high word first for `big` word order, low word first for `little`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

RegisterType = Literal["uint16", "int16", "uint32", "int32"]
WordOrder = Literal["big", "little"]


@dataclass(frozen=True, slots=True)
class TypeInfo:
    words: int
    low: int  # smallest valid raw value
    high: int  # largest valid raw value
    not_implemented: int  # as the unsigned bit pattern on the wire
    signed: bool


REGISTER_TYPES: dict[RegisterType, TypeInfo] = {
    "uint16": TypeInfo(1, 0, 0xFFFE, 0xFFFF, signed=False),
    "int16": TypeInfo(1, -0x7FFF, 0x7FFF, 0x8000, signed=True),
    "uint32": TypeInfo(2, 0, 0xFFFF_FFFE, 0xFFFF_FFFF, signed=False),
    "int32": TypeInfo(2, -0x7FFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, signed=True),
}


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one value goes and how it is scaled."""

    address: int  # offset of its first register in the image
    type: RegisterType
    multiplier: float  # unit_factor / scale
    counter: bool = False


class ImageEncoder:
    """Compiled once from a list of slots; turns one value per slot into a register image."""

    def __init__(self, size: int, slots: Sequence[Slot], word_order: WordOrder) -> None:
        self.size = size
        infos = [REGISTER_TYPES[slot.type] for slot in slots]
        self._multiplier = np.array([_snapped(slot.multiplier) for slot in slots], dtype=np.float64)
        self._low = np.array([info.low for info in infos], dtype=np.float64)
        self._high = np.array([info.high for info in infos], dtype=np.float64)
        self._not_implemented = np.array([info.not_implemented for info in infos], dtype=np.int64)
        self._counter = np.array([slot.counter for slot in slots], dtype=bool)
        self._modulus = self._high + 1.0  # counters are unsigned (checked when the map is loaded)
        single = np.array([info.words == 1 for info in infos], dtype=bool)
        addresses = np.array([slot.address for slot in slots], dtype=np.intp)
        self._single = np.flatnonzero(single)
        self._double = np.flatnonzero(~single)
        self._single_at = addresses[self._single]
        first, second = addresses[self._double], addresses[self._double] + 1
        self._high_word_at, self._low_word_at = (first, second) if word_order == "big" else (second, first)
        self.not_implemented_image = self.encode(np.full(len(slots), np.nan))

    def encode(self, values: NDArray[np.float64]) -> NDArray[np.uint16]:
        with np.errstate(invalid="ignore", over="ignore"):
            scaled = values * self._multiplier
            raw = np.copysign(np.floor(np.abs(scaled) + 0.5), scaled)  # half away from zero
            finite = np.isfinite(raw)
            raw = np.where(finite, raw, 0.0)
            raw = np.where(self._counter, np.mod(raw, self._modulus), raw)
        valid = finite & (raw >= self._low) & (raw <= self._high)
        integers = np.where(valid, raw, 0.0).astype(np.int64)
        patterns = np.where(valid, integers & 0xFFFF_FFFF, self._not_implemented)
        image = np.zeros(self.size, dtype=np.uint16)
        image[self._single_at] = (patterns[self._single] & 0xFFFF).astype(np.uint16)
        doubles = patterns[self._double]
        image[self._high_word_at] = (doubles >> 16).astype(np.uint16)
        image[self._low_word_at] = (doubles & 0xFFFF).astype(np.uint16)
        return image


def _snapped(multiplier: float) -> float:
    """1 / 0.1 is 10 exactly, but 100 / 0.03 is not 3333.33...: snap near-integers to integers."""
    nearest = round(multiplier)
    return float(nearest) if nearest and abs(multiplier - nearest) <= 1e-9 * abs(multiplier) else multiplier
