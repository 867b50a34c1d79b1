"""The measurement model: every field a pack protocol can bind a CAN signal to."""

from __future__ import annotations

from enum import StrEnum


class ScalarField(StrEnum):
    PACK_VOLTAGE_V = "pack_voltage_v"
    PACK_CURRENT_A = "pack_current_a"
    CONTACTOR_STATE = "contactor_state"
    BALANCING_ACTIVE = "balancing_active"
    PACK_FAULT_FLAGS = "pack_fault_flags"
    # what a pack that reports only extremes says (the common battery CAN protocol, docs/battery-can.md)
    MIN_CELL_VOLTAGE_V = "min_cell_voltage_v"
    MAX_CELL_VOLTAGE_V = "max_cell_voltage_v"
    MIN_TEMPERATURE_C = "min_temperature_c"
    MAX_TEMPERATURE_C = "max_temperature_c"
    PACK_TEMPERATURE_C = "pack_temperature_c"
    # the pack's own BMS: its limits, enable flags, estimates and alarm bits
    PACK_CHARGE_VOLTAGE_LIMIT_V = "pack_charge_voltage_limit_v"
    PACK_CHARGE_CURRENT_LIMIT_A = "pack_charge_current_limit_a"
    PACK_DISCHARGE_CURRENT_LIMIT_A = "pack_discharge_current_limit_a"
    PACK_DISCHARGE_VOLTAGE_LIMIT_V = "pack_discharge_voltage_limit_v"
    PACK_CHARGE_ENABLED = "pack_charge_enabled"
    PACK_DISCHARGE_ENABLED = "pack_discharge_enabled"
    PACK_REPORTED_SOC = "pack_reported_soc"
    PACK_REPORTED_SOH = "pack_reported_soh"
    PACK_PROTECTION_FLAGS = "pack_protection_flags"
    PACK_WARNING_FLAGS = "pack_warning_flags"


class ArrayField(StrEnum):
    CELL_VOLTAGE_V = "cell_voltage_v"
    TEMPERATURE_C = "temperature_c"


class IdentityField(StrEnum):
    SERIAL_NUMBER = "serial_number"
    CHEMISTRY = "chemistry"
    FIRMWARE_MAJOR = "firmware_major"
    FIRMWARE_MINOR = "firmware_minor"
    FIRMWARE_PATCH = "firmware_patch"
    CELL_COUNT = "cell_count"
    SENSOR_COUNT = "sensor_count"
    NOMINAL_CAPACITY_AH = "nominal_capacity_ah"


class CommandField(StrEnum):
    BALANCING_ENABLE = "balancing_enable"
    BALANCING_MASK = "balancing_mask"
    OPEN_REQUEST = "open_request"


class CommandKind(StrEnum):
    IDENTITY_REQUEST = "identity_request"
    BALANCING = "balancing"
    CONTACTOR_OPEN = "contactor_open"


BoundField = ScalarField | ArrayField | IdentityField | CommandField


def parse_bound_field(name: str) -> BoundField:
    """The field called `name`, or ValueError listing the valid names."""
    for kind in (ScalarField, ArrayField, IdentityField, CommandField):
        try:
            return kind(name)
        except ValueError:
            continue
    valid = sorted(f.value for kind in (ScalarField, ArrayField, IdentityField, CommandField) for f in kind)
    raise ValueError(f"unknown field {name!r}; valid fields: {', '.join(valid)}")
