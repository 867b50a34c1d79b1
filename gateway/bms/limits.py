"""Charge/discharge current limits: datasheet rating x temperature derating x cell-voltage taper.

A pack that is stale, has an alarm (or worse) active, or whose contactor is not closed gets zero
limits: never the last good ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.quantities import QUANTITY_ROWS, Quantities, Quantity


@dataclass(frozen=True)
class DeratingSettings:
    temperature_band_c: float = 5.0  # linear derating inside this band at each edge of a window
    voltage_taper_v: float = 0.10  # linear taper over this distance to the cell voltage limit


DEFAULT_DERATING = DeratingSettings()

# Both directions are derived at once, as the columns (charge, discharge) of packs x 2 arrays.
_LIMITING_CELL_ROWS = [QUANTITY_ROWS[Quantity.MAX_CELL_VOLTAGE_V], QUANTITY_ROWS[Quantity.MIN_CELL_VOLTAGE_V]]
_HEADROOM_SIGN = np.array([1.0, -1.0])  # charge: limit - highest cell; discharge: lowest cell - limit


@dataclass(frozen=True)
class CurrentLimits:
    charge_a: FloatArray
    discharge_a: FloatArray
    charge_voltage_v: FloatArray
    discharge_voltage_v: FloatArray


def _unit_factor(ratio: FloatArray) -> FloatArray:
    """`ratio` clipped to 0..1, and 0 where it is unknown (NaN): fmax/fmin return the number beside a NaN."""
    result: FloatArray = np.fmin(np.fmax(ratio, 0.0), 1.0)
    return result


def current_limits(parameters: PackParameters, quantities: Quantities, allowed: BoolArray,
                   derating: DeratingSettings = DEFAULT_DERATING) -> CurrentLimits:
    band = derating.temperature_band_c
    rising = _unit_factor((quantities[Quantity.MIN_TEMPERATURE_C][:, None] - parameters.window_low_c) / band)
    falling = _unit_factor((parameters.window_high_c - quantities[Quantity.MAX_TEMPERATURE_C][:, None]) / band)
    limiting_cell_v = quantities.values[_LIMITING_CELL_ROWS].T
    headroom_v = (parameters.cell_voltage_limit_v - limiting_cell_v) * _HEADROOM_SIGN
    taper = _unit_factor(headroom_v / derating.voltage_taper_v)
    current = np.where(allowed[:, None], parameters.rated_current_a * np.minimum(rising, falling) * taper, 0.0)
    return CurrentLimits(
        charge_a=current[:, 0],
        discharge_a=current[:, 1],
        charge_voltage_v=parameters.charge_voltage_v,
        discharge_voltage_v=parameters.discharge_voltage_v,
    )
