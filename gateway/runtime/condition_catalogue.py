"""The protection rules as alarm conditions: what an output that models each rule of each pack as a condition of
its own (OPC UA Part 9) needs to know, in plain picklable values.

A condition is one rule of one pack. Its name is `<code>_<severity>` (`cell_overvoltage_trip`), followed by
`_<quantity>` where the table has several rules of one code and severity (`sensor_fault_alarm_frozen_readings`).
Rules on a reading with a threshold are limit alarms; rules on a flag or a count of faulty channels are
off-normal alarms (normal: none).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gateway.bms.protection_rules import ProtectionRules
from gateway.bms.quantities import Quantity
from gateway.domain.alarms import ALARM_DESCRIPTIONS, AlarmCode, Severity

FLAG_QUANTITIES = frozenset({Quantity.IMPLAUSIBLE_READINGS, Quantity.PACK_FAULT_FLAGS,
                             Quantity.OPEN_OR_SHORTED_THERMISTORS, Quantity.FROZEN_READINGS,
                             Quantity.INSULATION_FAULT, Quantity.CONTACTOR_FAULT, Quantity.PACK_PROTECTION_FLAGS,
                             Quantity.PACK_WARNING_FLAGS})


@dataclass(frozen=True, slots=True)
class ConditionSpec:
    rule: int  # index in the protection table
    name: str
    code: AlarmCode
    severity: Severity
    quantity: str
    direction: str  # "above" / "below"
    latching: bool
    off_normal: bool
    description: str


def condition_catalogue(rules: ProtectionRules) -> tuple[ConditionSpec, ...]:
    shared = Counter((rule.code, rule.severity) for rule in rules)
    specs = []
    for index, rule in enumerate(rules):
        name = f"{rule.code.label}_{rule.severity.name.lower()}"
        if shared[rule.code, rule.severity] > 1:
            name += f"_{rule.quantity.value}"
        specs.append(ConditionSpec(index, name, rule.code, rule.severity, rule.quantity.value, rule.direction,
                                   rule.latching, rule.quantity in FLAG_QUANTITIES, ALARM_DESCRIPTIONS[rule.code]))
    return tuple(specs)
