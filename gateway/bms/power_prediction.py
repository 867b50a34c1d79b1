"""Model-based state of power: the largest constant currents each pack can carry for 10 s and for 30 s.

For every cell, at its estimated state (SoC, RC branch currents, hysteresis, learned capacity and R0
growth), the equivalent circuit predicts the terminal voltage under a constant current
(voltage_checks.py). The predicted current of a horizon is the largest one that keeps every cell of the
pack inside [min discharge voltage, max charge voltage] at the horizon's checks: t = 0+ and 10 s for
10 s; t = 0+, 10 s and 30 s for 30 s. Between checks the voltage moves monotonically unless a fast RC
branch rises while a slow one falls. R0, the RC pairs and the hysteresis state stay at their present
values over the horizon.

The bounds come in closed form with the OCV linearised at the present SoC; Newton steps on the full OCV
at the horizon's end refine each pack's candidate cells (power_refinement.py). Results are clipped to
[0, rating]: the 10 s pulse rating for 10 s, the continuous rating for 30 s. Any unknown (NaN) input of
a cell gives its pack 0. docs/limits.md has the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.cell_conditions import CellConditions
from gateway.bms.cell_tables import CellParameters, CellTables, IntArray
from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.power_refinement import REFINED_CELLS, refined_bounds
from gateway.bms.voltage_checks import DIRECTION_SIGN, VoltageChecks, current_bounds, voltage_checks

DEFAULT_NEWTON_STEPS = 2


@dataclass(frozen=True)
class PackVoltageModel:
    """Each pack's voltage (sum of its cells), linear in the current, now (t = 0+) and at the 30 s horizon.

    voltage = unloaded_v + resistance_ohm x current; arrays are 2 (now, 30 s) x packs. The resistance
    includes the OCV's linearised rise over the horizon (slope x t / 3600 Q).
    """

    unloaded_v: FloatArray
    resistance_ohm: FloatArray

    def lowest_v(self, magnitude_a: FloatArray) -> FloatArray:
        """packs x 2: the lower of the two pack voltages at the given charge and discharge magnitudes."""
        voltage = self.unloaded_v[:, :, None] + self.resistance_ohm[:, :, None] * (magnitude_a * DIRECTION_SIGN)
        result: FloatArray = np.minimum(voltage[0], voltage[1])
        return result


@dataclass(frozen=True)
class PowerPrediction:
    current_a: FloatArray  # 2 horizons (10 s, 30 s) x packs x 2 (charge, discharge): magnitudes >= 0
    pack_voltage: PackVoltageModel

    @classmethod
    def empty(cls, packs: int) -> PowerPrediction:
        """Nothing predicted yet: 0 A, unknown voltages."""
        unknown = np.full((2, packs), np.nan)
        return cls(np.zeros((2, packs, 2)), PackVoltageModel(unknown, unknown))

    def with_packs(self, start: int, part: PowerPrediction) -> PowerPrediction:
        """This prediction with the packs from `start` on replaced by `part`."""
        stop = start + part.current_a.shape[1]
        current, unloaded, resistance = (self.current_a.copy(), self.pack_voltage.unloaded_v.copy(),
                                         self.pack_voltage.resistance_ohm.copy())
        current[:, start:stop] = part.current_a
        unloaded[:, start:stop] = part.pack_voltage.unloaded_v
        resistance[:, start:stop] = part.pack_voltage.resistance_ohm
        return PowerPrediction(current, PackVoltageModel(unloaded, resistance))

    @property
    def charge_10s_a(self) -> FloatArray:
        result: FloatArray = self.current_a[0, :, 0]
        return result

    @property
    def discharge_10s_a(self) -> FloatArray:
        result: FloatArray = self.current_a[0, :, 1]
        return result

    @property
    def charge_30s_a(self) -> FloatArray:
        result: FloatArray = self.current_a[1, :, 0]
        return result

    @property
    def discharge_30s_a(self) -> FloatArray:
        result: FloatArray = self.current_a[1, :, 1]
        return result


def horizon_ratings_a(parameters: PackParameters) -> FloatArray:
    """2 horizons x packs x 2 directions: the 10 s pulse ratings for 10 s, the continuous ratings for 30 s."""
    ratings = np.stack((parameters.pulse_charge_current_a, parameters.pulse_discharge_current_a,
                        parameters.max_charge_current_a, parameters.max_discharge_current_a))
    result: FloatArray = ratings.reshape(2, 2, -1).transpose(0, 2, 1)
    return result


@dataclass(frozen=True)
class PackCells:
    """The constants the prediction reads, for every pack or for a range of packs."""

    tables: CellTables
    model_index: IntArray  # packs x cells
    cell_mask: BoolArray
    cell_voltage_limit_v: FloatArray  # packs x 2: max charge, min discharge
    rating_a: FloatArray  # horizons x packs x directions (horizon_ratings_a)
    fewest_cells: int  # in any pack

    @classmethod
    def of(cls, parameters: PackParameters) -> PackCells:
        arrays = parameters.estimator.arrays
        fewest = int(parameters.series_cells.min(initial=parameters.cell_mask.shape[1]))
        return cls(arrays.tables, arrays.model_index, parameters.cell_mask, parameters.cell_voltage_limit_v,
                   horizon_ratings_a(parameters), fewest)

    def packs(self, start: int, stop: int) -> PackCells:
        """The packs start..stop-1 (views)."""
        return PackCells(self.tables, self.model_index[start:stop], self.cell_mask[start:stop],
                         self.cell_voltage_limit_v[start:stop], self.rating_a[:, start:stop], self.fewest_cells)


def predict_power(conditions: CellConditions, parameters: PackParameters,
                  newton_steps: int = DEFAULT_NEWTON_STEPS, cell: CellParameters | None = None) -> PowerPrediction:
    """The predicted currents of every pack; `cell` as in `predict_packs`."""
    return predict_packs(conditions, PackCells.of(parameters), newton_steps, cell)


def predict_packs(conditions: CellConditions, packs: PackCells, newton_steps: int = DEFAULT_NEWTON_STEPS,
                  cell: CellParameters | None = None) -> PowerPrediction:
    """The predicted currents of the packs of `packs`.

    `cell`: the cell tables read at the cells' SoC and temperature when the caller already has them (the
    read is a fifth of the cost); read here otherwise.
    """
    rows = packs.tables.rows(packs.model_index, conditions.temperature_c)
    if cell is None:
        cell = packs.tables.lookup_on_rows(rows, conditions.soc)
    checks = voltage_checks(conditions, cell)
    bounds = current_bounds(checks, packs.cell_voltage_limit_v, packs.cell_mask)
    rating = packs.rating_a.transpose(0, 2, 1)  # horizons x directions x packs
    best = refined_bounds(bounds, checks, conditions, rows, packs.tables, packs.cell_voltage_limit_v.T, rating,
                          min(REFINED_CELLS, packs.fewest_cells), newton_steps)
    current = np.fmin(np.fmax(best, 0.0), rating)  # fmax turns NaN (unknown) into 0
    return PowerPrediction(current.transpose(0, 2, 1), _pack_voltage(checks, packs.cell_mask))


def cell_range(cell: CellParameters, start: int, stop: int) -> CellParameters:
    """The table values of the packs start..stop-1 (views)."""
    return CellParameters(cell.ocv_v[start:stop], cell.ocv_slope_v[start:stop], cell.hysteresis_v[start:stop],
                          cell.r0_ohm[start:stop], cell.rc_r_ohm[:, start:stop], cell.rc_tau_s[:, start:stop])


def _pack_voltage(checks: VoltageChecks, cell_mask: BoolArray) -> PackVoltageModel:
    unloaded, gain = checks.unloaded_v, checks.gain_ohm
    if not cell_mask.all():
        unloaded, gain = np.where(cell_mask, unloaded, 0.0), np.where(cell_mask, gain, 0.0)
    now_and_end = [0, -1]
    # einsum sums each pack's cells without BLAS (whose threads a 10 Hz tick does not want)
    return PackVoltageModel(np.einsum("tpc->tp", unloaded)[now_and_end], np.einsum("tpc->tp", gain)[now_and_end])
