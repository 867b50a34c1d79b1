"""Pack-level figures from cell estimates: usable SoC with its sigma, usable capacity, SoH."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.arrays import pick
from gateway.bms.inputs import BoolArray, FloatArray, IntArray


@dataclass(frozen=True)
class PackFigures:
    soc: FloatArray
    soc_sigma: FloatArray
    min_cell_soc: FloatArray
    max_cell_soc: FloatArray
    capacity_ah: FloatArray  # usable: charge from the emptiest cell at 0 to the fullest at 1
    soh_capacity: FloatArray  # weakest cell capacity / nominal
    soh_resistance: FloatArray


def _extremes(soc: FloatArray) -> tuple[IntArray, IntArray]:
    """Column of the lowest and of the highest SoC per row; NaN cells never win (all-NaN rows: column 0)."""
    unknown = np.isnan(soc)
    return np.where(unknown, np.inf, soc).argmin(axis=1), np.where(unknown, -np.inf, soc).argmax(axis=1)


def _usable_soc(low: FloatArray, high: FloatArray) -> FloatArray:
    """s_min / (1 - s_max + s_min): 0 when the weakest cell is empty, 1 when the strongest is full."""
    with np.errstate(invalid="ignore", divide="ignore"):
        soc = low / (1.0 - high + low)
    result: FloatArray = np.where(np.isfinite(soc), np.clip(soc, 0.0, 1.0), np.nan)
    return result


def pack_soc(cell_soc: FloatArray, cell_mask: BoolArray) -> FloatArray:
    """Usable pack SoC from its cells."""
    soc = np.where(cell_mask, cell_soc, np.nan)
    low_index, high_index = _extremes(soc)
    return _usable_soc(pick(soc, low_index), pick(soc, high_index))


def pack_figures(cell_soc: FloatArray, cell_sigma: FloatArray, cell_capacity_ah: FloatArray,
                 cell_resistance_growth: FloatArray, nominal_capacity_ah: FloatArray, cell_mask: BoolArray,
                 end_of_life_growth: float) -> PackFigures:
    soc_known = np.where(cell_mask, cell_soc, np.nan)  # outside the mask nothing counts
    low_index, high_index = _extremes(soc_known)
    low, high = pick(soc_known, low_index), pick(soc_known, high_index)
    sigma_low, sigma_high = pick(cell_sigma, low_index), pick(cell_sigma, high_index)
    soc = _usable_soc(low, high)
    with np.errstate(invalid="ignore", divide="ignore"):
        denominator = 1.0 - high + low
        d_low = (1.0 - high) / denominator**2
        d_high = low / denominator**2
        # The cells' errors are mostly common (current sensor, capacity, model), so they add linearly.
        sigma = np.abs(d_low) * sigma_low + np.abs(d_high) * sigma_high
    # fmin/fmax skip NaN; a pack without any estimate yet gets NaN
    capacity = np.where(cell_mask, cell_capacity_ah, np.nan)
    charge_below = soc_known * capacity
    below = np.fmin.reduce(charge_below, axis=1)
    above = np.fmin.reduce(capacity - charge_below, axis=1)
    weakest = np.fmin.reduce(capacity, axis=1)
    growth = np.fmax.reduce(np.where(cell_mask, cell_resistance_growth, np.nan), axis=1)
    soh_resistance = np.clip((end_of_life_growth - growth) / (end_of_life_growth - 1.0), 0.0, 1.0)
    return PackFigures(
        soc=soc,
        soc_sigma=np.where(np.isfinite(soc), sigma, np.nan),
        min_cell_soc=low,
        max_cell_soc=high,
        capacity_ah=below + above,
        soh_capacity=np.clip(weakest / nominal_capacity_ah, 0.0, 1.5),
        soh_resistance=soh_resistance,
    )
