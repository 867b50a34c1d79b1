"""Per-pack quantities that protection rules compare against thresholds."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from gateway.bms.inputs import BmsInputs, FloatArray
from gateway.bms.pack_parameters import PackParameters

PLAUSIBLE_CELL_VOLTAGE_V = (0.5, 5.5)
PLAUSIBLE_TEMPERATURE_C = (-55.0, 150.0)


class Quantity(StrEnum):
    MAX_CELL_VOLTAGE_V = "max_cell_voltage_v"
    MIN_CELL_VOLTAGE_V = "min_cell_voltage_v"
    MAX_TEMPERATURE_C = "max_temperature_c"
    MIN_TEMPERATURE_C = "min_temperature_c"
    CHARGE_CURRENT_A = "charge_current_a"
    DISCHARGE_CURRENT_A = "discharge_current_a"
    DATA_AGE_S = "data_age_s"
    TEMPERATURE_AGE_S = "temperature_age_s"
    IMPLAUSIBLE_READINGS = "implausible_readings"
    PACK_FAULT_FLAGS = "pack_fault_flags"


def implausible_readings(inputs: BmsInputs, parameters: PackParameters) -> FloatArray:
    """Count of readings per pack outside the physically plausible range (sensor faults)."""
    count: FloatArray
    low_v, high_v = PLAUSIBLE_CELL_VOLTAGE_V
    low_t, high_t = PLAUSIBLE_TEMPERATURE_C
    volts = inputs.cell_voltage_v
    temps = inputs.temperature_c
    bad_v = parameters.cell_mask & np.isfinite(volts) & ((volts < low_v) | (volts > high_v))
    bad_t = parameters.sensor_mask & np.isfinite(temps) & ((temps < low_t) | (temps > high_t))
    count = (bad_v.sum(axis=1) + bad_t.sum(axis=1)).astype(np.float64)
    return count


def plausible(values: FloatArray, mask: np.ndarray, limits: tuple[float, float]) -> FloatArray:
    """Values with absent and implausible readings replaced by NaN."""
    low, high = limits
    keep = mask & (values >= low) & (values <= high)
    result: FloatArray = np.where(keep, values, np.nan)
    return result


def compute_quantities(inputs: BmsInputs, parameters: PackParameters) -> dict[Quantity, FloatArray]:
    volts = plausible(inputs.cell_voltage_v, parameters.cell_mask, PLAUSIBLE_CELL_VOLTAGE_V)
    temps = plausible(inputs.temperature_c, parameters.sensor_mask, PLAUSIBLE_TEMPERATURE_C)
    # fmax/fmin skip NaN like nanmax/nanmin, and give NaN ('unknown') for an all-NaN row without a warning
    return {
        Quantity.MAX_CELL_VOLTAGE_V: np.fmax.reduce(volts, axis=1),
        Quantity.MIN_CELL_VOLTAGE_V: np.fmin.reduce(volts, axis=1),
        Quantity.MAX_TEMPERATURE_C: np.fmax.reduce(temps, axis=1),
        Quantity.MIN_TEMPERATURE_C: np.fmin.reduce(temps, axis=1),
        Quantity.CHARGE_CURRENT_A: inputs.pack_current_a,
        Quantity.DISCHARGE_CURRENT_A: -inputs.pack_current_a,
        Quantity.DATA_AGE_S: inputs.data_age_s,
        Quantity.TEMPERATURE_AGE_S: inputs.temperature_age_s,
        Quantity.IMPLAUSIBLE_READINGS: implausible_readings(inputs, parameters),
        Quantity.PACK_FAULT_FLAGS: inputs.pack_fault_flags.astype(np.float64),
    }

