"""Debounced threshold evaluation of the rule table, for all packs at once.

A rule raises after its condition has held for `delay_s`; it clears when the quantity is back on
the safe side of its clear threshold (hysteresis). An unknown (NaN) quantity neither raises nor
clears: staleness has its own rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.protection_rules import ProtectionRule
from gateway.bms.quantities import Quantity
from gateway.domain.alarms import AlarmCode, Severity


@dataclass(frozen=True)
class ProtectionState:
    pending_s: FloatArray  # packs x rules: how long the condition has held
    active: BoolArray  # packs x rules

    @classmethod
    def empty(cls, packs: int, rules: int) -> ProtectionState:
        return cls(np.zeros((packs, rules)), np.zeros((packs, rules), dtype=bool))


def protection_step(state: ProtectionState, rules: tuple[ProtectionRule, ...],
                    quantities: dict[Quantity, FloatArray], dt_s: float) -> ProtectionState:
    values = np.stack([quantities[rule.quantity] for rule in rules], axis=1)
    threshold = np.stack([rule.threshold for rule in rules], axis=1)
    clear = np.stack([rule.clear_threshold for rule in rules], axis=1)
    delay = np.array([rule.delay_s for rule in rules])
    above = np.array([rule.direction == "above" for rule in rules])
    known = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        condition = known & np.where(above, values > threshold, values < threshold)
        cleared = known & np.where(above, values <= clear, values >= clear)
    pending = np.where(condition, state.pending_s + dt_s, 0.0)
    raised = condition & (pending >= delay - 1e-9)
    active = raised | (state.active & ~cleared)
    return ProtectionState(pending, active)


def active_alarms(state: ProtectionState, rules: tuple[ProtectionRule, ...],
                  pack: int) -> dict[AlarmCode, Severity]:
    """The highest active severity of each alarm code of one pack."""
    alarms: dict[AlarmCode, Severity] = {}
    for rule, is_active in zip(rules, state.active[pack], strict=True):
        if is_active and rule.severity > alarms.get(rule.code, Severity.NONE):
            alarms[rule.code] = rule.severity
    return alarms


def highest_severity(state: ProtectionState, rules: tuple[ProtectionRule, ...]) -> FloatArray:
    """Per pack, the highest active severity as a number (0 when nothing is active)."""
    severities = np.array([float(rule.severity) for rule in rules])
    highest: FloatArray = np.where(state.active, severities[None, :], 0.0).max(axis=1, initial=0.0)
    return highest
