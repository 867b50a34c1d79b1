"""The gateway's alarms as SunSpec battery events (Evt1 of models 802, 803 strings and 804).

Each alarm code maps to an (alarm, warning) pair of Evt1 symbols: a warning sets the warning bit, an alarm or a
trip the alarm bit. Codes SunSpec has no event for go to OTHER_ALARM / OTHER_WARNING; the vendor event words carry
every code exactly (bit n = alarm code n, as on the native map). Bit positions are read from the model's symbols.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.domain.alarms import AlarmCode, Severity

_OTHER = ("OTHER_ALARM", "OTHER_WARNING")
_TEMPERATURE_HIGH = ("OVER_TEMP_ALARM", "OVER_TEMP_WARNING")
_TEMPERATURE_LOW = ("UNDER_TEMP_ALARM", "UNDER_TEMP_WARNING")
_VOLTAGE_HIGH = ("OVER_VOLT_ALARM", "OVER_VOLT_WARNING")
_VOLTAGE_LOW = ("UNDER_VOLT_ALARM", "UNDER_VOLT_WARNING")
_TEMPERATURE_IMBALANCE = ("TEMPERATURE_IMBALANCE_ALARM", "TEMPERATURE_IMBALANCE_WARNING")

EVENT_SYMBOLS: dict[AlarmCode, tuple[str, str]] = {
    AlarmCode.CELL_OVERVOLTAGE: _VOLTAGE_HIGH,
    AlarmCode.PACK_OVERVOLTAGE: _VOLTAGE_HIGH,
    AlarmCode.CELL_UNDERVOLTAGE: _VOLTAGE_LOW,
    AlarmCode.PACK_UNDERVOLTAGE: _VOLTAGE_LOW,
    AlarmCode.CELL_OVERTEMPERATURE: _TEMPERATURE_HIGH,
    AlarmCode.CHARGE_OVERTEMPERATURE: _TEMPERATURE_HIGH,
    AlarmCode.CELL_UNDERTEMPERATURE: _TEMPERATURE_LOW,
    AlarmCode.CHARGE_UNDERTEMPERATURE: _TEMPERATURE_LOW,
    AlarmCode.LOW_TEMPERATURE_CHARGING: _TEMPERATURE_LOW,
    AlarmCode.CHARGE_OVERCURRENT: ("OVER_CHARGE_CURRENT_ALARM", "OVER_CHARGE_CURRENT_WARNING"),
    AlarmCode.DISCHARGE_OVERCURRENT: ("OVER_DISCHARGE_CURRENT_ALARM", "OVER_DISCHARGE_CURRENT_WARNING"),
    AlarmCode.SHORT_CIRCUIT: ("OVER_DISCHARGE_CURRENT_ALARM", "OVER_DISCHARGE_CURRENT_WARNING"),
    AlarmCode.CELL_VOLTAGE_SPREAD: ("VOLTAGE_IMBALANCE_WARNING", "VOLTAGE_IMBALANCE_WARNING"),
    AlarmCode.TEMPERATURE_SPREAD: _TEMPERATURE_IMBALANCE,
    AlarmCode.LOCAL_HEATING: _TEMPERATURE_IMBALANCE,
    AlarmCode.COMMUNICATION_LOSS: ("COMMUNICATION_ERROR", "COMMUNICATION_ERROR"),
    AlarmCode.CONTACTOR_FAULT: ("CONTACTOR_ERROR", "CONTACTOR_ERROR"),
    AlarmCode.INSULATION_FAULT: ("GROUND_FAULT", "GROUND_FAULT"),
}


def event_bits(alarms: Mapping[AlarmCode, Severity], symbols: Mapping[str, int]) -> int:
    """The Evt1 word for these present alarms, with `symbols` the Evt1 point's symbol -> bit table."""
    word = 0
    for code, severity in alarms.items():
        if severity == Severity.NONE:
            continue
        alarm, warning = EVENT_SYMBOLS.get(code, _OTHER)
        word |= 1 << symbols[alarm if severity >= Severity.ALARM else warning]
    return word


def vendor_bits(alarms: Mapping[AlarmCode, Severity]) -> int:
    """Every present alarm, bit n = alarm code n."""
    word = 0
    for code, severity in alarms.items():
        if severity != Severity.NONE:
            word |= code.bit
    return word
