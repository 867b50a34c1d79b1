"""SoC drift at rest: a leak (self-discharge, soft internal short) seen as a cell's SoC falling away from its peers.

Every `sample_period_s` of settled rest, each cell's deviation d = SoC - median(SoC of the other cells) is
sampled against the pack's rest time t (hours). A rest is a segment; the leak estimate is the slope of d over t
pooled over segments (least squares with one intercept per segment), so that whatever moved the cells apart
under load (capacity spread, relaxation) between two rests does not count. Closed segments fade with
`memory_s`. The slope is in SoC per hour, i.e. a current in C: the leak is minus the slope. Its noise depends
on the rest's length and on the OCV's slope at the pack's SoC, so a warning also needs the cell's estimate to
stand out from the spread of its pack's estimates (`leak_z`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.predictive_settings import SocDriftSettings
from gateway.bms.predictive_stats import peer_median, row_median


@dataclass(frozen=True)
class DriftState:
    rest_s: FloatArray  # packs: how long the filtered current has stayed below the rest threshold
    filtered_current_a: FloatArray  # packs; NaN: unknown
    # packs x cells: sums of the open segment (t in hours since the rest began, d the deviation)
    count: FloatArray
    sum_t: FloatArray
    sum_tt: FloatArray
    sum_d: FloatArray
    sum_td: FloatArray
    # packs x cells: centred sums of the closed segments, faded
    pooled_sxx: FloatArray
    pooled_sxy: FloatArray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> DriftState:
        zeros = np.zeros(shape)
        return cls(np.zeros(shape[0]), np.full(shape[0], np.nan), zeros, zeros, zeros, zeros, zeros, zeros, zeros)


def rest_step(state: DriftState, current_a: FloatArray, capacity_ah: FloatArray, fresh: BoolArray, dt_s: float,
              settings: SocDriftSettings) -> DriftState:
    """Every tick: the rest timer, reset by load (the current low-pass filtered, so that a noise spike of the
    sensor does not end a rest), an unknown current or stale data."""
    current = np.where(fresh, current_a, np.nan)
    previous = state.filtered_current_a
    follow = 1.0 - math.exp(-dt_s / settings.rest_filter_time_constant_s)
    filtered = np.where(np.isnan(previous), current, previous + (current - previous) * follow)
    quiet = np.abs(filtered) < settings.rest_current_c_rate * capacity_ah  # NaN compares False
    return replace(state, rest_s=np.where(quiet, state.rest_s + dt_s, 0.0), filtered_current_a=filtered)


def _centred(count: FloatArray, sum_t: FloatArray, sum_tt: FloatArray, sum_d: FloatArray,
             sum_td: FloatArray) -> tuple[FloatArray, FloatArray]:
    n = np.maximum(count, 1.0)
    return sum_tt - sum_t * sum_t / n, sum_td - sum_t * sum_d / n


def _leak(sxx: FloatArray, sxy: FloatArray, known: BoolArray, settings: SocDriftSettings) -> FloatArray:
    """Minus the pooled slope, where the samples span enough rest: as much spread of t as one continuous rest
    of `min_rest_s` sampled every period gives (n T^2 / 12)."""
    samples = settings.min_rest_s / settings.sample_period_s
    enough = known & (sxx >= samples * (settings.min_rest_s / 3600.0) ** 2 / 12.0)
    result: FloatArray = np.where(enough, -sxy / np.where(enough, sxx, 1.0), np.nan)
    return result


def leak_z(leak_c_rate: FloatArray, settings: SocDriftSettings) -> FloatArray:
    """How far each cell's leak estimate stands out from its pack's, in robust sigmas (NaN: unknown)."""
    median = row_median(leak_c_rate)[:, None]
    sigma = 1.4826 * row_median(np.abs(leak_c_rate - median))[:, None]
    result: FloatArray = (leak_c_rate - median) / np.maximum(sigma, settings.noise_floor_c_rate)
    return result


def drift_sample(state: DriftState, soc: FloatArray, soc_sigma: FloatArray, cell_mask: BoolArray,
                 balancing: BoolArray | None, elapsed_s: float, settings: SocDriftSettings,
                 min_peers: int) -> tuple[DriftState, FloatArray]:
    """One sample of every cell; returns the state and the leak estimate in C (NaN until enough rest)."""
    fade = math.exp(-elapsed_s / settings.memory_s)
    known = cell_mask & np.isfinite(soc)
    settled = state.rest_s >= settings.settle_s
    if not settled.any():  # the common case under load: nothing to sample, at most segments to close
        pooled_sxx, pooled_sxy = fade * state.pooled_sxx, fade * state.pooled_sxy
        if state.count.any():
            closed_xx, closed_xy = _centred(state.count, state.sum_t, state.sum_tt, state.sum_d, state.sum_td)
            pooled_sxx, pooled_sxy = pooled_sxx + closed_xx, pooled_sxy + closed_xy
        zeros = np.zeros(soc.shape)
        new = DriftState(state.rest_s, state.filtered_current_a, zeros, zeros, zeros, zeros, zeros, pooled_sxx,
                         pooled_sxy)
        return new, _leak(pooled_sxx, pooled_sxy, known, settings)
    usable = known & (soc_sigma <= settings.max_soc_sigma)
    if balancing is not None:
        usable &= ~balancing  # a balancing bleed is a deliberate leak
    deviation = soc - peer_median(soc, usable, min_peers)
    sampled = settled[:, None] & np.isfinite(deviation)
    full = state.count >= settings.max_segment_s / settings.sample_period_s
    closing = (state.count > 0.0) & (~sampled | full)
    pooled_sxx, pooled_sxy = fade * state.pooled_sxx, fade * state.pooled_sxy
    count, sum_t, sum_tt, sum_d, sum_td = state.count, state.sum_t, state.sum_tt, state.sum_d, state.sum_td
    if closing.any():
        closed_xx, closed_xy = _centred(count, sum_t, sum_tt, sum_d, sum_td)
        pooled_sxx = pooled_sxx + np.where(closing, closed_xx, 0.0)
        pooled_sxy = pooled_sxy + np.where(closing, closed_xy, 0.0)
        kept = np.where(closing, 0.0, 1.0)
        count, sum_t, sum_tt, sum_d, sum_td = count * kept, sum_t * kept, sum_tt * kept, sum_d * kept, sum_td * kept
    t = np.where(sampled, (state.rest_s / 3600.0)[:, None], 0.0)
    d = np.where(sampled, deviation, 0.0)
    count, sum_t, sum_tt, sum_d, sum_td = count + sampled, sum_t + t, sum_tt + t * t, sum_d + d, sum_td + t * d
    open_xx, open_xy = _centred(count, sum_t, sum_tt, sum_d, sum_td)
    new = DriftState(state.rest_s, state.filtered_current_a, count, sum_t, sum_tt, sum_d, sum_td, pooled_sxx,
                     pooled_sxy)
    return new, _leak(pooled_sxx + open_xx, pooled_sxy + open_xy, known, settings)
