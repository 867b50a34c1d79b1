"""Resistance rise: each cell's series resistance relative to the other cells of its pack, from current steps.

At a step of the pack current between two consecutive samples, every cell's voltage steps by its own R0 times
the current step, plus what all cells share (polarisation, OCV). The step of a cell minus the mean step of the
other cells, regressed on the current step (least squares, old steps fading with `time_constant_s`), is the
cell's R0 minus the others' mean: no cell model is involved, so model error cannot mimic a rise, and the short
memory follows a contact that loosens within hours (the estimator's R0 growth forgets over two hours and is
pulled towards zero while excitation is scarce).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.predictive_settings import ResistanceRiseSettings


@dataclass(frozen=True)
class ResistanceState:
    last_voltage_v: FloatArray  # packs x cells; NaN: not measured at the previous sample
    last_current_a: FloatArray  # packs
    sum_ii: FloatArray  # packs x cells: current steps squared (A^2), faded
    sum_iv: FloatArray  # packs x cells: current step x relative voltage step (A V), faded
    faded_s: FloatArray  # packs: clock at which the sums were last faded

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> ResistanceState:
        zeros = np.zeros(shape)
        return cls(np.full(shape, np.nan), np.full(shape[0], np.nan), zeros, zeros, np.zeros(shape[0]))


def track_steps(state: ResistanceState, current_a: FloatArray, voltage_v: FloatArray, voltage_new: BoolArray | None,
                fresh: BoolArray, capacity_ah: FloatArray, clock_s: float, dt_s: float,
                settings: ResistanceRiseSettings) -> ResistanceState:
    """Every tick: fold in the current steps of this tick (only the packs that stepped are computed)."""
    if voltage_new is None and fresh.all():
        voltage, current = voltage_v, current_a
    else:
        measured_now = fresh[:, None] if voltage_new is None else fresh[:, None] & voltage_new
        voltage, current = np.where(measured_now, voltage_v, np.nan), np.where(fresh, current_a, np.nan)
    step_a = current - state.last_current_a
    stepped = np.flatnonzero(np.abs(step_a) >= settings.min_step_c_rate * capacity_ah)  # NaN compares False
    if dt_s > settings.max_step_interval_s or stepped.size == 0:
        return ResistanceState(voltage, current, state.sum_ii, state.sum_iv, state.faded_s)
    step_v = voltage[stepped] - state.last_voltage_v[stepped]
    measured = np.isfinite(step_v)
    step_v = np.where(measured, step_v, 0.0)
    others = np.maximum(np.count_nonzero(measured, axis=1) - 1, 1)[:, None]
    relative_v = step_v - (step_v.sum(axis=1, keepdims=True) - step_v) / others
    x = np.where(measured, step_a[stepped, None], 0.0)
    fade = np.exp((state.faded_s[stepped] - clock_s) / settings.time_constant_s)[:, None]
    sum_ii, sum_iv, faded_s = state.sum_ii.copy(), state.sum_iv.copy(), state.faded_s.copy()
    sum_ii[stepped] = fade * sum_ii[stepped] + x * x
    sum_iv[stepped] = fade * sum_iv[stepped] + x * relative_v
    faded_s[stepped] = clock_s
    return ResistanceState(voltage, current, sum_ii, sum_iv, faded_s)


def relative_resistance_ohm(state: ResistanceState, capacity_ah: FloatArray,
                            settings: ResistanceRiseSettings) -> FloatArray:
    """Each cell's R0 minus the mean R0 of the other cells; NaN until the steps carry enough information.

    While the pack sees no steps (charging, parked) the last estimate stands: the sums fade only when new steps
    arrive, by the time since the previous ones."""
    enough = state.sum_ii >= settings.min_excitation_c2 * (capacity_ah * capacity_ah)[:, None]
    result: FloatArray = np.where(enough, state.sum_iv / np.where(enough, state.sum_ii, 1.0), np.nan)
    return result
