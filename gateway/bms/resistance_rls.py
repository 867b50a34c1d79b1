"""Online R0 growth: recursive least squares of voltage-residual steps against current steps.

Between two consecutive voltage samples the slow parts of the model error (OCV, SoC, diffusion)
barely change, so the change of the residual (measured - modelled voltage without growth) over a
current step is dR0 times the current step. Only steps larger than `min_step_c_rate` count;
old steps fade with `time_constant_s` so the estimate follows ageing and temperature history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.arrays import nan_to
from gateway.bms.inputs import BoolArray, FloatArray


@dataclass(frozen=True)
class ResistanceSettings:
    min_step_c_rate: float = 0.1
    max_step_interval_s: float = 2.5
    time_constant_s: float = 7200.0
    prior_steps: float = 20.0  # weight of the prior dR0 = 0, in 1C-steps
    max_growth_fraction: float = 3.0  # clamp dR0 to [-0.5, 3] x the model R0


@dataclass(frozen=True)
class ResistanceState:
    """Arrays are packs x cells."""

    sum_xx: FloatArray  # of current steps (A^2)
    sum_xy: FloatArray  # current step x residual step (A V)
    last_residual_v: FloatArray  # NaN: no previous sample
    last_current_a: FloatArray
    last_time_s: FloatArray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> ResistanceState:
        zeros = np.zeros(shape)
        return cls(zeros, zeros, np.full(shape, np.nan), zeros, np.full(shape, -np.inf))


def delta_r0(state: ResistanceState, nominal_ah: FloatArray, reference_r0_ohm: FloatArray,
             settings: ResistanceSettings) -> FloatArray:
    prior = settings.prior_steps * nominal_ah**2
    result: FloatArray = np.clip(state.sum_xy / (state.sum_xx + prior), -0.5 * reference_r0_ohm,
                                 settings.max_growth_fraction * reference_r0_ohm)
    return result


def resistance_step(state: ResistanceState, now_s: float, residual_v: FloatArray, current_a: FloatArray,
                    measured: BoolArray, nominal_ah: FloatArray, settings: ResistanceSettings) -> ResistanceState:
    """Fold in the residual of every cell measured now; `residual_v` excludes dR0 (model R0 only)."""
    step_i = current_a - state.last_current_a
    step_v = residual_v - state.last_residual_v
    usable = (measured & np.isfinite(step_v) & np.isfinite(step_i)
              & (now_s - state.last_time_s <= settings.max_step_interval_s)
              & (np.abs(step_i) >= settings.min_step_c_rate * nominal_ah))
    elapsed = np.where(measured, now_s - np.where(np.isfinite(state.last_time_s), state.last_time_s, now_s), 0.0)
    fade = np.exp(-elapsed / settings.time_constant_s)
    x = np.where(usable, step_i, 0.0)
    y = np.where(usable, nan_to(step_v, 0.0), 0.0)
    keep = ~measured
    return ResistanceState(
        sum_xx=fade * state.sum_xx + x * x,
        sum_xy=fade * state.sum_xy + x * y,
        last_residual_v=np.where(keep, state.last_residual_v, residual_v),
        last_current_a=np.where(keep, state.last_current_a, current_a),
        last_time_s=np.where(keep, state.last_time_s, now_s),
    )
