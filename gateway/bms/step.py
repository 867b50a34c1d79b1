"""One BMS step for all packs, as a pure function of arrays: quantities -> protection -> actions -> estimation ->
balancing and predictive statistics (the next step's quantities) -> limits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.balancing import Balancing, BalancingInputs, BalancingState, balancing_step
from gateway.bms.balancing_settings import DEFAULT_BALANCING, BalancingSettings
from gateway.bms.cell_conditions import CellConditions
from gateway.bms.estimator import CellEstimates, EstimatorState, estimates, estimator_step
from gateway.bms.inputs import BmsInputs, BoolArray, FloatArray
from gateway.bms.limits import CurrentLimits, LimitsInputs, LimitsState, limits_step
from gateway.bms.limits_settings import DEFAULT_LIMITS, LimitsSettings
from gateway.bms.pack_figures import PackFigures, pack_figures
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.predictive import PredictiveInputs, PredictiveState, PredictiveWarnings, predictive_step
from gateway.bms.predictive_settings import DEFAULT_PREDICTIVE, PredictiveSettings
from gateway.bms.protection import (
    OperatorRequests,
    ProtectionState,
    code_masks,
    communicating,
    highest_severity,
    protection_step,
)
from gateway.bms.protection_actions import Actions, ActionState, ThermalThresholds, actions_step, contactor_overdue
from gateway.bms.protection_rules import ProtectionRules
from gateway.bms.quantities import Quantities, Quantity, SensorLimits, compute_quantities, screen
from gateway.bms.signal_trends import TrendSettings, TrendState, residual_step, trends_step
from gateway.bms.usage import UsageState, usage_step
from gateway.domain.alarms import Severity
from gateway.domain.states import ContactorState

UNKNOWN_TEMPERATURE_C = 25.0  # the estimator's model temperature for a pack with no temperature reading
# plain numbers: numpy compares an array with an IntEnum member several times slower
_CLOSED = int(ContactorState.CLOSED)


@dataclass(frozen=True)
class SafetySettings:
    """The protection table's sensor and contactor settings, resolved once, and the limit pipeline's settings."""

    trends: TrendSettings
    sensors: SensorLimits
    thermal: ThermalThresholds
    contactor_open_timeout_s: float
    limits: LimitsSettings = DEFAULT_LIMITS
    predictive: PredictiveSettings = DEFAULT_PREDICTIVE
    balancing: BalancingSettings = DEFAULT_BALANCING

    @classmethod
    def of(cls, rules: ProtectionRules, limits: LimitsSettings = DEFAULT_LIMITS,
           balancing: BalancingSettings = DEFAULT_BALANCING) -> SafetySettings:
        spec = rules.spec
        if spec is None:
            return cls(TrendSettings(), SensorLimits(), ThermalThresholds.resolve(rules), 2.0, limits,
                       balancing=balancing)
        s = spec.sensors
        return cls(TrendSettings(s.temperature_rise_fast_s, s.temperature_rise_slow_s, s.frozen_current_span_c_rate,
                                 s.model_residual_time_constant_s),
                   SensorLimits(s.thermistor_open_c, s.thermistor_shorted_c), ThermalThresholds.resolve(rules),
                   spec.contactor_open_timeout_s, limits, balancing=balancing)


@dataclass(frozen=True)
class BmsState:
    protection: ProtectionState
    estimator: EstimatorState
    usage: UsageState
    trends: TrendState
    actions: ActionState
    limits: LimitsState
    predictive: PredictiveState
    predictive_warnings: PredictiveWarnings  # the previous step's: the predictive rules' quantities
    balancing: BalancingState

    @classmethod
    def empty(cls, parameters: PackParameters, rules: ProtectionRules) -> BmsState:
        return cls(ProtectionState.empty(parameters.pack_count, len(rules)),
                   EstimatorState.empty(parameters.cell_mask.shape, parameters.estimator.arrays.tables.pairs,
                                        parameters.estimator.arrays.nominal_capacity_ah),
                   UsageState.empty(parameters.pack_count),
                   TrendState.empty(parameters.cell_mask.shape, parameters.sensor_mask.shape),
                   ActionState.empty(parameters.pack_count),
                   LimitsState.empty(parameters.pack_count),
                   PredictiveState.empty(parameters.cell_mask.shape, parameters.sensor_mask.shape[1]),
                   PredictiveWarnings.empty(parameters.cell_mask.shape, parameters.sensor_mask.shape[1]),
                   BalancingState.empty(parameters.cell_mask.shape))


@dataclass(frozen=True)
class BmsOutputs:
    fresh: BoolArray
    quantities: Quantities
    cells: CellEstimates
    pack: PackFigures
    limits: CurrentLimits
    severity: FloatArray  # highest present severity per pack
    actions: Actions
    latched_mask: FloatArray  # per pack: bitfield of the codes with a latched trip
    unacknowledged_mask: FloatArray  # per pack: bitfield of the codes with an unacknowledged present rule
    balancing: Balancing

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
             dt_s: float, requests: OperatorRequests | None = None,
             safety: SafetySettings | None = None, admitted: BoolArray | None = None) -> tuple[BmsState, BmsOutputs]:
    """`admitted`: per pack, passed admission (None: every pack); a pack not admitted gets zero limits and no
    balancing."""
    safety = safety or SafetySettings.of(rules)
    admission = np.ones(parameters.pack_count, dtype=bool) if admitted is None else admitted
    readings = screen(inputs, parameters)
    trends, trend_values = trends_step(state.trends, readings.temperature_c, readings.cell_voltage_v,
                                       inputs.pack_current_a, parameters.capacity_ah, dt_s, safety.trends)
    # a pack that switches its contactor itself is never asked to open it: no request can be overdue
    overdue = contactor_overdue(state.actions, inputs.contactor_state, safety.contactor_open_timeout_s) \
        & parameters.contactor_reported
    quantities = compute_quantities(inputs, parameters, readings, trend_values, trends.residual_v, overdue,
                                    state.predictive_warnings, safety.sensors)
    protection = protection_step(state.protection, rules, quantities, dt_s, requests)
    action_state, actions = actions_step(state.actions, protection, rules, safety.thermal, quantities, dt_s)
    fresh = communicating(protection, rules) & np.isfinite(inputs.data_age_s) & np.isfinite(inputs.temperature_age_s)
    cell_temperature = parameters.cell_temperature_c(inputs.temperature_c, UNKNOWN_TEMPERATURE_C)
    # Cells made up from a pack's extremes are no physical cells: nothing bleeds on them, and the predictive
    # statistics, which compare a cell with its peers, have no peers to compare.
    measured_by_extremes = parameters.cells_from_extremes
    measured = inputs.cell_voltage_new if inputs.cell_voltage_new is not None else parameters.cell_mask
    estimator = estimator_step(state.estimator, inputs.pack_current_a, inputs.cell_voltage_v, cell_temperature,
                               measured, fresh, dt_s, parameters.estimator, parameters.estimator_settings)
    if estimator.voltage_residual_v is not None:
        trends = residual_step(trends, estimator.voltage_residual_v, dt_s, safety.trends)
    cells = estimates(estimator, parameters.estimator)
    severity = highest_severity(protection, rules)
    latched_mask, unacknowledged_mask = code_masks(protection, rules)
    balancing_state, balancing = balancing_step(state.balancing, BalancingInputs(
        cells.soc, cells.soc_sigma, cells.capacity_ah, parameters.cell_mask, inputs.pack_current_a,
        quantities[Quantity.MIN_TEMPERATURE_C], quantities[Quantity.MAX_TEMPERATURE_C], fresh,
        allowed=(severity < int(Severity.ALARM)) & (latched_mask == 0) & admission & ~measured_by_extremes), dt_s,
        safety.balancing)
    predictive, warnings = predictive_step(state.predictive, PredictiveInputs(
        inputs.pack_current_a, inputs.cell_voltage_v, inputs.temperature_c, cells.soc, cells.soc_sigma,
        fresh & ~measured_by_extremes, inputs.cell_voltage_new, balancing.mask), parameters, dt_s, safety.predictive)
    growth = 1.0 + cells.delta_r0_ohm / parameters.estimator.reference_pulse_resistance_ohm
    pack = pack_figures(cells.soc, cells.soc_sigma, cells.capacity_ah, growth, parameters.capacity_ah,
                        parameters.cell_mask, parameters.estimator_settings.end_of_life_resistance_growth)
    usage = usage_step(state.usage, inputs.pack_current_a, inputs.pack_voltage_v,
                       quantities[Quantity.MAX_TEMPERATURE_C], pack.soc, fresh, dt_s)
    allowed = fresh & (inputs.contactor_state == _CLOSED) & admission
    limits_state, limits = limits_step(state.limits, LimitsInputs(
        max_cell_voltage_v=quantities[Quantity.MAX_CELL_VOLTAGE_V],
        min_cell_voltage_v=quantities[Quantity.MIN_CELL_VOLTAGE_V],
        min_temperature_c=quantities[Quantity.MIN_TEMPERATURE_C],
        max_temperature_c=quantities[Quantity.MAX_TEMPERATURE_C],
        max_cell_soc=pack.max_cell_soc, min_cell_soc=pack.min_cell_soc,
        cells=CellConditions.from_estimator(estimator, cells.soc, cell_temperature),
        allowed=allowed, action_factor=actions.limit_factor, reports=inputs.reports), parameters, dt_s,
        safety.limits)
    outputs = BmsOutputs(fresh, quantities, cells, pack, limits, severity, actions, latched_mask,
                         unacknowledged_mask, balancing)
    return BmsState(protection, estimator, usage, trends, action_state, limits_state, predictive, warnings,
                    balancing_state), outputs
