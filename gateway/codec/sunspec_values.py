"""SunSpec point values into registers: scale factors, not-implemented values and strings, as the standard says.

A value is given in its engineering unit and divided by 10**sf of its scale-factor point; an unknown value
(None or NaN) or one outside its type's range is written as the type's not-implemented value, never clamped.
32-bit points are big-endian (high word first), as SunSpec requires whatever the native map's word order.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gateway.codec.sunspec_layout import PointSlot

Image = NDArray[np.uint16]

NOT_IMPLEMENTED: dict[str, int] = {
    "uint16": 0xFFFF, "int16": 0x8000, "enum16": 0xFFFF, "bitfield16": 0xFFFF, "count": 0xFFFF, "acc16": 0,
    "uint32": 0xFFFFFFFF, "int32": 0x80000000, "enum32": 0xFFFFFFFF, "bitfield32": 0xFFFFFFFF, "acc32": 0,
    "sunssf": 0x8000, "pad": 0x8000,
}
_RANGES: dict[str, tuple[int, int]] = {
    "uint16": (0, 0xFFFE), "enum16": (0, 0xFFFE), "bitfield16": (0, 0x7FFF), "count": (0, 0xFFFE),
    "acc16": (0, 0xFFFF), "int16": (-0x7FFF, 0x7FFF), "sunssf": (-10, 10),
    "uint32": (0, 0xFFFFFFFE), "enum32": (0, 0xFFFFFFFE), "bitfield32": (0, 0x7FFFFFFF), "acc32": (0, 0xFFFFFFFF),
    "int32": (-0x7FFFFFFF, 0x7FFFFFFF),
}


def raw_value(slot: PointSlot, value: float | None, exponent: int = 0) -> int | None:
    """The integer the point carries for `value` in its unit (None: not implemented)."""
    if value is None or math.isnan(value):
        return None
    # multiply by an exact power of ten (3.6165 * 1000 is 3616.5; 3.6165 / 0.001 is 3616.4999...)
    scaled = value * 10**-exponent if exponent < 0 else value / 10**exponent
    raw = math.floor(scaled + 0.5) if scaled >= 0 else -math.floor(-scaled + 0.5)  # halves away from zero
    low, high = _RANGES[slot.type]
    return raw if low <= raw <= high else None


def put(image: Image, base: int, slot: PointSlot, value: float | None, exponent: int = 0) -> None:
    """Write a numeric point; `base` is the image's first address."""
    raw = raw_value(slot, value, exponent)
    word = NOT_IMPLEMENTED[slot.type] if raw is None else raw & (0xFFFF if slot.size == 1 else 0xFFFFFFFF)
    offset = slot.address - base
    if slot.size == 1:
        image[offset] = word
    else:
        image[offset] = word >> 16
        image[offset + 1] = word & 0xFFFF


def put_string(image: Image, base: int, slot: PointSlot, text: str) -> None:
    """ASCII, two characters per register, NUL-padded; longer text is cut to the point's size."""
    data = text.encode("ascii", "replace")[: 2 * slot.size].ljust(2 * slot.size, b"\0")
    offset = slot.address - base
    image[offset : offset + slot.size] = np.frombuffer(data, dtype=">u2")


def not_implemented(image: Image, base: int, slot: PointSlot) -> None:
    if slot.type == "string":
        put_string(image, base, slot, "")
    else:
        put(image, base, slot, None)


def scale_exponent(largest: float, type_name: str, finest: int = -3) -> int:
    """The smallest exponent from `finest` up at which `largest` (in the unit) fits the type: fixed per device, as
    SunSpec scale factors are meant to be."""
    high = _RANGES[type_name][1]
    exponent = finest
    while largest / 10.0**exponent > high and exponent < 10:
        exponent += 1
    return exponent
