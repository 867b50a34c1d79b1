"""The common battery CAN protocol (0x351/0x355/0x356/0x359/0x35A/0x35C/0x35E/0x373): the site as one battery.

The layout is the DBC `mappings/can/battery-can-v1.dbc` (docs/battery-can.md); which of the gateway's alarm codes
raise which condition is `mappings/inverter/<name>.yaml`. Both are loaded and checked once at start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import cantools
from cantools.database.errors import UnsupportedDatabaseFormatError
from pydantic import BaseModel, ConfigDict

from gateway.codec.yaml_source import load_validated_mapping
from gateway.domain.alarms import AlarmCode, Severity
from gateway.errors import MappingError, Problem


class BatteryCondition(StrEnum):
    """The conditions of frame 0x35A, in frame order (two bits each, alarm half then warning half)."""

    HIGH_VOLTAGE = "high_voltage"
    LOW_VOLTAGE = "low_voltage"
    HIGH_TEMPERATURE = "high_temperature"
    LOW_TEMPERATURE = "low_temperature"
    HIGH_TEMPERATURE_CHARGE = "high_temperature_charge"
    LOW_TEMPERATURE_CHARGE = "low_temperature_charge"
    HIGH_DISCHARGE_CURRENT = "high_discharge_current"
    HIGH_CHARGE_CURRENT = "high_charge_current"
    CONTACTOR = "contactor"
    SHORT_CIRCUIT = "short_circuit"
    BMS_INTERNAL = "bms_internal"
    CELL_IMBALANCE = "cell_imbalance"

    @property
    def signal_stem(self) -> str:
        return "".join(part.capitalize() for part in self.value.split("_"))


CONDITION_ACTIVE = 0b01
CONDITION_INACTIVE = 0b10

# Frame 0x359 (Pylontech): the protection bit and the warning bit each condition sets.
_PROTECTION_BITS: dict[BatteryCondition, tuple[str, str]] = {
    BatteryCondition.HIGH_VOLTAGE: ("ProtectCellOvervoltage", "WarnHighVoltage"),
    BatteryCondition.LOW_VOLTAGE: ("ProtectCellUndervoltage", "WarnLowVoltage"),
    BatteryCondition.HIGH_TEMPERATURE: ("ProtectOvertemperature", "WarnHighTemperature"),
    BatteryCondition.HIGH_TEMPERATURE_CHARGE: ("ProtectOvertemperature", "WarnHighTemperature"),
    BatteryCondition.LOW_TEMPERATURE: ("ProtectUndertemperature", "WarnLowTemperature"),
    BatteryCondition.LOW_TEMPERATURE_CHARGE: ("ProtectUndertemperature", "WarnLowTemperature"),
    BatteryCondition.HIGH_DISCHARGE_CURRENT: ("ProtectDischargeOvercurrent", "WarnDischargeHighCurrent"),
    BatteryCondition.SHORT_CIRCUIT: ("ProtectDischargeOvercurrent", "WarnDischargeHighCurrent"),
    BatteryCondition.HIGH_CHARGE_CURRENT: ("ProtectChargeOvercurrent", "WarnChargeHighCurrent"),
    BatteryCondition.CONTACTOR: ("ProtectSystemError", "WarnInternalCommunication"),
    BatteryCondition.BMS_INTERNAL: ("ProtectSystemError", "WarnInternalCommunication"),
    BatteryCondition.CELL_IMBALANCE: ("ProtectSystemError", "WarnInternalCommunication"),
}
_MARKER_P, _MARKER_N = ord("P"), ord("N")
FRAME_ORDER = ("BatteryLimits", "BatteryState", "BatteryMeasurements", "ProtectionAlarms", "AlarmsWarnings",
               "ChargeRequest", "Manufacturer", "CellExtremes")
KEEPALIVE_MESSAGE = "InverterKeepAlive"


@dataclass(frozen=True)
class BatteryFigures:
    """What the inverter is told; NaN where unknown (sent as 0, see `encode`)."""

    charge_voltage_limit_v: float
    charge_current_limit_a: float
    discharge_current_limit_a: float
    discharge_voltage_limit_v: float
    soc: float
    soh: float
    voltage_v: float
    current_a: float
    temperature_c: float
    cell_voltage_min_v: float
    cell_voltage_max_v: float
    temperature_min_c: float
    temperature_max_c: float
    charge_enable: bool
    discharge_enable: bool
    module_count: int
    alarms: frozenset[BatteryCondition] = field(default_factory=frozenset)
    warnings: frozenset[BatteryCondition] = field(default_factory=frozenset)
    general_alarm: bool = False  # also set when no condition names the cause (lost data)


@dataclass(frozen=True, slots=True)
class StandardFrame:
    arbitration_id: int
    data: bytes


class _OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dbc: str
    conditions: dict[BatteryCondition, list[str]]


class BatteryCanLayout:
    """The DBC's messages and the alarm-code table of one output mapping."""

    def __init__(self, database: Any, condition_of: dict[AlarmCode, BatteryCondition], manufacturer: str) -> None:
        self._messages = {name: database.get_message_by_name(name) for name in FRAME_ORDER}
        self.keepalive_id: int = database.get_message_by_name(KEEPALIVE_MESSAGE).frame_id
        self.condition_of = condition_of
        self._manufacturer = int.from_bytes(manufacturer.encode("ascii").ljust(8, b" ")[:8], "little")

    def conditions(self, masks: dict[Severity, int]) -> tuple[frozenset[BatteryCondition], frozenset[BatteryCondition]]:
        """(alarm, warning) conditions of a site's alarm masks by severity."""
        alarms: set[BatteryCondition] = set()
        warnings: set[BatteryCondition] = set()
        for code, condition in self.condition_of.items():
            if (masks.get(Severity.ALARM, 0) | masks.get(Severity.TRIP, 0)) & code.bit:
                alarms.add(condition)
            elif masks.get(Severity.WARNING, 0) & code.bit:
                warnings.add(condition)
        return frozenset(alarms), frozenset(warnings)

    def encode(self, figures: BatteryFigures) -> list[StandardFrame]:
        """Every frame of the protocol, in FRAME_ORDER; out-of-range values are clamped to the signal's range."""
        f = figures
        soc_percent = f.soc * 100.0
        values: dict[str, dict[str, float]] = {
            "BatteryLimits": {"ChargeVoltageLimit": f.charge_voltage_limit_v,
                              "ChargeCurrentLimit": f.charge_current_limit_a,
                              "DischargeCurrentLimit": f.discharge_current_limit_a,
                              "DischargeVoltageLimit": f.discharge_voltage_limit_v},
            "BatteryState": {"StateOfCharge": _round_or_nan(soc_percent), "StateOfHealth": _round_or_nan(f.soh * 100),
                             "StateOfChargeHighRes": soc_percent},
            "BatteryMeasurements": {"BatteryVoltage": f.voltage_v, "BatteryCurrent": f.current_a,
                                    "BatteryTemperature": f.temperature_c},
            "ProtectionAlarms": self._protection_bits(f),
            "AlarmsWarnings": self._condition_fields(f),
            "ChargeRequest": {"ChargeEnable": int(f.charge_enable), "DischargeEnable": int(f.discharge_enable),
                              "ForceChargeRequest1": 0, "ForceChargeRequest2": 0, "FullChargeRequest": 0},
            "Manufacturer": {"ManufacturerName": self._manufacturer},
            "CellExtremes": {"MinCellVoltage": f.cell_voltage_min_v, "MaxCellVoltage": f.cell_voltage_max_v,
                             "MinCellTemperature": f.temperature_min_c, "MaxCellTemperature": f.temperature_max_c},
        }
        return [StandardFrame(self._messages[name].frame_id, self._encode(name, values[name])) for name in FRAME_ORDER]

    def _encode(self, name: str, values: dict[str, float]) -> bytes:
        message = self._messages[name]
        clamped: dict[str, float] = {}
        for signal in message.signals:
            value = values[signal.name]
            if isinstance(value, float) and math.isnan(value):
                value = max(0.0, signal.minimum)
            clamped[signal.name] = min(max(value, signal.minimum), signal.maximum)
        return bytes(message.encode(clamped, scaling=True, strict=False))

    def _protection_bits(self, f: BatteryFigures) -> dict[str, float]:
        bits: dict[str, float] = {s.name: 0 for s in self._messages["ProtectionAlarms"].signals}
        for condition in f.alarms:
            bits[_PROTECTION_BITS[condition][0]] = 1
        for condition in f.warnings:
            bits[_PROTECTION_BITS[condition][1]] = 1
        if f.general_alarm:
            bits["ProtectSystemError"] = 1
        bits.update(ModuleCount=min(f.module_count, 255), MarkerP=_MARKER_P, MarkerN=_MARKER_N)
        return bits

    def _condition_fields(self, f: BatteryFigures) -> dict[str, float]:
        fields: dict[str, float] = {}
        for condition in BatteryCondition:
            fields[f"{condition.signal_stem}Alarm"] = _state(condition in f.alarms)
            fields[f"{condition.signal_stem}Warning"] = _state(condition in f.warnings)
        fields["GeneralAlarm"] = _state(f.general_alarm or bool(f.alarms))
        fields["GeneralWarning"] = _state(bool(f.warnings))
        return fields


def _state(active: bool) -> int:
    return CONDITION_ACTIVE if active else CONDITION_INACTIVE


def _round_or_nan(value: float) -> float:
    return value if math.isnan(value) else float(round(value))


def load_battery_can(mappings_dir: Path, name: str, manufacturer: str) -> BatteryCanLayout:
    """Load `mappings/inverter/<name>.yaml` and its DBC; MappingError naming file, key and fix."""
    path = mappings_dir / "inverter" / f"{name}.yaml"
    spec = load_validated_mapping(path, _OutputSpec)
    dbc_path = path.parent / spec.dbc
    try:
        database: Any = cantools.database.load_file(str(dbc_path))
    except (OSError, UnsupportedDatabaseFormatError) as error:
        raise MappingError([Problem(str(path), "dbc", f"{dbc_path} cannot be loaded ({error})",
                                    "name the battery-can DBC relative to this file")]) from error
    problems: list[Problem] = []
    names = {message.name: message for message in database.messages}
    for message in (*FRAME_ORDER, KEEPALIVE_MESSAGE):
        if message not in names:
            problems.append(Problem(str(dbc_path), message, "message missing", "use the battery-can-v1 layout"))
    condition_of: dict[AlarmCode, BatteryCondition] = {}
    for condition, labels in spec.conditions.items():
        for label in labels:
            try:
                code = AlarmCode[label.upper()]
            except KeyError:
                problems.append(Problem(str(path), f"conditions.{condition.value}", f"unknown alarm code {label!r}",
                                        f"use one of {', '.join(c.label for c in AlarmCode)}"))
                continue
            if code in condition_of:
                problems.append(Problem(str(path), f"conditions.{condition.value}",
                                        f"{label} is also listed under {condition_of[code].value}",
                                        "list every alarm code under exactly one condition"))
            condition_of[code] = condition
    missing = [code.label for code in AlarmCode if code not in condition_of]
    if missing:
        problems.append(Problem(str(path), "conditions", f"alarm codes not listed: {missing}",
                                "list every alarm code under the condition an inverter should see"))
    if problems:
        raise MappingError(problems)
    return BatteryCanLayout(database, condition_of, manufacturer)
