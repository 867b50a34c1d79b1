"""A vectorised equivalent-circuit pack: S series cells, one RC pair each, lumped cell temperatures.

Sign convention: current positive when charging; a charging current raises the terminal voltage
(v = ocv(soc) + i * r0 + v_rc). The pack's own BMS is reduced to one rule: the current is clamped so
that no cell leaves [min_discharge_voltage_v, max_charge_voltage_v] (a smooth CC/CV taper), and it
is 0 while the contactor is open.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from gateway.bms.cell_model import CellModel

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

# Manufacturing spread (normal, clipped at +/- the limit): capacity, R0 and the initial SoC.
CAPACITY_SIGMA, CAPACITY_LIMIT = 0.01, 0.02
R0_SIGMA, R0_LIMIT = 0.025, 0.05
SOC_SIGMA, SOC_LIMIT = 0.002, 0.005

REFERENCE_CAPACITY_AH = 200.0
HEAT_CAPACITY_J_PER_K = 4000.0  # per 200 Ah cell, scaled with capacity
COOLING_W_PER_K = 2.0  # per 200 Ah cell to ambient, scaled with capacity
BALANCING_BLEED_A = 0.1
VOLTAGE_LIMIT_MARGIN_V = 0.002  # the clamp aims this far inside the cell's voltage window
OCV_SLOPE_SPAN = 0.01  # SoC span of the OCV chord the clamp uses to predict the next voltage


def _spread(rng: np.random.Generator, n: int, sigma: float, limit: float) -> FloatArray:
    return np.clip(rng.normal(0.0, sigma, n), -limit, limit)


def sensor_positions(series_cells: int, sensors: int) -> IntArray:
    """0-based cell each sensor sits on, spread evenly from the first cell to the last."""
    return np.rint(np.linspace(0, series_cells - 1, sensors)).astype(np.int64)


class PackModel:
    """State and physics of one pack. Fault hooks (`capacity_factor`, `extra_heat_w`, `cooling_factor`,
    `extra_resistance_ohm`, `leak_a`) are reset by whoever applies faults before each step.

    `extra_resistance_ohm` is in series with the cell's R0 (a contact): it drops voltage and heats the cell.
    `leak_a` flows inside the cell (self-discharge, a soft internal short): it drains the cell's SoC, not the
    pack current, and its power (leak x OCV) heats the cell."""

    def __init__(self, cell: CellModel, series_cells: int, sensors: int, *, initial_soc: float,
                 ambient_c: float, rng: np.random.Generator) -> None:
        if series_cells < 1 or sensors < 1:
            raise ValueError("a pack needs at least one cell and one sensor")
        self.cell = cell
        self.series_cells = series_cells
        self.ambient_c = ambient_c
        scale = cell.nominal_capacity_ah / REFERENCE_CAPACITY_AH
        self.heat_capacity_j_per_k = HEAT_CAPACITY_J_PER_K * scale
        self.cooling_w_per_k = COOLING_W_PER_K * scale
        (self.r1_ohm, self.tau1_s), *_ = cell.rc_at()
        # The OCV at the reference temperature, on the table's own SoC grid: interpolating it is the same lookup
        # as `cell.ocv_v`, several times faster (the physics asks for it several times a step).
        self._ocv_soc: FloatArray = np.asarray(cell.spec.ocv.soc, dtype=np.float64)
        self._ocv_curve_v: FloatArray = cell.ocv_v(self._ocv_soc)
        self.base_capacity_ah: FloatArray = cell.nominal_capacity_ah * (
            1.0 + _spread(rng, series_cells, CAPACITY_SIGMA, CAPACITY_LIMIT))
        self.r0_ohm: FloatArray = cell.r0_ohm * (1.0 + _spread(rng, series_cells, R0_SIGMA, R0_LIMIT))
        self.soc: FloatArray = np.clip(
            initial_soc + _spread(rng, series_cells, SOC_SIGMA, SOC_LIMIT), 0.0, 1.0)
        self.v_rc_v: FloatArray = np.zeros(series_cells)
        self.temperature_c: FloatArray = np.full(series_cells, float(ambient_c))
        self.sensor_cells: IntArray = sensor_positions(series_cells, sensors)
        self.current_a = 0.0
        self.cell_current_a: FloatArray = np.zeros(series_cells)
        self.contactor_closed = True
        self.balancing_mask: BoolArray = np.zeros(series_cells, dtype=np.bool_)
        # fault hooks
        self.capacity_factor: FloatArray = np.ones(series_cells)
        self.extra_heat_w: FloatArray = np.zeros(series_cells)
        self.cooling_factor = 1.0
        self.extra_resistance_ohm: FloatArray = np.zeros(series_cells)
        self.leak_a: FloatArray = np.zeros(series_cells)

    @property
    def series_resistance_ohm(self) -> FloatArray:
        """R0 plus any contact resistance in series with it."""
        result: FloatArray = self.r0_ohm + self.extra_resistance_ohm
        return result

    @property
    def capacity_ah(self) -> FloatArray:
        return self.base_capacity_ah * self.capacity_factor

    @property
    def ocv_v(self) -> FloatArray:
        return self._ocv_at(self.soc)

    def _ocv_at(self, soc: FloatArray) -> FloatArray:
        result: FloatArray = np.interp(soc, self._ocv_soc, self._ocv_curve_v)
        return result

    @property
    def cell_voltage_v(self) -> FloatArray:
        return self.ocv_v + self.cell_current_a * self.series_resistance_ohm + self.v_rc_v

    @property
    def pack_voltage_v(self) -> float:
        return float(np.sum(self.cell_voltage_v))

    @property
    def sensor_temperature_c(self) -> FloatArray:
        return self.temperature_c[self.sensor_cells]

    @property
    def balancing_active(self) -> bool:
        return bool(np.any(self.balancing_mask))

    def _bleed_a(self) -> FloatArray:
        return np.where(self.balancing_mask, BALANCING_BLEED_A, 0.0)

    def current_window_a(self, dt_s: float) -> tuple[float, float]:
        """(most negative, most positive) pack current that keeps every cell inside its voltage
        window over the next `dt_s`; (0, 0) while the contactor is open."""
        if not self.contactor_closed:
            return 0.0, 0.0
        # terminal voltage after dt_s, linear in the cell current i: rest_v + i * (resistance + soc term)
        decay = math.exp(-dt_s / self.tau1_s)
        resistance = self.series_resistance_ohm + (1.0 - decay) * self.r1_ohm
        soc_per_a = dt_s / (3600.0 * self.capacity_ah)
        rest_v = self.ocv_v + decay * self.v_rc_v
        limits = self.cell.limits
        bleed = self._bleed_a()
        v_max = limits.max_charge_voltage_v - VOLTAGE_LIMIT_MARGIN_V
        v_min = limits.min_discharge_voltage_v + VOLTAGE_LIMIT_MARGIN_V
        up = resistance + self._ocv_slope(+1.0) * soc_per_a
        down = resistance + self._ocv_slope(-1.0) * soc_per_a
        # a full cell accepts no charge, an empty one gives none (beyond its balancing bleed)
        charge = float(np.min(np.where(self.soc >= 1.0, bleed, bleed + (v_max - rest_v) / up)))
        discharge = float(np.max(np.where(self.soc <= 0.0, bleed, bleed + (v_min - rest_v) / down)))
        return min(discharge, 0.0), max(charge, 0.0)

    def _ocv_slope(self, direction: float) -> FloatArray:
        """dOCV/dSoC as the chord over OCV_SLOPE_SPAN of SoC in `direction` (0 at the table's end)."""
        other = np.clip(self.soc + direction * OCV_SLOPE_SPAN, 0.0, 1.0)
        span = other - self.soc
        safe = np.where(span == 0.0, 1.0, span)
        return np.where(span == 0.0, 0.0, (self._ocv_at(other) - self.ocv_v) / safe)

    def step(self, dt_s: float, current_a: float) -> float:
        """Advance `dt_s` with the requested pack current; returns the current actually applied."""
        if dt_s <= 0.0:
            raise ValueError("dt_s must be positive")
        low, high = self.current_window_a(dt_s)
        applied = min(max(current_a, low), high)
        cell_current = applied - self._bleed_a()
        decay = math.exp(-dt_s / self.tau1_s)
        self.v_rc_v = decay * self.v_rc_v + (1.0 - decay) * cell_current * self.r1_ohm
        self.soc = np.clip(self.soc + (cell_current - self.leak_a) * dt_s / (3600.0 * self.capacity_ah), 0.0, 1.0)
        self._heat(dt_s, cell_current)
        self.current_a = applied
        self.cell_current_a = cell_current
        return applied

    def _heat(self, dt_s: float, cell_current: FloatArray) -> None:
        power = cell_current**2 * self.series_resistance_ohm + self.leak_a * self.ocv_v + self.extra_heat_w
        if self.r1_ohm > 0.0:
            power = power + self.v_rc_v**2 / self.r1_ohm
        conductance = self.cooling_w_per_k * self.cooling_factor
        if conductance > 0.0:
            steady = self.ambient_c + power / conductance
            decay = math.exp(-dt_s * conductance / self.heat_capacity_j_per_k)
            self.temperature_c = steady + (self.temperature_c - steady) * decay
        else:
            self.temperature_c = self.temperature_c + power * dt_s / self.heat_capacity_j_per_k
