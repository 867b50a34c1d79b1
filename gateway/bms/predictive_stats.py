"""Statistics shared by the predictive warnings: the median of a cell's peers, and hold timers."""

from __future__ import annotations

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray


def peer_median(values: FloatArray, known: BoolArray, min_peers: int) -> FloatArray:
    """Per element of each row: the median of the *other* known elements of its row.

    NaN where the element is unknown or fewer than `min_peers` others are known. Leaving the element
    itself out matters in small packs: with 4 cells, one outlier moves the plain median.
    """
    rows, columns = values.shape
    ordered = np.sort(np.where(known, values, np.inf), axis=1)  # unknown ones sort last
    others = np.count_nonzero(known, axis=1) - 1
    # Without one element, the others' middle pair is the row's (low, high) pair shifted by one where the
    # element sat at or below it; which of the three cases applies follows from the element's value (equal
    # values are interchangeable, so ties do not matter).
    low = np.maximum((others - 1) // 2, 0)
    high = np.maximum(others // 2, 0)
    start = np.arange(rows) * columns
    at_low, at_high = ordered.take(start + low), ordered.take(start + high)
    after_low = ordered.take(start + np.minimum(low + 1, columns - 1))
    after_high = ordered.take(start + np.minimum(high + 1, columns - 1))
    below = (0.5 * (after_low + after_high))[:, None]
    middle = (0.5 * (at_low + after_high))[:, None]
    above = (0.5 * (at_low + at_high))[:, None]
    median = np.where(values <= at_low[:, None], below, np.where(values > at_high[:, None], above, middle))
    result: FloatArray = np.where(known & (others >= min_peers)[:, None], median, np.nan)
    return result


def row_median(values: FloatArray) -> FloatArray:
    """The median of the finite values of each row (NaN for a row with none); cheaper than np.nanmedian."""
    rows, columns = values.shape
    ordered = np.sort(np.where(np.isnan(values), np.inf, values), axis=1)
    count = np.count_nonzero(np.isfinite(ordered), axis=1)
    start = np.arange(rows) * columns
    low = ordered.take(start + np.maximum((count - 1) // 2, 0))
    high = ordered.take(start + np.maximum(count // 2, 0))
    result: FloatArray = np.where(count > 0, 0.5 * (low + high), np.nan)
    return result


def held_for(held_s: FloatArray, statistic: FloatArray, threshold: FloatArray | float, clear: FloatArray | float,
             hold_s: float, dt_s: float) -> FloatArray:
    """How long `statistic` has been above `threshold`; an active warning (held >= hold_s) is kept while the
    statistic stays above `clear`. Unknown (NaN) statistics reset the timer."""
    above = statistic > threshold
    keep = (held_s >= hold_s) & (statistic > clear)
    result: FloatArray = np.where(above, held_s + dt_s, np.where(keep, held_s, 0.0))
    return result
