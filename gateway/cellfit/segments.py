"""Splitting a test log into steps of constant current sign, and charge throughput."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
REST_CURRENT_FRACTION = 1e-4  # of the largest current: below this a sample is rest


@dataclass(frozen=True)
class Step:
    start: int  # first row index
    stop: int  # one past the last row index
    sign: int  # +1 charge, -1 discharge, 0 rest

    @property
    def rows(self) -> slice:
        return slice(self.start, self.stop)


def charge_throughput_ah(time_s: FloatArray, current_a: FloatArray) -> FloatArray:
    """Cumulative charge in Ah; row k's current flows over (t[k-1], t[k]] (the logs' convention)."""
    increments = np.diff(time_s, prepend=time_s[0]) * current_a / 3600.0
    result: FloatArray = np.cumsum(increments)
    return result


def current_signs(current_a: FloatArray) -> NDArray[np.int64]:
    threshold = REST_CURRENT_FRACTION * float(np.nanmax(np.abs(current_a)))
    signs: NDArray[np.int64] = np.where(current_a > threshold, 1, np.where(current_a < -threshold, -1, 0))
    return signs


def split_steps(current_a: FloatArray) -> list[Step]:
    signs = current_signs(current_a)
    edges = np.flatnonzero(np.diff(signs)) + 1
    bounds = [0, *edges.tolist(), len(signs)]
    return [Step(a, b, int(signs[a])) for a, b in itertools.pairwise(bounds)]
