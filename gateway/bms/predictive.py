"""Predictive warnings: per cell, what tends to come before a protection threshold trips (docs/predictive.md).

* resistance rise: a cell's R0 above the mean of its peers', from the voltage steps at current steps;
* local heating: a sensor warmer than the median of the pack's other sensors;
* SoC drift: a cell's SoC falling away from its peers while the pack rests (a leak);
* unstable current: large current steps reversing far more often than the pack's habit.

Every statistic is relative to the same pack (its other cells, its own history), so what all cells share
(model error, temperature, load) cancels. Unknown inputs (NaN, a stale pack, too few known peers) never raise a
warning. The slow statistics are evaluated every few seconds, not every tick, to keep the step cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.predictive_current import CurrentState, current_step
from gateway.bms.predictive_drift import DriftState, drift_sample, leak_z, rest_step
from gateway.bms.predictive_resistance import ResistanceState, relative_resistance_ohm, track_steps
from gateway.bms.predictive_settings import PredictiveSettings
from gateway.bms.predictive_stats import held_for, peer_median

_EPSILON_S = 1e-6


@dataclass(frozen=True)
class PredictiveInputs:
    pack_current_a: FloatArray  # packs, positive = charging
    cell_voltage_v: FloatArray  # packs x cells
    temperature_c: FloatArray  # packs x sensors
    cell_soc: FloatArray  # packs x cells, NaN unknown (CellEstimates.soc)
    cell_soc_sigma: FloatArray  # packs x cells (CellEstimates.soc_sigma)
    fresh: BoolArray  # packs
    cell_voltage_new: BoolArray | None = None  # packs x cells: received since the previous step (None: all)
    balancing: BoolArray | None = None  # packs x cells: bleeding now (their SoC drift is no leak)


@dataclass(frozen=True)
class PredictiveState:
    clock_s: float
    # when each slow statistic was last evaluated (-inf: never)
    last_heating_s: float
    last_resistance_s: float
    last_drift_s: float
    heating_excess_c: FloatArray  # packs x sensors, filtered; NaN unknown
    heating_held_s: FloatArray
    resistance: ResistanceState
    resistance_excess: FloatArray  # packs x cells, as last evaluated
    resistance_held_s: FloatArray
    drift: DriftState
    leak_c_rate: FloatArray  # packs x cells
    leak_z: FloatArray
    drift_held_s: FloatArray
    current: CurrentState

    @classmethod
    def empty(cls, cell_shape: tuple[int, int], sensors: int) -> PredictiveState:
        packs = cell_shape[0]
        unknown = np.full(cell_shape, np.nan)
        zeros = np.zeros(cell_shape)
        never = -math.inf
        return cls(0.0, never, never, never, np.full((packs, sensors), np.nan), np.zeros((packs, sensors)),
                   ResistanceState.empty(cell_shape), unknown, zeros, DriftState.empty(cell_shape), unknown, unknown,
                   zeros, CurrentState.empty(packs))


@dataclass(frozen=True)
class PredictiveWarnings:
    resistance_rise: BoolArray  # packs x cells
    local_heating: BoolArray  # packs x sensors
    soc_drift: BoolArray  # packs x cells
    unstable_current: BoolArray  # packs
    # the statistics, for publication; NaN where unknown
    resistance_excess: FloatArray  # packs x cells: (R0 - mean R0 of the other cells) / model pulse resistance
    heating_excess_c: FloatArray  # packs x sensors: sensor - median of the other sensors, filtered
    leak_c_rate: FloatArray  # packs x cells: estimated leak current in C
    leak_z: FloatArray  # packs x cells: how far the leak estimate stands out from the pack's, in robust sigmas
    current_reversals_per_min: FloatArray  # packs
    current_threshold_per_min: FloatArray  # packs: the reversal rate that warns
    standing_leak_c_rate: FloatArray  # packs x cells: the leak where it stands out (z >= min_z), else 0

    @classmethod
    def empty(cls, cell_shape: tuple[int, int], sensors: int) -> PredictiveWarnings:
        """Nothing known yet: no warning, every statistic NaN."""
        packs = cell_shape[0]
        unknown = np.full(cell_shape, np.nan)
        return cls(np.zeros(cell_shape, dtype=bool), np.zeros((packs, sensors), dtype=bool),
                   np.zeros(cell_shape, dtype=bool), np.zeros(packs, dtype=bool), unknown,
                   np.full((packs, sensors), np.nan), unknown, unknown, np.full(packs, np.nan),
                   np.full(packs, np.nan), unknown)

    @property
    def current_reversal_ratio(self) -> FloatArray:
        """Per pack: the reversal rate over the rate that warns (1: at the threshold)."""
        ratio: FloatArray = self.current_reversals_per_min / self.current_threshold_per_min
        return ratio



def _due(clock_s: float, last_s: float, period_s: float, phase_s: float) -> bool:
    """Whether a statistic evaluated every `period_s` on a grid starting at `phase_s` is due at `clock_s`."""
    if not math.isfinite(last_s):
        return clock_s >= phase_s - _EPSILON_S
    due = phase_s + period_s * (math.floor((last_s - phase_s) / period_s + _EPSILON_S) + 1)
    return clock_s >= due - _EPSILON_S


def _elapsed(clock_s: float, last_s: float, period_s: float) -> float:
    return clock_s - last_s if math.isfinite(last_s) else period_s


def _heating(state: PredictiveState, inputs: PredictiveInputs, parameters: PackParameters, clock_s: float,
             settings: PredictiveSettings) -> tuple[FloatArray, FloatArray, float]:
    """Filtered excess, hold timer and evaluation time (as last evaluated when not due)."""
    s = settings.heating
    if not _due(clock_s, state.last_heating_s, s.period_s, 0.0):
        return state.heating_excess_c, state.heating_held_s, state.last_heating_s
    elapsed = _elapsed(clock_s, state.last_heating_s, s.period_s)
    temperature = inputs.temperature_c
    known = parameters.sensor_mask & inputs.fresh[:, None] & np.isfinite(temperature)
    excess = temperature - peer_median(temperature, known, settings.min_peers)
    previous = state.heating_excess_c
    follow = 1.0 - math.exp(-elapsed / s.filter_time_constant_s)
    filtered = np.where(np.isnan(previous), excess, previous + (excess - previous) * follow)
    filtered = np.where(np.isnan(excess), np.nan, filtered)  # an unknown reading restarts the filter
    return filtered, held_for(state.heating_held_s, filtered, s.excess_c, s.clear_c, s.hold_s, elapsed), clock_s


def _resistance(state: PredictiveState, tracked: ResistanceState, inputs: PredictiveInputs,
                parameters: PackParameters, clock_s: float,
                settings: PredictiveSettings) -> tuple[FloatArray, FloatArray, float]:
    """Excess, hold timer and evaluation time (as last evaluated when not due)."""
    s = settings.resistance
    if not _due(clock_s, state.last_resistance_s, s.period_s, _resistance_phase_s(settings)):
        return state.resistance_excess, state.resistance_held_s, state.last_resistance_s
    elapsed = _elapsed(clock_s, state.last_resistance_s, s.period_s)
    relative = relative_resistance_ohm(tracked, parameters.capacity_ah, s)
    enough_peers = np.count_nonzero(parameters.cell_mask, axis=1) > settings.min_peers
    known = parameters.cell_mask & (inputs.fresh & enough_peers)[:, None]
    excess = np.where(known, relative / parameters.estimator.reference_pulse_resistance_ohm, np.nan)
    return excess, held_for(state.resistance_held_s, excess, s.excess, s.clear, s.hold_s, elapsed), clock_s


def _drift(state: PredictiveState, inputs: PredictiveInputs, parameters: PackParameters, clock_s: float,
           drift: DriftState, settings: PredictiveSettings) -> tuple[DriftState, FloatArray, FloatArray, FloatArray,
                                                                     float]:
    """Drift sums, leak estimate and its z, hold timer and sample time (as last sampled when not due)."""
    s = settings.drift
    phase = _resistance_phase_s(settings) + settings.resistance.period_s / 2 - settings.heating.period_s / 4
    if not _due(clock_s, state.last_drift_s, s.sample_period_s, phase):
        return drift, state.leak_c_rate, state.leak_z, state.drift_held_s, state.last_drift_s
    elapsed = _elapsed(clock_s, state.last_drift_s, s.sample_period_s)
    drift, leak = drift_sample(drift, inputs.cell_soc, inputs.cell_soc_sigma, parameters.cell_mask,
                               inputs.balancing, elapsed, s, settings.min_peers)
    z = leak_z(leak, s)
    standing_out = np.where(z >= s.min_z, leak, 0.0)
    held = held_for(state.drift_held_s, standing_out, s.leak_c_rate, s.clear_c_rate, s.hold_s, elapsed)
    return drift, leak, z, held, clock_s


def _resistance_phase_s(settings: PredictiveSettings) -> float:
    # The slow statistics run on grids offset from each other (heating on whole periods, resistance half a heating
    # period later, drift between two resistance evaluations), so that no tick evaluates two of them.
    return settings.heating.period_s / 2


def predictive_step(state: PredictiveState, inputs: PredictiveInputs, parameters: PackParameters, dt_s: float,
                    settings: PredictiveSettings) -> tuple[PredictiveState, PredictiveWarnings]:
    clock = state.clock_s + dt_s
    fresh = inputs.fresh
    fresh_cells = fresh[:, None]
    current = current_step(state.current, inputs.pack_current_a, parameters.capacity_ah, fresh, clock, dt_s,
                           settings.current)
    drift = rest_step(state.drift, inputs.pack_current_a, parameters.capacity_ah, fresh, dt_s, settings.drift)
    heating, heating_held, last_heating = _heating(state, inputs, parameters, clock, settings)
    tracked = track_steps(state.resistance, inputs.pack_current_a, inputs.cell_voltage_v, inputs.cell_voltage_new,
                          fresh, parameters.capacity_ah, clock, dt_s, settings.resistance)
    excess, resistance_held, last_resistance = _resistance(state, tracked, inputs, parameters, clock, settings)
    drift, leak, z, drift_held, last_drift = _drift(state, inputs, parameters, clock, drift, settings)
    new = PredictiveState(clock, last_heating, last_resistance, last_drift, heating, heating_held, tracked, excess,
                          resistance_held, drift, leak, z, drift_held, current)
    if not fresh.all():  # a stale pack's statistics are unknown, not the last ones computed
        excess, heating, leak, z = (np.where(fresh_cells, value, np.nan) for value in (excess, heating, leak, z))
    warnings = PredictiveWarnings(
        resistance_rise=(resistance_held >= settings.resistance.hold_s) & fresh_cells,
        local_heating=(heating_held >= settings.heating.hold_s) & fresh_cells,
        soc_drift=(drift_held >= settings.drift.hold_s) & fresh_cells,
        unstable_current=(current.held_s >= settings.current.hold_s) & fresh,
        resistance_excess=excess,
        heating_excess_c=heating,
        leak_c_rate=leak,
        leak_z=z,
        current_reversals_per_min=np.where(fresh, current.reversals_per_min, np.nan),
        current_threshold_per_min=current.threshold_per_min(settings.current),
        standing_leak_c_rate=np.where(z >= settings.drift.min_z, leak, np.where(np.isnan(leak), np.nan, 0.0)),
    )
    return new, warnings

