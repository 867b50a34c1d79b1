"""Cell voltages and temperatures made up from a pack's extremes, for packs that report only those (the common
battery CAN protocol's, docs/battery-can.md).

The first cell is the lowest, the last the highest; the cells between share the rest of the pack voltage equally,
clipped into [lowest, highest]. So what the protection rules and limits read (the extremes, their spread), the pack
SoC from its weakest and strongest cell, and the sum of the cells stay what the pack reports; the cells between
are an average, not readings. Temperatures likewise: the first sensor the coldest, the last the hottest, the ones
between the pack's own temperature clipped into that range (the mid-point while it is unknown).
"""

from __future__ import annotations

import numpy as np

from gateway.bms.inputs import FloatArray, IntArray


def spread_between(lowest: FloatArray, highest: FloatArray, between: FloatArray, counts: IntArray,
                   width: int) -> FloatArray:
    """packs x `width`: `lowest` first, `highest` at each pack's `counts`-th place (a single one: the highest),
    `between` clipped into [lowest, highest] in between, NaN beyond `counts`. Serves for arrival times too."""
    index = np.arange(width)[None, :]
    last = counts[:, None] - 1
    low, high = lowest[:, None], highest[:, None]
    values = np.where(index < last, np.clip(between[:, None], low, high), np.nan)
    values = np.where(index == 0, low, values)
    result: FloatArray = np.where(index == last, high, values)
    return result


def cell_voltages(lowest_v: FloatArray, highest_v: FloatArray, pack_voltage_v: FloatArray, counts: IntArray,
                  width: int) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        between = (pack_voltage_v - lowest_v - highest_v) / (counts - 2)
    return spread_between(lowest_v, highest_v, between, counts, width)


def temperatures(lowest_c: FloatArray, highest_c: FloatArray, pack_c: FloatArray, counts: IntArray,
                 width: int) -> FloatArray:
    between = np.where(np.isfinite(pack_c), pack_c, (lowest_c + highest_c) / 2.0)
    return spread_between(lowest_c, highest_c, between, counts, width)


def arrival_times(lowest_s: FloatArray, highest_s: FloatArray, counts: IntArray, width: int) -> FloatArray:
    """Each made-up reading is as old as the older extreme it comes from."""
    return spread_between(lowest_s, highest_s, np.minimum(lowest_s, highest_s), counts, width)
