"""Per-pack quantities that protection rules compare against thresholds, as one array (quantities x packs)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from gateway.bms.inputs import BmsInputs, BoolArray, FloatArray, IntArray
from gateway.bms.pack_parameters import PackParameters

PLAUSIBLE_CELL_VOLTAGE_V = (0.5, 5.5)
PLAUSIBLE_TEMPERATURE_C = (-55.0, 150.0)


class Quantity(StrEnum):
    """The quantities, in the order of the rows of `Quantities.values`."""

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


QUANTITY_ROWS: dict[Quantity, int] = {quantity: row for row, quantity in enumerate(Quantity)}


@dataclass(frozen=True)
class Quantities:
    values: FloatArray  # quantities x packs, rows in `Quantity` order

    def __getitem__(self, quantity: Quantity) -> FloatArray:
        row: FloatArray = self.values[QUANTITY_ROWS[quantity]]
        return row


def screened(values: FloatArray, mask: BoolArray, limits: tuple[float, float]) -> tuple[FloatArray, IntArray]:
    """Readings with absent and implausible ones replaced by NaN, and per pack the count of implausible ones.

    Implausible: present, finite and outside the physically plausible range (a sensor fault).
    """
    low, high = limits
    plausible = mask & (values >= low) & (values <= high)
    if plausible.all():  # the usual tick of identical packs: every reading present and plausible
        return values, np.zeros(len(values), dtype=np.int64)
    implausible = mask & np.isfinite(values) & ~plausible
    return np.where(plausible, values, np.nan), implausible.sum(axis=1)


def extremes(readings: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per pack (row), the highest and the lowest reading, skipping NaN; NaN ('unknown') for a row without any."""
    # fmax/fmin skip NaN without the warning of nanmax/nanmin. Reducing over the first axis of a contiguous
    # readings x packs copy is several times faster than numpy's row-by-row reduction of packs x readings.
    by_reading = readings.T.copy()
    return np.fmax.reduce(by_reading, axis=0), np.fmin.reduce(by_reading, axis=0)


def compute_quantities(inputs: BmsInputs, parameters: PackParameters) -> Quantities:
    volts, implausible_volts = screened(inputs.cell_voltage_v, parameters.cell_mask, PLAUSIBLE_CELL_VOLTAGE_V)
    temps, implausible_temps = screened(inputs.temperature_c, parameters.sensor_mask, PLAUSIBLE_TEMPERATURE_C)
    max_volts, min_volts = extremes(volts)
    max_temps, min_temps = extremes(temps)
    current = inputs.pack_current_a
    rows = (  # in `Quantity` order
        max_volts, min_volts, max_temps, min_temps, current, -current, inputs.data_age_s, inputs.temperature_age_s,
        implausible_volts + implausible_temps, inputs.pack_fault_flags,
    )
    return Quantities(np.array(rows, dtype=np.float64))
