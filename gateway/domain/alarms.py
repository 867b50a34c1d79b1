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

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def bit(self) -> int:
        return 1 << int(self)


ALARM_DESCRIPTIONS: dict[AlarmCode, str] = {
    AlarmCode.CELL_OVERVOLTAGE: "highest cell voltage above the cell model's limit",
    AlarmCode.CELL_UNDERVOLTAGE: "lowest cell voltage below the cell model's limit",
    AlarmCode.CELL_OVERTEMPERATURE: "highest temperature above the cell model's window",
    AlarmCode.CELL_UNDERTEMPERATURE: "lowest temperature below the cell model's window",
    AlarmCode.CHARGE_OVERCURRENT: "charge current above the cell's continuous / pulse rating",
    AlarmCode.DISCHARGE_OVERCURRENT: "discharge current above the cell's continuous / pulse rating",
    AlarmCode.COMMUNICATION_LOSS: "a required signal is older than the stale timeout",
    AlarmCode.SENSOR_FAULT: "a reading outside the physically plausible range",
    AlarmCode.PACK_REPORTED_FAULT: "the pack's own BMS reports a fault flag",
}
