"""What the present rules ask for: factors on the current limits, a contactor-open request, and the thermal
management's cooling and heating demand (with hysteresis).

The contactor-open request stands while any present rule asks for it; a contactor that still reports closed
`contactor_open_timeout_s` after the request is overdue, which the contactor-fault rule reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray, IntArray
from gateway.bms.protection import ProtectionState
from gateway.bms.protection_rules import ProtectionRules
from gateway.bms.quantities import Quantities, Quantity
from gateway.bms.threshold_expression import ThresholdExpression
from gateway.domain.states import ContactorState


@dataclass(frozen=True)
class ThermalThresholds:
    """Per pack: on and off temperatures of the cooling and heating demand."""

    cooling_on_c: FloatArray
    cooling_off_c: FloatArray
    heating_on_c: FloatArray
    heating_off_c: FloatArray

    @classmethod
    def resolve(cls, rules: ProtectionRules) -> ThermalThresholds:
        if rules.spec is None:
            nan = np.full(rules.pack_count, np.nan)
            return cls(nan, nan, nan, nan)
        thermal = rules.spec.thermal
        packs = rules.pack_count

        def per_pack(expression: ThresholdExpression) -> FloatArray:
            return expression.resolve(rules.references, packs)
        return cls(per_pack(thermal.cooling_on), per_pack(thermal.cooling_off), per_pack(thermal.heating_on),
                   per_pack(thermal.heating_off))


@dataclass(frozen=True)
class ActionState:
    cooling: BoolArray  # packs
    heating: BoolArray
    open_requested_s: FloatArray  # packs: how long the contactor-open request has stood (0: none)

    @classmethod
    def empty(cls, packs: int) -> ActionState:
        return cls(np.zeros(packs, dtype=bool), np.zeros(packs, dtype=bool), np.zeros(packs))


@dataclass(frozen=True)
class Actions:
    limit_factor: FloatArray  # packs x 2: (charge, discharge) in 0..1
    open_contactor: BoolArray  # packs
    cooling: BoolArray
    heating: BoolArray


def contactor_overdue(state: ActionState, contactor_state: IntArray, timeout_s: float) -> BoolArray:
    """Per pack: an open request older than `timeout_s` and the contactor still reports closed."""
    result: BoolArray = (state.open_requested_s >= timeout_s) & (contactor_state == int(ContactorState.CLOSED))
    return result


def actions_step(state: ActionState, protection: ProtectionState, rules: ProtectionRules,
                 thermal: ThermalThresholds, quantities: Quantities, dt_s: float) -> tuple[ActionState, Actions]:
    present = protection.present
    packs = present.shape[1]
    if present.any():
        factors = np.where(present[:, :, None], rules.action_factors[:, None, :], 1.0)  # rules x packs x 2
        limit_factor = factors.min(axis=0, initial=1.0)
        open_contactor = np.logical_or.reduce(present & rules.opens_contactor[:, None], axis=0)
    else:  # the usual tick: nothing present, nothing to act on
        limit_factor, open_contactor = np.ones((packs, 2)), np.zeros(packs, dtype=bool)
    hottest, coldest = quantities[Quantity.MAX_TEMPERATURE_C], quantities[Quantity.MIN_TEMPERATURE_C]
    cooling = np.where(state.cooling, ~(hottest <= thermal.cooling_off_c), hottest >= thermal.cooling_on_c)
    heating = np.where(state.heating, ~(coldest >= thermal.heating_off_c), coldest <= thermal.heating_on_c)
    open_requested = np.where(open_contactor, state.open_requested_s + dt_s, 0.0)
    return (ActionState(cooling, heating, open_requested),
            Actions(limit_factor, open_contactor, cooling, heating))
