"""Each cell's voltage under a constant current, linear in the current, at the check times of the power horizons.

Under a constant current I (positive = charging) applied from now on, the equivalent circuit gives

    V(t) = OCV(soc + I t / (3600 Q)) + M h + (R0 + dR0) I + sum_k R_k [i_k e^(-t/tau_k) + I (1 - e^(-t/tau_k))]

With the OCV linearised at the present SoC this is V(t) = unloaded(t) + gain(t) I, and a voltage limit gives
the largest current in closed form at each check time: t = 0+ and the end of each horizon (10 s, 30 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.cell_conditions import CellConditions
from gateway.bms.cell_tables import CellParameters
from gateway.bms.inputs import BoolArray, FloatArray

SHORT_HORIZON_S = 10.0
LONG_HORIZON_S = 30.0
CHECK_TIMES_S = (0.0, SHORT_HORIZON_S, LONG_HORIZON_S)  # t = 0+ and the end of each horizon
HORIZONS_S = np.array([SHORT_HORIZON_S, LONG_HORIZON_S])
HORIZON_END_CHECK = (1, 2)  # index of each horizon's end in CHECK_TIMES_S
DIRECTION_SIGN = np.array([1.0, -1.0])  # charge, discharge: the current is sign x magnitude
_CHECK_TIMES_S = np.array(CHECK_TIMES_S)[:, None, None]
_SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class VoltageChecks:
    """At each check time (checks x packs x cells): V = unloaded_v + gain_ohm x I."""

    unloaded_v: FloatArray  # V at zero current: the branches relax; NaN where the cell's state is unknown
    resistance_ohm: FloatArray  # R0 + dR0 + sum_k R_k (1 - e^(-t/tau_k))
    gain_ohm: FloatArray  # the resistance plus the OCV's linearised rise: ocv_rise x t
    ocv_rise_ohm_per_s: FloatArray  # packs x cells: the OCV's rise per ampere-second, slope / 3600 Q
    ocv_v: FloatArray  # packs x cells, at the present SoC
    soc_per_amp_second: FloatArray  # packs x cells: 1 / 3600 Q


@dataclass(frozen=True)
class CurrentBounds:
    """The largest current magnitude that keeps a cell inside its voltage window (NaN: unknown)."""

    at_check: FloatArray  # directions x checks x packs x cells
    through_check: FloatArray  # checks x directions x packs x cells: the smallest over this and earlier checks

    @property
    def over_horizon(self) -> FloatArray:
        """horizons x directions x packs x cells: the smallest over all checks of the horizon."""
        return self.through_check[1:]


def _pair_sum(values: FloatArray) -> FloatArray:
    """Sum over the RC pairs (the first axis); a chain of adds beats a reduction over so few rows."""
    total: FloatArray = values[0]
    for pair in values[1:]:
        total = total + pair
    return total


def voltage_checks(conditions: CellConditions, cell: CellParameters) -> VoltageChecks:
    """`cell`: the cell tables read at the cells' SoC and temperature."""
    known = np.isfinite(conditions.soc) & np.isfinite(conditions.temperature_c)
    unknown_v = np.where(known, 0.0, np.nan)  # the tables read NaN as their edge: carry "unknown" on
    rest_v = cell.ocv_v + cell.hysteresis_v * conditions.hysteresis + unknown_v
    resistance_now = cell.r0_ohm + conditions.delta_r0_ohm
    resistance_settled = resistance_now + _pair_sum(cell.rc_r_ohm)
    branch_v = cell.rc_r_ohm * conditions.rc_current_a
    soc_per_amp_second = 1.0 / (_SECONDS_PER_HOUR * conditions.capacity_ah)
    ocv_rise = cell.ocv_slope_v * soc_per_amp_second
    unloaded = np.empty((len(CHECK_TIMES_S), *rest_v.shape))
    resistance = np.empty_like(unloaded)
    np.add(rest_v, _pair_sum(branch_v), out=unloaded[0])
    resistance[0] = resistance_now
    short_decay = np.exp(-SHORT_HORIZON_S / cell.rc_tau_s)
    long_decay = short_decay * short_decay * short_decay  # the long horizon is three short ones
    for check, decay in ((1, short_decay), (2, long_decay)):
        np.add(rest_v, _pair_sum(branch_v * decay), out=unloaded[check])
        np.subtract(resistance_settled, _pair_sum(cell.rc_r_ohm * decay), out=resistance[check])
    gain = resistance + ocv_rise * _CHECK_TIMES_S
    return VoltageChecks(unloaded, resistance, gain, ocv_rise, cell.ocv_v, soc_per_amp_second)


def current_bounds(checks: VoltageChecks, cell_voltage_limit_v: FloatArray, cell_mask: BoolArray) -> CurrentBounds:
    """`cell_voltage_limit_v`: packs x 2 (max charge, min discharge voltage); cells outside the mask get +inf."""
    inverse_gain = 1.0 / checks.gain_ohm
    at_check = np.empty((2, *checks.gain_ohm.shape))
    np.subtract(cell_voltage_limit_v[:, 0, None], checks.unloaded_v, out=at_check[0])
    np.subtract(checks.unloaded_v, cell_voltage_limit_v[:, 1, None], out=at_check[1])
    at_check *= inverse_gain
    through_check = np.empty((at_check.shape[1], *at_check.shape[:1], *at_check.shape[2:]))
    through_check[0] = at_check[:, 0]
    for check in range(1, len(through_check)):
        np.minimum(through_check[check - 1], at_check[:, check], out=through_check[check])
    if not cell_mask.all():
        through_check = np.where(cell_mask, through_check, np.inf)
    return CurrentBounds(at_check, through_check)
