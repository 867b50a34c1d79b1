"""Thresholds written relative to the cell model and the site: `cell.max_charge_voltage_v + 0.02`,
`1.5 * pack.pulse_discharge_current_a`, `3.0`.

Grammar: `[factor *] reference [+|- offset]` or a plain number. A reference is resolved per pack by
`protection_rules.py`; this module only parses and checks the names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import FloatArray

REFERENCES: dict[str, str] = {
    "cell.max_charge_voltage_v": "the cell model's maximum charge voltage",
    "cell.min_discharge_voltage_v": "the cell model's minimum discharge voltage",
    "cell.charge_temperature_min_c": "low edge of the cell's charge temperature window",
    "cell.charge_temperature_max_c": "high edge of the cell's charge temperature window",
    "cell.discharge_temperature_min_c": "low edge of the cell's discharge (operating) temperature window",
    "cell.discharge_temperature_max_c": "high edge of the cell's discharge (operating) temperature window",
    "pack.max_charge_voltage_v": "series cells x the cell's maximum charge voltage",
    "pack.min_discharge_voltage_v": "series cells x the cell's minimum discharge voltage",
    "pack.capacity_ah": "the pack's nominal capacity (1C in A)",
    "pack.continuous_charge_current_a": "the cell's continuous charge rating",
    "pack.continuous_discharge_current_a": "the cell's continuous discharge rating",
    "pack.pulse_charge_current_a": "the cell's 10 s pulse charge rating",
    "pack.pulse_discharge_current_a": "the cell's 10 s pulse discharge rating",
    "engine.stale_after_s": "the stale timeout of voltages and current, less the reaction time of 1.5 ticks",
    "engine.temperature_stale_after_s": "the stale timeout of temperatures, less 1.5 ticks",
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATTERN = re.compile(rf"^\s*(?:(?P<factor>{_NUMBER})\s*\*\s*)?(?P<reference>[a-z][a-z_.]*[a-z])"
                      rf"\s*(?:(?P<sign>[-+])\s*(?P<offset>{_NUMBER}))?\s*$")


@dataclass(frozen=True)
class ThresholdExpression:
    reference: str | None  # None: a plain number (the offset)
    factor: float = 1.0
    offset: float = 0.0

    def resolve(self, references: dict[str, FloatArray], packs: int) -> FloatArray:
        base = references[self.reference] if self.reference is not None else np.zeros(packs)
        result: FloatArray = self.factor * base + self.offset
        return result

    def __str__(self) -> str:
        if self.reference is None:
            return f"{self.offset:g}"
        factor = f"{self.factor:g} * " if self.factor != 1.0 else ""
        offset = f" {'+' if self.offset >= 0 else '-'} {abs(self.offset):g}" if self.offset else ""
        return f"{factor}{self.reference}{offset}"


def parse_threshold(text: str | float) -> ThresholdExpression:
    """The expression, or ValueError naming the valid references."""
    if isinstance(text, int | float):
        return ThresholdExpression(None, offset=float(text))
    try:
        return ThresholdExpression(None, offset=float(text))
    except ValueError:
        pass
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not `[factor *] reference [+|- offset]` or a number")
    reference = match["reference"]
    if reference not in REFERENCES:
        raise ValueError(f"unknown reference {reference!r}; valid references: {', '.join(REFERENCES)}")
    offset = float(match["offset"]) if match["offset"] else 0.0
    return ThresholdExpression(reference, float(match["factor"] or 1.0), -offset if match["sign"] == "-" else offset)
