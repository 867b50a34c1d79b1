"""The state estimator of every cell: SoC (EKF), capacity (WTLS) and R0 growth (RLS), and pack figures."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from gateway.bms.capacity_wtls import CapacitySettings, CapacityState, capacity_estimate, capacity_step
from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.resistance_rls import ResistanceSettings, ResistanceState, delta_r0, resistance_step
from gateway.bms.soc_ekf import (
    CellArrays,
    EkfSettings,
    EkfState,
    ekf_step,
    initialise,
    reported_soc_sigma,
    soc_from_voltage,
)


@dataclass(frozen=True)
class EstimatorSettings:
    ekf: EkfSettings = field(default_factory=EkfSettings)
    capacity: CapacitySettings = field(default_factory=CapacitySettings)
    resistance: ResistanceSettings = field(default_factory=ResistanceSettings)
    end_of_life_resistance_growth: float = 2.0  # resistance SoH is 0 at this multiple of the new value


@dataclass(frozen=True)
class EstimatorState:
    ekf: EkfState
    capacity: CapacityState
    resistance: ResistanceState
    clock_s: float
    # Derived from the three above at the end of each step (not persisted): what the next step uses.
    soc_sigma: FloatArray
    capacity_ah: FloatArray
    capacity_sigma_ah: FloatArray
    delta_r0_ohm: FloatArray
    voltage_residual_v: FloatArray | None = None  # this step's measured - modelled voltage (NaN: no correction)

    @classmethod
    def empty(cls, shape: tuple[int, int], pairs: int, nominal_capacity_ah: FloatArray) -> EstimatorState:
        return cls(EkfState.empty(shape, pairs), CapacityState.empty(nominal_capacity_ah), ResistanceState.empty(shape),
                   0.0, np.zeros(shape), nominal_capacity_ah.copy(), np.zeros(shape), np.zeros(shape))


@dataclass(frozen=True)
class CellEstimates:
    """Per cell (packs x cells); NaN where not initialised."""

    soc: FloatArray
    soc_sigma: FloatArray
    capacity_ah: FloatArray
    capacity_sigma_ah: FloatArray
    delta_r0_ohm: FloatArray
    bias_a: FloatArray


@dataclass(frozen=True)
class EstimatorCells:
    """Constants of the estimator: the filter's per-cell arrays plus the reference resistances."""

    arrays: CellArrays
    reference_pulse_resistance_ohm: FloatArray  # 10 s, 50 % SoC, 25 degC, from the model
    cell_mask: BoolArray


def start_cells(state: EstimatorState, which: BoolArray, soc: FloatArray, soc_sigma: FloatArray,
                cells: EstimatorCells, settings: EstimatorSettings) -> EstimatorState:
    """Start the cells in `which` at a known SoC (restored or given), keeping capacity and R0 history."""
    ekf = initialise(state.ekf, which, soc, soc_sigma, cells.arrays, settings.ekf)
    return replace(state, ekf=ekf)


def _with_estimates(ekf: EkfState, capacity: CapacityState, resistance: ResistanceState, clock_s: float,
                    soc_sigma: FloatArray, cells: EstimatorCells, settings: EstimatorSettings) -> EstimatorState:
    """The state with its derived fields computed from the learned ones."""
    a = cells.arrays
    capacity_ah, capacity_sigma = capacity_estimate(capacity, ekf.soc, soc_sigma**2, ekf.bias_a,
                                                    a.nominal_capacity_ah, settings.capacity)
    growth = delta_r0(resistance, a.nominal_capacity_ah, a.reference_r0_ohm, settings.resistance)
    return EstimatorState(ekf, capacity, resistance, clock_s, soc_sigma, capacity_ah, capacity_sigma, growth)


def with_derived(state: EstimatorState, cells: EstimatorCells, settings: EstimatorSettings) -> EstimatorState:
    """Recompute the derived fields from the learned ones (after a restore or a change of prior)."""
    return _with_estimates(state.ekf, state.capacity, state.resistance, state.clock_s,
                           reported_soc_sigma(state.ekf, settings.ekf), cells, settings)


def start_capacity(state: EstimatorState, which: BoolArray, capacity_ah: FloatArray, cells: EstimatorCells,
                   settings: EstimatorSettings) -> EstimatorState:
    """Make a measured capacity (e.g. from a capacity test) the prior of the cells in `which`; forget pairs."""
    old = state.capacity
    zero = np.where(which, 0.0, 1.0)
    capacity = replace(old, sum_wxx=old.sum_wxx * zero, sum_wxy=old.sum_wxy * zero,
                       prior_ah=np.where(which, capacity_ah, old.prior_ah))
    return with_derived(replace(state, capacity=capacity), cells, settings)


def estimates(state: EstimatorState, cells: EstimatorCells) -> CellEstimates:
    known = state.ekf.initialised & cells.cell_mask
    return CellEstimates(
        soc=np.where(known, state.ekf.soc, np.nan),
        soc_sigma=np.where(known, state.soc_sigma, np.nan),
        capacity_ah=np.where(cells.cell_mask, state.capacity_ah, np.nan),
        capacity_sigma_ah=np.where(cells.cell_mask, state.capacity_sigma_ah, np.nan),
        delta_r0_ohm=np.where(cells.cell_mask, state.delta_r0_ohm, np.nan),
        bias_a=np.where(known, state.ekf.bias_a, np.nan),
    )


def estimator_step(state: EstimatorState, current_a: FloatArray, cell_voltage_v: FloatArray,
                   cell_temperature_c: FloatArray, voltage_measured: BoolArray, running: BoolArray, dt_s: float,
                   cells: EstimatorCells, settings: EstimatorSettings) -> EstimatorState:
    """One step for all cells. `current_a` is per pack; `running` per pack (fresh data, not stale)."""
    a = cells.arrays
    cell_current = np.broadcast_to(current_a[:, None], cell_voltage_v.shape)
    running_cells = running[:, None] & cells.cell_mask
    ekf = state.ekf
    starting = running_cells & ~ekf.initialised & np.isfinite(cell_voltage_v) & np.isfinite(cell_current)
    if starting.any():
        soc, sigma = soc_from_voltage(cell_voltage_v, cell_current, cell_temperature_c, a, settings.ekf)
        ekf = initialise(ekf, starting, soc, sigma, a, settings.ekf)
    new_ekf, prediction = ekf_step(ekf, cell_current, cell_voltage_v, cell_temperature_c, voltage_measured,
                                   running_cells & ~starting, dt_s, state.capacity_ah, state.delta_r0_ohm, a,
                                   settings.ekf)
    clock = state.clock_s + dt_s
    known = running_cells & new_ekf.initialised & ~starting
    counted = known & np.isfinite(cell_current) & (dt_s <= settings.ekf.max_gap_s)
    sigma = reported_soc_sigma(new_ekf, settings.ekf)
    capacity_state = capacity_step(state.capacity, new_ekf.soc, sigma**2, cell_current, new_ekf.bias_a, dt_s,
                                   counted, known & ~counted, state.capacity_ah, settings.capacity)
    resistance_state = resistance_step(state.resistance, clock, cell_voltage_v - prediction.voltage_without_growth_v,
                                       cell_current + ekf.bias_a, prediction.corrected, a.nominal_capacity_ah,
                                       settings.resistance)
    result = _with_estimates(new_ekf, capacity_state, resistance_state, clock, sigma, cells, settings)
    return replace(result, voltage_residual_v=prediction.residual_v)
