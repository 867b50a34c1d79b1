"""Per-pack quantities that protection rules compare against thresholds, as one array (quantities x packs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import numpy as np

from gateway.bms.inputs import BmsInputs, BoolArray, FloatArray, IntArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.predictive import PredictiveWarnings
from gateway.bms.signal_trends import Trends
from gateway.domain.states import ContactorState

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
    PACK_FAULT_FLAGS = "pack_fault_flags"  # the flags other than insulation and contactor, as a number
    PACK_VOLTAGE_V = "pack_voltage_v"
    CELL_VOLTAGE_SPREAD_V = "cell_voltage_spread_v"
    TEMPERATURE_SPREAD_C = "temperature_spread_c"
    TEMPERATURE_RISE_C_PER_MIN = "temperature_rise_c_per_min"
    PEAK_DISCHARGE_CURRENT_A = "peak_discharge_current_a"  # the largest in any frame since the previous tick
    OPEN_OR_SHORTED_THERMISTORS = "open_or_shorted_thermistors"
    FROZEN_READINGS = "frozen_readings"
    INSULATION_FAULT = "insulation_fault"
    CONTACTOR_FAULT = "contactor_fault"
    MODEL_RESIDUAL_MV = "model_residual_mv"
    # the predictive statistics of the previous step (gateway.bms.predictive), the highest cell or sensor
    CELL_RESISTANCE_EXCESS = "cell_resistance_excess"  # R0 above the mean of the peers', / model pulse resistance
    SENSOR_HEATING_EXCESS_C = "sensor_heating_excess_c"  # above the median of the other sensors, filtered
    CELL_LEAK_C_RATE = "cell_leak_c_rate"  # estimated leak of a cell standing out from its peers, in C
    CURRENT_REVERSAL_RATIO = "current_reversal_ratio"  # reversal rate of large current steps / the rate that warns
    # the bits a pack's own BMS sets (the common battery CAN protocol's frame 0x359), as numbers; 0 if not reported
    PACK_PROTECTION_FLAGS = "pack_protection_flags"
    PACK_WARNING_FLAGS = "pack_warning_flags"


QUANTITY_ROWS: dict[Quantity, int] = {quantity: row for row, quantity in enumerate(Quantity)}

# The pack's fault flags (the reference protocol's FaultFlags byte): these two bits have rules of their own.
INSULATION_FLAG = 1 << 4
CONTACTOR_FLAG = 1 << 5


@dataclass(frozen=True)
class SensorLimits:
    """Readings a working sensor cannot give although they are physically possible."""

    thermistor_open_c: float = -40.0  # an open NTC reads as very cold
    thermistor_shorted_c: float = 120.0  # a shorted NTC reads as very hot


@dataclass(frozen=True)
class Quantities:
    values: FloatArray  # quantities x packs, rows in `Quantity` order
    cell_voltage_v: FloatArray  # packs x cells: the screened readings (NaN: absent or implausible)
    temperature_c: FloatArray  # packs x sensors
    # per cell (or sensor) values of other per-pack maxima, to say which cell a rule concerns
    per_cell: Mapping[Quantity, FloatArray] = field(default_factory=lambda: MappingProxyType({}))

    def __getitem__(self, quantity: Quantity) -> FloatArray:
        row: FloatArray = self.values[QUANTITY_ROWS[quantity]]
        return row

    def position(self, quantity: Quantity, pack: int) -> int | None:
        """The 1-based cell (or sensor) a per-cell quantity comes from, None for a pack-level quantity."""
        readings = {Quantity.MAX_CELL_VOLTAGE_V: self.cell_voltage_v, Quantity.MIN_CELL_VOLTAGE_V: self.cell_voltage_v,
                    Quantity.MAX_TEMPERATURE_C: self.temperature_c, Quantity.MIN_TEMPERATURE_C: self.temperature_c,
                    **self.per_cell}
        row = readings.get(quantity)
        if row is None or not np.isfinite(row[pack]).any():
            return None
        lowest = quantity in (Quantity.MIN_CELL_VOLTAGE_V, Quantity.MIN_TEMPERATURE_C)
        return int((np.nanargmin if lowest else np.nanargmax)(row[pack])) + 1


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


@dataclass(frozen=True)
class ScreenedReadings:
    cell_voltage_v: FloatArray
    temperature_c: FloatArray
    implausible: IntArray  # per pack


def screen(inputs: BmsInputs, parameters: PackParameters) -> ScreenedReadings:
    volts, implausible_volts = screened(inputs.cell_voltage_v, parameters.cell_mask, PLAUSIBLE_CELL_VOLTAGE_V)
    temps, implausible_temps = screened(inputs.temperature_c, parameters.sensor_mask, PLAUSIBLE_TEMPERATURE_C)
    return ScreenedReadings(volts, temps, implausible_volts + implausible_temps)


def _max(values: FloatArray) -> FloatArray:
    """Per pack (row), the highest value skipping NaN; NaN for a row without any."""
    result: FloatArray = np.fmax.reduce(values.T.copy(), axis=0)
    return result


def compute_quantities(inputs: BmsInputs, parameters: PackParameters, readings: ScreenedReadings, trends: Trends,
                       model_residual_v: FloatArray, contactor_overdue: BoolArray, predictive: PredictiveWarnings,
                       sensors: SensorLimits = SensorLimits()) -> Quantities:
    volts, temps = readings.cell_voltage_v, readings.temperature_c
    max_volts, min_volts = extremes(volts)
    max_temps, min_temps = extremes(temps)
    current = inputs.pack_current_a
    peak = inputs.peak_discharge_current_a if inputs.peak_discharge_current_a is not None else -current
    flags = inputs.pack_fault_flags
    reports = inputs.reports
    protection_bits = np.zeros(len(current)) if reports is None else np.nan_to_num(reports.protection_flags)
    warning_bits = np.zeros(len(current)) if reports is None else np.nan_to_num(reports.warning_flags)
    thermistors = ((temps <= sensors.thermistor_open_c) | (temps >= sensors.thermistor_shorted_c)).sum(axis=1)
    contactor_fault = ((flags & CONTACTOR_FLAG) != 0) | (inputs.contactor_state == int(ContactorState.FAULT)) \
        | contactor_overdue
    rows = (  # in `Quantity` order
        max_volts, min_volts, max_temps, min_temps, current, -current, inputs.data_age_s, inputs.temperature_age_s,
        readings.implausible, flags & ~(INSULATION_FLAG | CONTACTOR_FLAG),
        inputs.pack_voltage_v, max_volts - min_volts, max_temps - min_temps, _max(trends.temperature_rise_c_per_min),
        np.fmax(peak, -current), thermistors, (trends.frozen_voltages * parameters.cell_mask).sum(axis=1),
        (flags & INSULATION_FLAG) != 0, contactor_fault, _max(np.where(parameters.cell_mask, model_residual_v,
                                                                        np.nan)) * 1e3,
        _max(predictive.resistance_excess), _max(predictive.heating_excess_c), _max(predictive.standing_leak_c_rate),
        predictive.current_reversal_ratio, protection_bits, warning_bits,
    )
    per_cell = {Quantity.CELL_RESISTANCE_EXCESS: predictive.resistance_excess,
                Quantity.SENSOR_HEATING_EXCESS_C: predictive.heating_excess_c,
                Quantity.CELL_LEAK_C_RATE: predictive.standing_leak_c_rate}
    return Quantities(np.array(rows, dtype=np.float64), volts, temps, MappingProxyType(per_cell))
