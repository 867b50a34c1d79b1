"""One BMS step for all packs: protection -> estimation -> limits, as a pure function of arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.estimator import CellEstimates, EstimatorState, estimates, estimator_step
from gateway.bms.inputs import BmsInputs, BoolArray, FloatArray
from gateway.bms.limits import CurrentLimits, current_limits
from gateway.bms.pack_figures import PackFigures, pack_figures
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.protection import ProtectionState, communicating, highest_severity, protection_step
from gateway.bms.protection_rules import ProtectionRules
from gateway.bms.quantities import Quantities, Quantity, compute_quantities
from gateway.bms.usage import UsageState, usage_step
from gateway.domain.alarms import Severity
from gateway.domain.states import ContactorState

UNKNOWN_TEMPERATURE_C = 25.0  # the estimator's model temperature for a pack with no temperature reading
# plain numbers: numpy compares an array with an IntEnum member several times slower
_ALARM = float(Severity.ALARM)
_CLOSED = int(ContactorState.CLOSED)


@dataclass(frozen=True)
class BmsState:
    protection: ProtectionState
    estimator: EstimatorState
    usage: UsageState

    @classmethod
    def empty(cls, parameters: PackParameters, rules: ProtectionRules) -> BmsState:
        return cls(ProtectionState.empty(parameters.pack_count, len(rules)),
                   EstimatorState.empty(parameters.cell_mask.shape, parameters.estimator.arrays.tables.pairs,
                                        parameters.estimator.arrays.nominal_capacity_ah),
                   UsageState.empty(parameters.pack_count))


@dataclass(frozen=True)
class BmsOutputs:
    fresh: BoolArray
    quantities: Quantities
    cells: CellEstimates
    pack: PackFigures
    limits: CurrentLimits
    severity: FloatArray  # highest active severity per pack

    @property
    def soc(self) -> FloatArray:
        return self.pack.soc

    @property
    def soh(self) -> FloatArray:
        return self.pack.soh_capacity

    @property
    def capacity_ah(self) -> FloatArray:
        return self.pack.capacity_ah


def bms_step(state: BmsState, inputs: BmsInputs, parameters: PackParameters, rules: ProtectionRules,
             dt_s: float) -> tuple[BmsState, BmsOutputs]:
    quantities = compute_quantities(inputs, parameters)
    protection = protection_step(state.protection, rules, quantities, dt_s)
    fresh = communicating(protection, rules) & np.isfinite(inputs.data_age_s) & np.isfinite(inputs.temperature_age_s)
    cell_temperature = parameters.cell_temperature_c(inputs.temperature_c, UNKNOWN_TEMPERATURE_C)
    measured = inputs.cell_voltage_new if inputs.cell_voltage_new is not None else parameters.cell_mask
    estimator = estimator_step(state.estimator, inputs.pack_current_a, inputs.cell_voltage_v, cell_temperature,
                               measured, fresh, dt_s, parameters.estimator, parameters.estimator_settings)
    cells = estimates(estimator, parameters.estimator)
    growth = 1.0 + cells.delta_r0_ohm / parameters.estimator.reference_pulse_resistance_ohm
    pack = pack_figures(cells.soc, cells.soc_sigma, cells.capacity_ah, growth, parameters.capacity_ah,
                        parameters.cell_mask, parameters.estimator_settings.end_of_life_resistance_growth)
    usage = usage_step(state.usage, inputs.pack_current_a, inputs.pack_voltage_v,
                       quantities[Quantity.MAX_TEMPERATURE_C], pack.soc, fresh, dt_s)
    severity = highest_severity(protection, rules)
    allowed = fresh & (severity < _ALARM) & (inputs.contactor_state == _CLOSED)
    limits = current_limits(parameters, quantities, allowed)
    outputs = BmsOutputs(fresh, quantities, cells, pack, limits, severity)
    return BmsState(protection, estimator, usage), outputs
