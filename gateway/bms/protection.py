"""Debounced, latching evaluation of the rule table, for all packs at once.

A rule raises after its condition (and its guard, if any) has held for `delay_s`; it clears when the quantity is
back on the safe side of its clear threshold (hysteresis) or its guard no longer holds. An unknown (NaN) quantity
neither raises nor clears: staleness has its own rule.

A trip also latches: it stays present after its condition clears, until an authorised reset, which is refused
while the condition is still active. Every present rule is unacknowledged when it raises and until an operator
acknowledges it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray, IntArray
from gateway.bms.protection_rules import ProtectionRule, ProtectionRules
from gateway.bms.quantities import Quantities
from gateway.domain.alarms import AlarmCode, Severity


@dataclass(frozen=True)
class ProtectionState:
    pending_s: FloatArray  # rules x packs: how long the condition has held
    active: BoolArray  # rules x packs: raised and not cleared
    latched: BoolArray  # rules x packs: a trip that raised and has not been reset
    acknowledged: BoolArray  # rules x packs
    clear_s: FloatArray  # rules x packs: how long the quantity has been known and on the safe side

    @classmethod
    def empty(cls, packs: int, rules: int) -> ProtectionState:
        def no() -> BoolArray:
            return np.zeros((rules, packs), dtype=bool)
        return cls(np.zeros((rules, packs)), no(), no(), no(), np.zeros((rules, packs)))

    @property
    def present(self) -> BoolArray:
        """rules x packs: active, or latched and waiting for a reset."""
        result: BoolArray = self.active | self.latched
        return result


@dataclass(frozen=True)
class OperatorRequests:
    """What operators asked for since the previous step."""

    acknowledge: BoolArray  # rules x packs: a whole pack (a column), or single rules (an OPC UA condition)
    reset: BoolArray  # packs


def protection_step(state: ProtectionState, rules: ProtectionRules, quantities: Quantities, dt_s: float,
                    requests: OperatorRequests | None = None) -> ProtectionState:
    values = quantities.values[rules.quantity_rows] * rules.sign
    known = np.isfinite(values)
    condition = known & (values > rules.threshold)
    cleared = known & (values <= rules.clear_threshold)
    if len(rules.guard_rows):
        guard_values = quantities.values[rules.guard_quantity_rows] * rules.guard_sign
        holds = np.isfinite(guard_values) & (guard_values > rules.guard_threshold)
        condition[rules.guard_rows] &= holds
        cleared[rules.guard_rows] |= ~holds
    pending = np.where(condition, state.pending_s + dt_s, 0.0)
    raised = condition & (pending >= rules.delay_s)
    active = raised | (state.active & ~cleared)
    latched = state.latched | (active & rules.latching)
    newly = active & ~state.present
    acknowledged = state.acknowledged & ~newly
    clear_s = np.where(cleared & ~condition, state.clear_s + dt_s, 0.0)
    if requests is not None:
        # A reset needs the condition seen cleared for a while: after a restart a latch is back at once, but the
        # quantity is unknown (or a trend still settling) until data has arrived and been evaluated.
        resettable = ~active & (clear_s >= rules.reset_after_s)
        latched &= ~(requests.reset[None, :] & resettable)
        acknowledged |= requests.acknowledge & (active | latched)
    acknowledged &= active | latched
    return ProtectionState(pending, active, latched, acknowledged, clear_s)


def communicating(state: ProtectionState, rules: ProtectionRules) -> BoolArray:
    """Per pack: no communication-loss rule is active."""
    stale: BoolArray = np.logical_or.reduce(state.active[rules.stale_rows], axis=0)
    return ~stale


def active_alarms(state: ProtectionState, rules: tuple[ProtectionRule, ...], pack: int) -> dict[AlarmCode, Severity]:
    """The highest present severity of each alarm code of one pack (latched trips included)."""
    alarms: dict[AlarmCode, Severity] = {}
    for rule, is_present in zip(rules, state.present[:, pack].tolist(), strict=True):
        if is_present and rule.severity > alarms.get(rule.code, Severity.NONE):
            alarms[rule.code] = rule.severity
    return alarms


def _codes_where(selected: BoolArray, rules: ProtectionRules) -> IntArray:
    """Per pack, the bitfield (bit = alarm code) of the rules selected (rules x packs)."""
    result: IntArray = np.bitwise_or.reduce(selected * rules.code_bits, axis=0, initial=0)
    return result


def code_masks(state: ProtectionState, rules: ProtectionRules) -> tuple[FloatArray, FloatArray]:
    """Per pack: bitfields of the latched trips and of the unacknowledged present rules."""
    latched = _codes_where(state.latched, rules)
    unacknowledged = _codes_where(state.present & ~state.acknowledged, rules)
    return latched.astype(np.float64), unacknowledged.astype(np.float64)


def severity_masks(state: ProtectionState, rules: ProtectionRules) -> FloatArray:
    """packs x 3: bitfields of the present warning, alarm and trip rules."""
    present = state.present
    masks = [_codes_where(present & (rules.severity == float(level)), rules)
             for level in (Severity.WARNING, Severity.ALARM, Severity.TRIP)]
    return np.stack(masks, axis=1).astype(np.float64)


def highest_severity(state: ProtectionState, rules: ProtectionRules) -> FloatArray:
    """Per pack, the highest present severity as a number (0 when nothing is present)."""
    highest: FloatArray = (state.present * rules.severity).max(axis=0, initial=0.0)
    return highest
