"""Debounced threshold evaluation of the rule table, for all packs at once.

A rule raises after its condition has held for `delay_s`; it clears when the quantity is back on
the safe side of its clear threshold (hysteresis). An unknown (NaN) quantity neither raises nor
clears: staleness has its own rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.protection_rules import ProtectionRule, ProtectionRules
from gateway.bms.quantities import Quantities
from gateway.domain.alarms import AlarmCode, Severity


@dataclass(frozen=True)
class ProtectionState:
    pending_s: FloatArray  # rules x packs: how long the condition has held
    active: BoolArray  # rules x packs

    @classmethod
    def empty(cls, packs: int, rules: int) -> ProtectionState:
        return cls(np.zeros((rules, packs)), np.zeros((rules, packs), dtype=bool))


def protection_step(state: ProtectionState, rules: ProtectionRules, quantities: Quantities,
                    dt_s: float) -> ProtectionState:
    values = quantities.values[rules.quantity_rows] * rules.sign
    known = np.isfinite(values)
    condition = known & (values > rules.threshold)
    cleared = known & (values <= rules.clear_threshold)
    pending = np.where(condition, state.pending_s + dt_s, 0.0)
    active = (condition & (pending >= rules.delay_s)) | (state.active & ~cleared)
    return ProtectionState(pending, active)


def communicating(state: ProtectionState, rules: ProtectionRules) -> BoolArray:
    """Per pack: no communication-loss rule is active."""
    stale: BoolArray = np.logical_or.reduce(state.active[rules.stale_rows], axis=0)
    return ~stale


def active_alarms(state: ProtectionState, rules: tuple[ProtectionRule, ...], pack: int) -> dict[AlarmCode, Severity]:
    """The highest active severity of each alarm code of one pack."""
    alarms: dict[AlarmCode, Severity] = {}
    for rule, is_active in zip(rules, state.active[:, pack].tolist(), strict=True):
        if is_active and rule.severity > alarms.get(rule.code, Severity.NONE):
            alarms[rule.code] = rule.severity
    return alarms


def highest_severity(state: ProtectionState, rules: ProtectionRules) -> FloatArray:
    """Per pack, the highest active severity as a number (0 when nothing is active)."""
    highest: FloatArray = (state.active * rules.severity).max(axis=0, initial=0.0)
    return highest
