"""Cell models resampled on one uniform (temperature x SoC) grid for fast vectorised lookups.

Every tick looks up OCV, its slope, the hysteresis half-gap, R0 and the RC pairs of every cell of
every pack. Resampling once at start turns that into a few gathers per tick: OCV linear in SoC,
the rest at the nearest SoC point, nearest 1 degC step in temperature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.bms.cell_model import CellModel, FloatArray, interpolate_grid

SOC_STEP = 0.005
SOC_POINTS = round(1.0 / SOC_STEP) + 1
TEMPERATURE_GRID_C = np.arange(-40.0, 81.0, 1.0)
IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class CellParameters:
    """Model values for each looked-up cell (all arrays shaped like the query)."""

    ocv_v: FloatArray
    ocv_slope_v: FloatArray  # dOCV/dSoC
    hysteresis_v: FloatArray
    r0_ohm: FloatArray
    rc_r_ohm: FloatArray  # pairs x query
    rc_tau_s: FloatArray  # pairs x query


def _resample(temperatures: tuple[float, ...], socs: tuple[float, ...],
              rows: tuple[tuple[float, ...], ...] | None, soc_grid: FloatArray) -> FloatArray:
    if rows is None:
        return np.zeros((len(TEMPERATURE_GRID_C), len(soc_grid)))
    t, s, v = np.asarray(temperatures), np.asarray(socs), np.asarray(rows, dtype=np.float64)
    return np.stack([interpolate_grid(t, s, v, float(temp), soc_grid) for temp in TEMPERATURE_GRID_C])


class CellTables:
    """Stacked tables of several cell models; cells refer to their model by index."""

    def __init__(self, models: Sequence[CellModel]) -> None:
        self.models = tuple(models)
        self.pairs = max((len(m.spec.equivalent_circuit.rc) for m in models), default=1)
        soc_grid = np.linspace(0.0, 1.0, SOC_POINTS)
        per_model = []
        for model in models:
            o, c = model.spec.ocv, model.spec.equivalent_circuit
            quantities = [
                _resample(o.temperature_c, o.soc, o.voltage_v, soc_grid),
                _resample(o.temperature_c, o.soc, o.hysteresis_v, soc_grid),
                _resample(c.temperature_c, c.soc, c.r0_ohm, soc_grid),
            ]
            for k in range(self.pairs):
                pair = c.rc[k] if k < len(c.rc) else None
                quantities.append(_resample(c.temperature_c, c.soc, pair.r_ohm if pair else None, soc_grid))
                tau = _resample(c.temperature_c, c.soc, pair.tau_s if pair else None, soc_grid)
                quantities.append(np.where(tau > 0.0, tau, 1.0))
            per_model.append(np.stack(quantities))
        if not per_model:
            per_model.append(np.zeros((3 + 2 * self.pairs, len(TEMPERATURE_GRID_C), SOC_POINTS)))
        stacked = np.stack(per_model)  # models x quantities x temperatures x socs
        flat = stacked.transpose(1, 0, 2, 3).reshape(stacked.shape[1], -1)  # quantities x grid points
        self._ocv = np.ascontiguousarray(flat[0])
        self._others = np.ascontiguousarray(flat[1:])  # quantity-major: each gathered row is contiguous
        self._model_stride = len(TEMPERATURE_GRID_C) * SOC_POINTS

    def lookup(self, model_index: IntArray, soc: FloatArray, temperature_c: FloatArray) -> CellParameters:
        """Values at (soc, temperature) for cells of the given models (NaN inputs read the table's edge).

        The OCV is interpolated linearly in SoC (its slope is the filter's gain); the other
        parameters vary slowly and are read at the nearest grid point (half a step: 0.25 % SoC).
        """
        return self.lookup_on_rows(self.rows(model_index, temperature_c), soc)

    def lookup_on_rows(self, rows: IntArray, soc: FloatArray) -> CellParameters:
        """`lookup` on rows from `rows`."""
        flat, fraction = self._on_row(rows, soc)
        ocv_v, ocv_slope_v = self._ocv_at(flat, fraction)
        others = np.take(self._others, flat + (fraction >= 0.5), axis=1)
        return CellParameters(
            ocv_v=ocv_v,
            ocv_slope_v=ocv_slope_v,
            hysteresis_v=others[0],
            r0_ohm=others[1],
            rc_r_ohm=others[2::2],
            rc_tau_s=others[3::2],
        )

    def rows(self, model_index: IntArray, temperature_c: FloatArray) -> IntArray:
        """Where each cell's (model, temperature) row starts, for repeated queries at changing SoC."""
        row = np.fmin(np.fmax(np.rint(temperature_c - TEMPERATURE_GRID_C[0]), 0.0),
                      len(TEMPERATURE_GRID_C) - 1).astype(np.intp)
        result: IntArray = model_index * self._model_stride + row * SOC_POINTS
        return result

    def ocv_on_rows(self, rows: IntArray, soc: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The OCV and its slope dOCV/dSoC as `lookup` gives them, on rows from `rows`."""
        return self._ocv_at(*self._on_row(rows, soc))

    def _ocv_at(self, flat: IntArray, fraction: FloatArray) -> tuple[FloatArray, FloatArray]:
        ocv_below = np.take(self._ocv, flat)
        ocv_step = np.take(self._ocv, flat + 1) - ocv_below
        return ocv_below + fraction * ocv_step, ocv_step / SOC_STEP

    @staticmethod
    def _on_row(rows: IntArray, soc: FloatArray) -> tuple[IntArray, FloatArray]:
        position = np.fmin(np.fmax(soc, 0.0), 1.0) / SOC_STEP  # fmax/fmin also turn NaN into the bound
        low = np.minimum(position.astype(np.intp), SOC_POINTS - 2)
        return rows + low, position - low
