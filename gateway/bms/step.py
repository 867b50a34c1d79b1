"""One BMS step for all packs: protection -> estimation -> limits, as a pure function of arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BmsInputs, BoolArray, FloatArray
from gateway.bms.limits import CurrentLimits, current_limits
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.protection import ProtectionState, highest_severity, protection_step
from gateway.bms.protection_rules import ProtectionRule
from gateway.bms.quantities import Quantity, compute_quantities
from gateway.bms.soc_coulomb import CoulombState, coulomb_step, pack_soc
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.states import ContactorState


@dataclass(frozen=True)
class BmsState:
    protection: ProtectionState
    charge: CoulombState


@dataclass(frozen=True)
class BmsOutputs:
    fresh: BoolArray
    quantities: dict[Quantity, FloatArray]
    soc: FloatArray
    soh: FloatArray
    capacity_ah: FloatArray
    limits: CurrentLimits
    severity: FloatArray  # highest active severity per pack


def bms_step(state: BmsState, inputs: BmsInputs, parameters: PackParameters,
             rules: tuple[ProtectionRule, ...], dt_s: float) -> tuple[BmsState, BmsOutputs]:
    quantities = compute_quantities(inputs, parameters)
    protection = protection_step(state.protection, rules, quantities, dt_s)
    stale_column = [i for i, rule in enumerate(rules) if rule.code is AlarmCode.COMMUNICATION_LOSS]
    fresh = (~protection.active[:, stale_column].any(axis=1) & np.isfinite(inputs.data_age_s)
             & np.isfinite(inputs.temperature_age_s))
    charge = coulomb_step(state.charge, inputs, parameters, fresh, dt_s)
    severity = highest_severity(protection, rules)
    allowed = fresh & (severity < Severity.ALARM) & (inputs.contactor_state == ContactorState.CLOSED)
    limits = current_limits(parameters, quantities, allowed)
    soc = pack_soc(charge.cell_soc, parameters.cell_mask)
    capacity = parameters.capacity_ah.copy()
    outputs = BmsOutputs(fresh, quantities, soc, capacity / parameters.capacity_ah, capacity, limits, severity)
    return BmsState(protection, charge), outputs
