"""Online cell capacity: weighted total least squares of charge moved against SoC moved.

Each pair is (x = SoC change between two filter estimates, y = charge in Ah over the same
interval, corrected by the current-sensor bias as it is known now: the offset is constant, so a bias
learned later, e.g. during a rest, corrects the whole open pair); both are noisy, so each pair is
weighted by its effective variance sigma_y^2 + Q^2 sigma_x^2 (the errors-in-variables form of
WTLS), and the estimate is

    Q = (prior + sum w x y) / (prior weight + sum w x^2)

The open pair grows from an anchor while the SoC keeps moving one way; it is committed when the
SoC turns back by `reversal_soc` and a new anchor starts there. The open pair counts as soon as it
spans `min_span_soc`, with its end's SoC variance: a rest at the end of a discharge, where the
voltage pins the SoC, makes it count most. Committed sums fade by `forgetting` per pair so the estimate follows ageing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.arrays import nan_to
from gateway.bms.inputs import BoolArray, FloatArray


@dataclass(frozen=True)
class CapacitySettings:
    prior_sigma_fraction: float = 0.1  # the nominal capacity's uncertainty: a cell of unknown history
    min_span_soc: float = 0.1  # shorter pairs carry too little information
    reversal_soc: float = 0.05
    max_anchor_sigma: float = 0.03  # only anchor where the SoC is known this well
    current_sigma_fraction: float = 0.005  # gain uncertainty of the Ah integral
    model_sigma_soc: float = 0.005  # SoC error the filter's sigma does not see (correlated model error)
    forgetting: float = 0.98


@dataclass(frozen=True)
class CapacityState:
    """Arrays are packs x cells."""

    sum_wxx: FloatArray
    sum_wxy: FloatArray
    anchor_soc: FloatArray  # NaN: no anchor yet
    anchor_ah: FloatArray
    anchor_counted_h: FloatArray
    anchor_variance: FloatArray
    extreme_span: FloatArray  # largest |soc - anchor_soc| of the open pair
    throughput_ah: FloatArray  # cumulative measured charge (bias not applied)
    counted_h: FloatArray  # cumulative time over which the charge was counted
    prior_ah: FloatArray  # the capacity before any pair: nominal, or a measured start value

    @classmethod
    def empty(cls, nominal_ah: FloatArray) -> CapacityState:
        zeros = np.zeros(nominal_ah.shape)
        return cls(zeros, zeros, np.full(nominal_ah.shape, np.nan), zeros, zeros, zeros, zeros, zeros, zeros,
                   nominal_ah.copy())


def _pair_weight(state: CapacityState, y: FloatArray, soc_variance: FloatArray, capacity: FloatArray,
                 settings: CapacitySettings) -> FloatArray:
    """Effective-variance weight of the pair from the anchor to a point with this SoC variance."""
    x_variance = soc_variance + state.anchor_variance + 2.0 * settings.model_sigma_soc**2
    y_variance = (settings.current_sigma_fraction * y) ** 2
    result: FloatArray = 1.0 / (y_variance + capacity**2 * x_variance)
    return result


def _pair_charge(state: CapacityState, throughput_ah: FloatArray, counted_h: FloatArray,
                 bias_a: FloatArray) -> FloatArray:
    """Charge since the anchor, corrected by the bias known now over the time it was counted."""
    result: FloatArray = throughput_ah - state.anchor_ah + bias_a * (counted_h - state.anchor_counted_h)
    return result


def capacity_estimate(state: CapacityState, soc: FloatArray, soc_variance: FloatArray, bias_a: FloatArray,
                      nominal_ah: FloatArray, settings: CapacitySettings) -> tuple[FloatArray, FloatArray]:
    """Capacity and its sigma from the committed pairs plus the open pair (when long enough)."""
    prior_weight = 1.0 / (settings.prior_sigma_fraction * nominal_ah) ** 2
    wxx = prior_weight + state.sum_wxx
    wxy = prior_weight * state.prior_ah + state.sum_wxy
    x = soc - state.anchor_soc
    y = _pair_charge(state, state.throughput_ah, state.counted_h, bias_a)
    open_pair = np.isfinite(x) & (np.abs(x) >= settings.min_span_soc)
    first = wxy / wxx
    w = np.where(open_pair, _pair_weight(state, y, soc_variance, first, settings), 0.0)
    x0 = nan_to(x, 0.0)
    total_xx = wxx + w * x0 * x0
    capacity: FloatArray = (wxy + w * x0 * y) / total_xx
    sigma: FloatArray = np.sqrt(1.0 / total_xx)
    return capacity, sigma


def capacity_step(state: CapacityState, soc: FloatArray, soc_variance: FloatArray, current_a: FloatArray,
                  bias_a: FloatArray, dt_s: float, active: BoolArray, uncounted: BoolArray,
                  capacity_ah: FloatArray, settings: CapacitySettings) -> CapacityState:
    """Account one interval's measured charge, then anchor, grow or commit the open pair.

    `uncounted` cells moved charge that was not measured (dropout, gap): their open pair is dropped.
    """
    throughput = state.throughput_ah + np.where(active, current_a * (dt_s / 3600.0), 0.0)
    counted = state.counted_h + np.where(active, dt_s / 3600.0, 0.0)
    can_anchor = active & (soc_variance <= settings.max_anchor_sigma**2)
    no_anchor = ~np.isfinite(state.anchor_soc) | uncounted
    span = np.abs(soc - state.anchor_soc)
    turned = nan_to(state.extreme_span - span, 0.0) >= settings.reversal_soc
    commit = active & ~no_anchor & (state.extreme_span >= settings.min_span_soc) & turned
    x = np.where(commit, soc - state.anchor_soc, 0.0)  # committed at the present point
    y = np.where(commit, _pair_charge(state, throughput, counted, bias_a), 0.0)
    w = np.where(commit, _pair_weight(state, y, soc_variance, capacity_ah, settings), 0.0)
    fade = np.where(commit, settings.forgetting, 1.0)
    restart = (no_anchor & can_anchor) | commit
    lost_anchor = turned & ~commit  # turned back before a useful span: move the anchor here
    # Still close to the anchor but better known now (e.g. later in a rest): a better start for the pair.
    refine = active & ~no_anchor & (state.extreme_span < settings.min_span_soc) \
        & (soc_variance < 0.5 * state.anchor_variance)
    move = restart | ((lost_anchor | refine) & can_anchor)
    return CapacityState(
        sum_wxx=fade * state.sum_wxx + w * x * x,
        sum_wxy=fade * state.sum_wxy + w * x * y,
        anchor_soc=np.where(move, soc, np.where(uncounted, np.nan, state.anchor_soc)),
        anchor_ah=np.where(move, throughput, state.anchor_ah),
        anchor_counted_h=np.where(move, counted, state.anchor_counted_h),
        anchor_variance=np.where(move, soc_variance, state.anchor_variance),
        extreme_span=np.where(move, 0.0, np.maximum(state.extreme_span, nan_to(span, 0.0))),
        throughput_ah=throughput,
        counted_h=counted,
        prior_ah=state.prior_ah,
    )
