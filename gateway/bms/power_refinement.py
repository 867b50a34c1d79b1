"""Newton refinement of the linearised current bounds on the full OCV curve, for each pack's candidate cells.

The OCV's curvature only reaches the horizon's end check (at t = 0+ the SoC has not moved). Refining every
cell would cost several table reads of all cells; instead the cells with the smallest linearised bounds of
each pack, horizon and direction are refined. The curvature can reorder cells whose bounds are close, most at
the steep ends of the OCV curve, so more than one cell is refined (docs/limits.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.cell_conditions import CellConditions
from gateway.bms.cell_tables import CellTables, IntArray
from gateway.bms.inputs import FloatArray
from gateway.bms.voltage_checks import (
    CHECK_TIMES_S,
    DIRECTION_SIGN,
    HORIZON_END_CHECK,
    HORIZONS_S,
    CurrentBounds,
    VoltageChecks,
)

REFINED_CELLS = 3
# Blocks (of packs x cells) that hold each candidate's values, horizons x directions x 1 (broadcast over packs):
_END_CHECK_BLOCK = np.array(HORIZON_END_CHECK)[:, None, None]  # VoltageChecks: the horizon's end check
_END_BOUND_BLOCK = np.array([[direction * len(CHECK_TIMES_S) + end for direction in range(2)]
                             for end in HORIZON_END_CHECK])[:, :, None]  # CurrentBounds.at_check
_BEFORE_END_BLOCK = np.array([[(end - 1) * 2 + direction for direction in range(2)]
                              for end in HORIZON_END_CHECK])[:, :, None]  # CurrentBounds.through_check: before the end


@dataclass(frozen=True)
class _Candidates:
    """The candidate cells' values: arrays are candidates x horizons x directions x packs."""

    rows: IntArray  # CellTables.rows of the cell's model and temperature
    soc: FloatArray
    ocv_v: FloatArray
    soc_per_amp_second: FloatArray
    unloaded_at_end_v: FloatArray
    resistance_at_end_ohm: FloatArray  # the gain without the OCV's rise
    linear_at_end_a: FloatArray  # the linearised bound at the end check
    before_end_a: FloatArray  # the bound over the checks before the end (exact for t = 0+)


def refined_bounds(bounds: CurrentBounds, checks: VoltageChecks, conditions: CellConditions, rows: IntArray,
                   tables: CellTables, cell_voltage_limit_v: FloatArray, rating_a: FloatArray, count: int,
                   newton_steps: int) -> FloatArray:
    """horizons x directions x packs: each pack's bound over its `count` candidate cells (NaN: unknown).

    `rows`: CellTables.rows of every cell; `cell_voltage_limit_v`: directions x packs; `rating_a`: horizons x
    directions x packs, the most the refinement needs to resolve.
    """
    candidates = _gather(bounds, checks, conditions, rows, _smallest(bounds.over_horizon, count))
    refined = _newton_at_end(candidates, tables, cell_voltage_limit_v, rating_a, newton_steps)
    lowest: FloatArray = np.minimum.reduce(np.minimum(candidates.before_end_a, refined), axis=0)  # keeps NaN
    return lowest


def _smallest(over_horizon: FloatArray, count: int) -> IntArray:
    """candidates x horizons x directions x packs: flat indices into packs x cells of the `count` smallest bounds.

    A NaN counts as the smallest, so an unknown cell always becomes a candidate.
    """
    rows = over_horizon.reshape(-1, over_horizon.shape[-1])
    remaining = rows.copy()
    first_of_row = np.arange(len(rows)) * rows.shape[1]
    flat = np.empty((count, len(rows)), dtype=np.intp)
    for rank in range(count):
        flat[rank] = first_of_row + remaining.argmin(axis=1)
        np.put(remaining, flat[rank], np.inf)
    cells = over_horizon.shape[-2] * over_horizon.shape[-1]
    result: IntArray = (flat % cells).reshape(count, *over_horizon.shape[:-1])
    return result


def _gather(bounds: CurrentBounds, checks: VoltageChecks, conditions: CellConditions, rows: IntArray,
            cell: IntArray) -> _Candidates:
    cells = checks.ocv_v.size
    at_end = _END_CHECK_BLOCK * cells + cell
    soc_per_amp_second = np.take(checks.soc_per_amp_second, cell)
    return _Candidates(
        rows=np.take(rows, cell),
        soc=np.take(conditions.soc, cell),
        ocv_v=np.take(checks.ocv_v, cell),
        soc_per_amp_second=soc_per_amp_second,
        unloaded_at_end_v=np.take(checks.unloaded_v, at_end),
        resistance_at_end_ohm=np.take(checks.resistance_ohm, at_end),
        linear_at_end_a=np.take(bounds.at_check, _END_BOUND_BLOCK * cells + cell),
        before_end_a=np.take(bounds.through_check, _BEFORE_END_BLOCK * cells + cell),
    )


def _newton_at_end(cell: _Candidates, tables: CellTables, limit_v: FloatArray, rating_a: FloatArray,
                   newton_steps: int) -> FloatArray:
    """Newton on headroom(x) = sign (limit - V(end, sign x)) = 0 with the OCV read at the predicted end SoC.

    The current is also held to what empties (fills) the cell by the horizon's end: the model ends at SoC 0 and 1.
    """
    sign = DIRECTION_SIGN[:, None]
    moved_per_amp = HORIZONS_S[:, None, None] * cell.soc_per_amp_second  # SoC moved by the end per ampere
    upper_a = np.minimum(rating_a, (0.5 - sign * (cell.soc - 0.5)) / moved_per_amp)  # room: 1 - soc, soc
    magnitude = np.fmin(np.fmax(cell.linear_at_end_a, 0.0), upper_a)  # start in [0, upper]: where it matters
    signed_move = sign * moved_per_amp
    fixed_v = sign * (limit_v - cell.unloaded_at_end_v + cell.ocv_v)  # headroom = fixed - sign OCV(end) - x R
    for _ in range(newton_steps):
        end_ocv_v, end_slope_v = tables.ocv_on_rows(cell.rows, cell.soc + signed_move * magnitude)
        headroom_v = fixed_v - sign * end_ocv_v - magnitude * cell.resistance_at_end_ohm
        step = headroom_v / (cell.resistance_at_end_ohm + end_slope_v * moved_per_amp)
        magnitude = np.minimum(magnitude + step, upper_a)  # np.minimum keeps NaN
    return magnitude
