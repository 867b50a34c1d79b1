"""A pack slot starts over when another pack takes it (a swap): what the gateway learned belongs to the old pack.

The estimator (SoC, capacity, resistance, current bias), the usage counters, the predictive statistics and the
balancing state of the slot go back to a new pack's; the protection state stays (a latched trip waits for its
authorised reset, whichever pack is in the slot), and the limits ramp up from 0 after admission anyway.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar

import numpy as np

from gateway.bms.step import BmsState

_RESET_PARTS = ("estimator", "usage", "predictive", "predictive_warnings", "balancing")
T = TypeVar("T")


def reset_slots(state: BmsState, empty: BmsState, packs: list[int]) -> BmsState:
    """`state` with the given packs' learned parts taken from `empty` (BmsState.empty of the same site)."""
    if not packs:
        return state
    index = np.array(packs, dtype=np.intp)
    return replace(state, **{part: _reset(getattr(state, part), getattr(empty, part), index)
                             for part in _RESET_PARTS})


def _reset(value: T, empty: T, packs: np.ndarray) -> T:
    """Every array of a (nested) dataclass with the packs' entries from `empty`; the pack axis is the second to
    last of an array of cells, sensors or bands (pairs x packs x cells, packs x cells) and the only one of a
    per-pack array. Other fields (clocks, None) stay."""
    if isinstance(value, np.ndarray) and isinstance(empty, np.ndarray):
        result = value.copy()
        axis = 0 if value.ndim == 1 else value.ndim - 2
        where: list[Any] = [slice(None)] * value.ndim
        where[axis] = packs
        result[tuple(where)] = empty[tuple(where)]
        return result
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: _reset(getattr(value, f.name), getattr(empty, f.name), packs)
                                 for f in fields(value)})
    return value
