"""Charge/discharge current limits: datasheet rating x temperature derating x cell-voltage taper.

A pack that is stale, has an alarm (or worse) active, or whose contactor is not closed gets zero
limits: never the last good ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.arrays import nan_to
from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.quantities import Quantity


@dataclass(frozen=True)
class DeratingSettings:
    temperature_band_c: float = 5.0  # linear derating inside this band at each edge of a window
    voltage_taper_v: float = 0.10  # linear taper over this distance to the cell voltage limit


@dataclass(frozen=True)
class CurrentLimits:
    charge_a: FloatArray
    discharge_a: FloatArray
    charge_voltage_v: FloatArray
    discharge_voltage_v: FloatArray


def _window_factor(low_temp: FloatArray, high_temp: FloatArray, window: FloatArray, band: float) -> FloatArray:
    rising = np.clip((low_temp - window[:, 0]) / band, 0.0, 1.0)
    falling = np.clip((window[:, 1] - high_temp) / band, 0.0, 1.0)
    return nan_to(np.minimum(rising, falling), 0.0)


def current_limits(parameters: PackParameters, quantities: dict[Quantity, FloatArray], allowed: BoolArray,
                   derating: DeratingSettings | None = None) -> CurrentLimits:
    d = derating or DeratingSettings()
    t_min, t_max = quantities[Quantity.MIN_TEMPERATURE_C], quantities[Quantity.MAX_TEMPERATURE_C]
    v_max, v_min = quantities[Quantity.MAX_CELL_VOLTAGE_V], quantities[Quantity.MIN_CELL_VOLTAGE_V]
    charge_temperature = _window_factor(t_min, t_max, parameters.charge_temperature_c, d.temperature_band_c)
    discharge_temperature = _window_factor(t_min, t_max, parameters.discharge_temperature_c,
                                           d.temperature_band_c)
    charge_voltage = nan_to(np.clip((parameters.max_cell_voltage_v - v_max) / d.voltage_taper_v, 0.0, 1.0), 0.0)
    discharge_voltage = nan_to(np.clip((v_min - parameters.min_cell_voltage_v) / d.voltage_taper_v, 0.0, 1.0), 0.0)
    charge = parameters.max_charge_current_a * charge_temperature * charge_voltage
    discharge = parameters.max_discharge_current_a * discharge_temperature * discharge_voltage
    return CurrentLimits(
        charge_a=np.where(allowed, charge, 0.0),
        discharge_a=np.where(allowed, discharge, 0.0),
        charge_voltage_v=parameters.series_cells * parameters.max_cell_voltage_v,
        discharge_voltage_v=parameters.series_cells * parameters.min_cell_voltage_v,
    )
