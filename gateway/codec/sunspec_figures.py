"""Highest, lowest and mean of a pack's cells or sensors with their 1-based positions, as SunSpec reports them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NAN = math.nan


@dataclass(frozen=True, slots=True)
class Extremes:
    highest: float = NAN
    highest_at: float = NAN  # 1-based position; NaN when nothing is known
    lowest: float = NAN
    lowest_at: float = NAN
    mean: float = NAN

    @classmethod
    def of(cls, values: Sequence[float]) -> Extremes:
        """Over one pack's cells or sensors; the first of equal values gives the position."""
        return across([(v, float(i)) for i, v in enumerate(values, start=1)])


def across(items: Sequence[tuple[float, float]]) -> Extremes:
    """Extremes over (value, position) pairs, e.g. one per pack with the pack's 1-based index."""
    known = [(v, p) for v, p in items if not math.isnan(v)]
    if not known:
        return Extremes()
    highest = max(known, key=lambda item: item[0])
    lowest = min(known, key=lambda item: item[0])
    return Extremes(highest[0], highest[1], lowest[0], lowest[1], sum(v for v, _ in known) / len(known))
