"""Derating factors in 0..1, per pack and direction (packs x 2: charge, discharge); unknown (NaN) gives 0.

* temperature: a table (temperature -> factor) per direction, read at the pack's coldest and hottest
  sensor, the smaller factor wins;
* cell voltage: linear taper over the last `taper_v` before the cell voltage limit;
* SoC: linear taper of charge as the fullest cell approaches full, of discharge as the emptiest approaches empty.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from gateway.bms.cell_tables import IntArray
from gateway.bms.inputs import FloatArray

_HEADROOM_SIGN = np.array([1.0, -1.0])  # charge: limit - highest cell; discharge: lowest cell - limit


def unit_factor(ratio: FloatArray) -> FloatArray:
    """`ratio` clipped to 0..1, and 0 where it is unknown (NaN): fmax/fmin return the number beside a NaN."""
    result: FloatArray = np.fmin(np.fmax(ratio, 0.0), 1.0)
    return result


@dataclass(frozen=True)
class DeratingTable:
    """A factor over temperature, linear between breakpoints and constant beyond the first and the last."""

    temperature_c: tuple[float, ...]
    factor: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.temperature_c) != len(self.factor) or len(self.factor) < 2:
            raise ValueError(f"a derating table needs two or more (temperature, factor) pairs, got "
                             f"{len(self.temperature_c)} temperatures and {len(self.factor)} factors")
        if any(high <= low for low, high in pairwise(self.temperature_c)):
            raise ValueError(f"derating temperatures {self.temperature_c} do not increase strictly")
        if any(not 0.0 <= f <= 1.0 for f in self.factor):
            raise ValueError(f"derating factors {self.factor} are not all within 0..1")

    def at(self, temperature_c: FloatArray) -> FloatArray:
        """The factor at each temperature; NaN where the temperature is unknown."""
        result: FloatArray = np.interp(temperature_c, self.temperature_c, self.factor)
        return result


@functools.cache
def window_table(low_c: float, high_c: float, ramp_c: float) -> DeratingTable:
    """0 at and below `low_c`, 1 from `ramp_c` above it to `ramp_c` below `high_c`, 0 at and above `high_c`."""
    ramp = min(ramp_c, 0.4 * (high_c - low_c))  # a narrow window keeps a plateau
    return DeratingTable((low_c, low_c + ramp, high_c - ramp, high_c), (0.0, 1.0, 1.0, 0.0))


def temperature_factor(tables: Sequence[tuple[DeratingTable, DeratingTable]], pack_model: IntArray,
                       min_temperature_c: FloatArray, max_temperature_c: FloatArray) -> FloatArray:
    """packs x 2: `tables[m]` (charge, discharge) applies to the packs whose `pack_model` is m."""
    coldest_and_hottest = np.concatenate((min_temperature_c, max_temperature_c))
    packs = len(pack_model)
    result = np.zeros((packs, 2))
    for model, model_tables in enumerate(tables):
        factor = np.column_stack([np.minimum(*np.split(table.at(coldest_and_hottest), [packs]))
                                  for table in model_tables])
        result = factor if len(tables) == 1 else np.where((pack_model == model)[:, None], factor, result)
    return unit_factor(result)


def voltage_taper(max_cell_voltage_v: FloatArray, min_cell_voltage_v: FloatArray, cell_voltage_limit_v: FloatArray,
                  taper_v: float) -> FloatArray:
    """packs x 2: 1 while the limiting cell is `taper_v` or more from its limit, falling linearly to 0 at it."""
    headroom_v = (cell_voltage_limit_v - np.column_stack((max_cell_voltage_v, min_cell_voltage_v))) * _HEADROOM_SIGN
    return unit_factor(headroom_v / taper_v)


def soc_taper(max_cell_soc: FloatArray, min_cell_soc: FloatArray, charge_soc: tuple[float, float],
              discharge_soc: tuple[float, float]) -> FloatArray:
    """packs x 2: charge on the fullest cell, discharge on the emptiest; each (start, end): 1 at start, 0 at end."""
    start = np.array([charge_soc[0], discharge_soc[0]])
    end = np.array([charge_soc[1], discharge_soc[1]])
    return unit_factor((np.column_stack((max_cell_soc, min_cell_soc)) - end) / (start - end))
