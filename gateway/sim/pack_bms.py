"""The simulated pack's own BMS, for protocols on which a pack reports its extremes, its own limits, enable flags,
estimates and alarm bits (the common battery CAN protocol, docs/battery-can.md): what a conservative pack BMS
would say about the physics of `PackModel`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

import numpy as np

from gateway.domain.measurement import ScalarField
from gateway.sim.pack_model import PackModel

RATING_SHARE = 0.5  # the pack allows half its cells' continuous ratings, as conservative pack BMSs do
CHARGE_VOLTAGE_MARGIN_V = 0.05  # its CVL, per cell below the cell's maximum charge voltage
DISCHARGE_VOLTAGE_MARGIN_V = 0.1  # its DVL, per cell above the cell's minimum discharge voltage
TAPER_SOC = 0.1  # CCL falls to 0 over the fullest cell's last 10 % of SoC, DCL over the emptiest cell's first 10 %
FULL_SOC = 0.999  # charging is disabled from here (the fullest cell), discharging below 1 - FULL_SOC
WARNING_VOLTAGE_MARGIN_V = 0.05  # a warning bit this close to a cell voltage limit
WARNING_TEMPERATURE_MARGIN_C = 5.0  # and this close to the operating temperature window


class AlarmBit(IntFlag):
    """Frame 0x359's Pylontech bits: bytes 0-1 protection, bytes 2-3 the same bits as warnings."""

    CELL_OVERVOLTAGE = 1 << 1
    CELL_UNDERVOLTAGE = 1 << 2
    OVERTEMPERATURE = 1 << 3
    UNDERTEMPERATURE = 1 << 4
    DISCHARGE_OVERCURRENT = 1 << 7
    CHARGE_OVERCURRENT = 1 << 8


@dataclass(frozen=True)
class PackReport:
    min_cell_voltage_v: float
    max_cell_voltage_v: float
    min_temperature_c: float
    max_temperature_c: float
    temperature_c: float  # the pack's temperature: the mean of its sensors
    charge_voltage_limit_v: float
    charge_current_limit_a: float
    discharge_current_limit_a: float
    discharge_voltage_limit_v: float
    charge_enabled: bool
    discharge_enabled: bool
    soc: float
    soh: float
    protection: AlarmBit
    warning: AlarmBit

    def values(self) -> dict[ScalarField, float]:
        """By measurement field; the protocol's scaling rounds them."""
        f = ScalarField
        return {
            f.MIN_CELL_VOLTAGE_V: self.min_cell_voltage_v, f.MAX_CELL_VOLTAGE_V: self.max_cell_voltage_v,
            f.MIN_TEMPERATURE_C: self.min_temperature_c, f.MAX_TEMPERATURE_C: self.max_temperature_c,
            f.PACK_TEMPERATURE_C: self.temperature_c,
            f.PACK_CHARGE_VOLTAGE_LIMIT_V: self.charge_voltage_limit_v,
            f.PACK_CHARGE_CURRENT_LIMIT_A: self.charge_current_limit_a,
            f.PACK_DISCHARGE_CURRENT_LIMIT_A: self.discharge_current_limit_a,
            f.PACK_DISCHARGE_VOLTAGE_LIMIT_V: self.discharge_voltage_limit_v,
            f.PACK_CHARGE_ENABLED: float(self.charge_enabled), f.PACK_DISCHARGE_ENABLED: float(self.discharge_enabled),
            f.PACK_REPORTED_SOC: self.soc, f.PACK_REPORTED_SOH: self.soh,
            f.PACK_PROTECTION_FLAGS: int(self.protection), f.PACK_WARNING_FLAGS: int(self.warning),
        }


def pack_report(model: PackModel) -> PackReport:
    limits = model.cell.limits
    capacity = model.cell.nominal_capacity_ah
    volts, temperatures = model.cell_voltage_v, model.sensor_temperature_c
    low_v, high_v = float(volts.min()), float(volts.max())
    low_c, high_c = float(temperatures.min()), float(temperatures.max())
    current = model.current_a
    window_low, window_high = limits.discharge_temperature_c
    protection = _bits(
        (AlarmBit.CELL_OVERVOLTAGE, high_v > limits.max_charge_voltage_v),
        (AlarmBit.CELL_UNDERVOLTAGE, low_v < limits.min_discharge_voltage_v),
        (AlarmBit.OVERTEMPERATURE, high_c > window_high), (AlarmBit.UNDERTEMPERATURE, low_c < window_low),
        (AlarmBit.DISCHARGE_OVERCURRENT, -current > limits.max_pulse_discharge_c_rate_10s * capacity),
        (AlarmBit.CHARGE_OVERCURRENT, current > limits.max_pulse_charge_c_rate_10s * capacity))
    warning = _bits(
        (AlarmBit.CELL_OVERVOLTAGE, high_v > limits.max_charge_voltage_v - WARNING_VOLTAGE_MARGIN_V),
        (AlarmBit.CELL_UNDERVOLTAGE, low_v < limits.min_discharge_voltage_v + WARNING_VOLTAGE_MARGIN_V),
        (AlarmBit.OVERTEMPERATURE, high_c > window_high - WARNING_TEMPERATURE_MARGIN_C),
        (AlarmBit.UNDERTEMPERATURE, low_c < window_low + WARNING_TEMPERATURE_MARGIN_C),
        (AlarmBit.DISCHARGE_OVERCURRENT, -current > limits.max_continuous_discharge_c_rate * capacity),
        (AlarmBit.CHARGE_OVERCURRENT, current > limits.max_continuous_charge_c_rate * capacity))
    fullest, emptiest = float(model.soc.max()), float(model.soc.min())
    charge_low, charge_high = limits.charge_temperature_c
    charge_enabled = not protection and fullest < FULL_SOC and charge_low <= low_c and high_c <= charge_high
    discharge_enabled = not protection and emptiest > 1.0 - FULL_SOC
    charge_a = RATING_SHARE * limits.max_continuous_charge_c_rate * capacity * _taper(1.0 - fullest)
    discharge_a = RATING_SHARE * limits.max_continuous_discharge_c_rate * capacity * _taper(emptiest)
    return PackReport(
        low_v, high_v, low_c, high_c, float(temperatures.mean()),
        charge_voltage_limit_v=model.series_cells * (limits.max_charge_voltage_v - CHARGE_VOLTAGE_MARGIN_V),
        charge_current_limit_a=charge_a if charge_enabled else 0.0,
        discharge_current_limit_a=discharge_a if discharge_enabled else 0.0,
        discharge_voltage_limit_v=model.series_cells * (limits.min_discharge_voltage_v + DISCHARGE_VOLTAGE_MARGIN_V),
        charge_enabled=charge_enabled, discharge_enabled=discharge_enabled,
        soc=float(model.soc.mean()),
        soh=float(np.clip(model.capacity_ah.min() / capacity, 0.0, 1.0)),
        protection=protection, warning=warning)


def _bits(*conditions: tuple[AlarmBit, bool]) -> AlarmBit:
    result = AlarmBit(0)
    for bit, present in conditions:
        if present:
            result |= bit
    return result


def _taper(soc_left: float) -> float:
    return min(max(soc_left / TAPER_SOC, 0.0), 1.0)
