"""What protection needs to remember between ticks about the raw signals: temperature trends, frozen
voltage channels, and how far the measured cell voltages stray from the cell model.

* **Temperature rise rate.** Two exponential averages of every sensor (time constants `fast` and `slow`); for a
  steady ramp of r degC/s the fast one leads the slow one by r * (slow - fast), so their difference divided by
  (slow - fast) is the rate, with the sensor noise and its 0.1 degC steps averaged out.
* **Frozen voltage channels.** A cell voltage that keeps exactly the same value while the pack current swings over
  `frozen_current_span_a` cannot be a live reading: R0 alone moves a live one by tens of millivolts.
* **Model residual.** The mean absolute difference between the measured and the modelled cell voltage, averaged
  over `residual_time_constant_s`: large when the model no longer describes the cell (wrong model, damage, a
  sensor error that stays plausible).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import FloatArray


@dataclass(frozen=True)
class TrendSettings:
    fast_time_constant_s: float = 10.0
    slow_time_constant_s: float = 40.0
    frozen_current_span_c_rate: float = 0.25  # of the pack's capacity
    residual_time_constant_s: float = 120.0


@dataclass(frozen=True)
class TrendState:
    fast_c: FloatArray  # packs x sensors; NaN until the first reading
    slow_c: FloatArray
    last_voltage_v: FloatArray  # packs x cells
    current_low_a: FloatArray  # packs x cells: the current's range since the channel last changed
    current_high_a: FloatArray
    residual_v: FloatArray  # packs x cells: averaged |measured - modelled| cell voltage
    temperature_seen_s: FloatArray  # packs x sensors: how long the averages have been running

    @classmethod
    def empty(cls, cells: tuple[int, int], sensors: tuple[int, int]) -> TrendState:
        return cls(np.full(sensors, np.nan), np.full(sensors, np.nan), np.full(cells, np.nan), np.full(cells, np.nan),
                   np.full(cells, np.nan), np.zeros(cells), np.zeros(sensors))


@dataclass(frozen=True)
class Trends:
    temperature_rise_c_per_min: FloatArray  # packs x sensors, NaN until both averages have settled
    frozen_voltages: FloatArray  # packs x cells, 1.0 where frozen


def _average(previous: FloatArray, reading: FloatArray, dt_s: float, time_constant_s: float) -> FloatArray:
    weight = 1.0 - np.exp(-dt_s / time_constant_s)
    started = np.where(np.isfinite(previous), previous, reading)
    result: FloatArray = np.where(np.isfinite(reading), started + weight * (reading - started), previous)
    return result


def trends_step(state: TrendState, temperature_c: FloatArray, cell_voltage_v: FloatArray, current_a: FloatArray,
                capacity_ah: FloatArray, dt_s: float, settings: TrendSettings) -> tuple[TrendState, Trends]:
    """Update with this tick's screened readings (NaN where unknown); `current_a` per pack."""
    fast = _average(state.fast_c, temperature_c, dt_s, settings.fast_time_constant_s)
    slow = _average(state.slow_c, temperature_c, dt_s, settings.slow_time_constant_s)
    seen = np.where(np.isfinite(slow), state.temperature_seen_s + dt_s, 0.0)
    # unknown until the slow average has run for its time constant: a restart must not read as "not rising"
    rise = np.where(seen >= settings.slow_time_constant_s,
                    (fast - slow) / (settings.slow_time_constant_s - settings.fast_time_constant_s) * 60.0, np.nan)

    current = current_a[:, None]
    changed = (cell_voltage_v != state.last_voltage_v) | ~np.isfinite(state.current_low_a)
    low = np.where(changed, current, np.fmin(state.current_low_a, current))
    high = np.where(changed, current, np.fmax(state.current_high_a, current))
    span = settings.frozen_current_span_c_rate * capacity_ah[:, None]
    frozen = np.isfinite(cell_voltage_v) & (high - low >= span)
    new_state = TrendState(fast, slow, cell_voltage_v, low, high, state.residual_v, seen)
    return new_state, Trends(rise, frozen.astype(np.float64))


def residual_step(state: TrendState, residual_v: FloatArray, dt_s: float, settings: TrendSettings) -> TrendState:
    """Fold this tick's model residual (NaN where the filter made no correction) into its average."""
    weight = 1.0 - np.exp(-dt_s / settings.residual_time_constant_s)
    known = np.isfinite(residual_v)
    averaged = np.where(known, state.residual_v + weight * (np.abs(np.where(known, residual_v, 0.0))
                                                            - state.residual_v), state.residual_v)
    return TrendState(state.fast_c, state.slow_c, state.last_voltage_v, state.current_low_a, state.current_high_a,
                      averaged, state.temperature_seen_s)
