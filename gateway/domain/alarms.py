"""Alarm codes and severities.

Each code has a fixed bit position, published in the Modbus bitfields, the OPC UA alarm words and
the Prometheus `alarm` label: never renumber, only append.
"""

from __future__ import annotations

from enum import IntEnum


class Severity(IntEnum):
    NONE = 0
    WARNING = 1
    ALARM = 2
    TRIP = 3


class AlarmCode(IntEnum):
    CELL_OVERVOLTAGE = 0
    CELL_UNDERVOLTAGE = 1
    CELL_OVERTEMPERATURE = 2
    CELL_UNDERTEMPERATURE = 3
    CHARGE_OVERCURRENT = 4
    DISCHARGE_OVERCURRENT = 5
    COMMUNICATION_LOSS = 6
    SENSOR_FAULT = 7
    PACK_REPORTED_FAULT = 8
    PACK_OVERVOLTAGE = 9
    PACK_UNDERVOLTAGE = 10
    SHORT_CIRCUIT = 11
    CHARGE_OVERTEMPERATURE = 12
    CHARGE_UNDERTEMPERATURE = 13
    LOW_TEMPERATURE_CHARGING = 14
    CELL_VOLTAGE_SPREAD = 15
    TEMPERATURE_SPREAD = 16
    TEMPERATURE_RISE_RATE = 17
    INSULATION_FAULT = 18
    CONTACTOR_FAULT = 19
    ESTIMATOR_INCONSISTENCY = 20
    RESISTANCE_RISE = 21
    LOCAL_HEATING = 22
    SOC_DRIFT = 23
    CURRENT_INSTABILITY = 24
    PACK_PROTECTION = 25

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def bit(self) -> int:
        return 1 << int(self)


ALARM_DESCRIPTIONS: dict[AlarmCode, str] = {
    AlarmCode.CELL_OVERVOLTAGE: "highest cell voltage above the cell model's limit",
    AlarmCode.CELL_UNDERVOLTAGE: "lowest cell voltage below the cell model's limit",
    AlarmCode.CELL_OVERTEMPERATURE: "highest temperature above the cell's (discharge) operating window",
    AlarmCode.CELL_UNDERTEMPERATURE: "lowest temperature below the cell's (discharge) operating window",
    AlarmCode.CHARGE_OVERCURRENT: "charge current above the cell's continuous / pulse rating",
    AlarmCode.DISCHARGE_OVERCURRENT: "discharge current above the cell's continuous / pulse rating",
    AlarmCode.COMMUNICATION_LOSS: "a required signal is older than the stale timeout",
    AlarmCode.SENSOR_FAULT: "an implausible, out-of-range (open or shorted thermistor) or frozen reading",
    AlarmCode.PACK_REPORTED_FAULT: "the pack's own BMS reports a fault flag (other than insulation or contactor)",
    AlarmCode.PACK_OVERVOLTAGE: "pack voltage above the series cells' maximum charge voltage",
    AlarmCode.PACK_UNDERVOLTAGE: "pack voltage below the series cells' minimum discharge voltage",
    AlarmCode.SHORT_CIRCUIT: "a discharge current far beyond the pulse rating (fast path: acted on when the frame "
                             "arrives)",
    AlarmCode.CHARGE_OVERTEMPERATURE: "highest temperature above the cell's charge window: no charging",
    AlarmCode.CHARGE_UNDERTEMPERATURE: "lowest temperature below the cell's charge window: no charging",
    AlarmCode.LOW_TEMPERATURE_CHARGING: "charge current flowing while the pack is below the charge window",
    AlarmCode.CELL_VOLTAGE_SPREAD: "highest minus lowest cell voltage too large",
    AlarmCode.TEMPERATURE_SPREAD: "highest minus lowest temperature too large",
    AlarmCode.TEMPERATURE_RISE_RATE: "a temperature rising too fast",
    AlarmCode.INSULATION_FAULT: "the pack reports an insulation fault",
    AlarmCode.CONTACTOR_FAULT: "the pack reports a contactor fault, or the contactor stays closed after an open "
                               "request",
    AlarmCode.ESTIMATOR_INCONSISTENCY: "the cell model no longer explains the measured cell voltages",
    AlarmCode.RESISTANCE_RISE: "predictive: a cell's resistance rises relative to its peers",
    AlarmCode.LOCAL_HEATING: "predictive: a cell heats relative to its neighbours",
    AlarmCode.SOC_DRIFT: "predictive: a cell's SoC drifts from its peers (self-discharge, soft short)",
    AlarmCode.CURRENT_INSTABILITY: "predictive: the pack current behaves unstably",
    AlarmCode.PACK_PROTECTION: "the pack's own BMS sets a protection (alarm) or warning bit of the common battery "
                               "CAN protocol",
}
