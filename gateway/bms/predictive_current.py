"""Unstable current: large current steps that keep reversing (oscillation, chattering contact, a noisy sensor).

A step is a change of the pack current between two samples of at least `step_c_rate`; a reversal is a step
opposite to the previous one, no more than `reversal_gap_s` after it. Counting reversals, not step sizes,
makes the statistic independent of the sample rate and blind to the single large steps of normal driving.
Their rate (per minute, exponentially averaged) is compared with the pack's own long-run rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.predictive_settings import UnstableCurrentSettings
from gateway.bms.predictive_stats import held_for


@dataclass(frozen=True)
class CurrentState:
    """Arrays are per pack."""

    last_c_rate: FloatArray  # NaN: no previous sample
    last_step_sign: FloatArray  # -1, 0 (none yet) or +1
    last_step_s: FloatArray  # clock of the last step
    reversals_per_min: FloatArray
    baseline_per_min: FloatArray
    held_s: FloatArray

    @classmethod
    def empty(cls, packs: int) -> CurrentState:
        zeros = np.zeros(packs)
        return cls(np.full(packs, np.nan), zeros, np.full(packs, -np.inf), zeros, zeros, zeros)

    def threshold_per_min(self, settings: UnstableCurrentSettings) -> FloatArray:
        result: FloatArray = np.maximum(settings.ratio * self.baseline_per_min, settings.floor_per_min)
        return result


def current_step(state: CurrentState, current_a: FloatArray, capacity_ah: FloatArray, fresh: BoolArray,
                 clock_s: float, dt_s: float, settings: UnstableCurrentSettings) -> CurrentState:
    c_rate = np.where(fresh, current_a / capacity_ah, np.nan)
    step = c_rate - state.last_c_rate  # NaN after an unknown sample: no step
    sign = np.sign(step)
    stepped = np.abs(step) >= settings.step_c_rate
    reversed_ = (stepped & (sign == -state.last_step_sign)
                 & (clock_s - state.last_step_s <= settings.reversal_gap_s))
    fade = math.exp(-dt_s / settings.rate_time_constant_s)
    rate = state.reversals_per_min * fade + reversed_ * (60.0 / settings.rate_time_constant_s)
    threshold = state.threshold_per_min(settings)
    held = np.where(fresh, held_for(state.held_s, rate, threshold, settings.clear_fraction * threshold,
                                    settings.hold_s, dt_s), 0.0)
    # the baseline learns only what is normal: not while a warning is building or active
    learning = fresh & (held == 0.0)
    follow = 1.0 - math.exp(-dt_s / settings.baseline_time_constant_s)
    baseline = np.where(learning, state.baseline_per_min + (rate - state.baseline_per_min) * follow,
                        state.baseline_per_min)
    return CurrentState(
        last_c_rate=c_rate,
        last_step_sign=np.where(stepped, sign, state.last_step_sign),
        last_step_s=np.where(stepped, clock_s, state.last_step_s),
        reversals_per_min=rate,
        baseline_per_min=baseline,
        held_s=held,
    )
