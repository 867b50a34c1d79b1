"""Estimator and usage state <-> store checkpoints, one JSON document per pack.

Everything the estimator learns is saved: SoC, its covariance and the shadow variance, the RC and
hysteresis states, the current bias, the capacity sums and open pair, the resistance sums, and the
usage counters and histograms. Transient fields (the last residual for the R0 steps) restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

import numpy as np

from gateway.adapters.state_store import PackCheckpoint
from gateway.bms.estimator import with_derived
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.step import BmsState

_CELL_PARTS = ("ekf", "capacity")
_RESISTANCE_FIELDS = ("sum_xx", "sum_xy")
FORMAT_VERSION = 2


def _cells_of(array: np.ndarray, pack: int, cells: int) -> Any:
    """The pack's slice of a (..., packs, cells) array as nested lists."""
    return array[..., pack, :cells].tolist()


def _document(state: BmsState, pack: int, cells: int) -> dict[str, Any]:
    document: dict[str, Any] = {"version": FORMAT_VERSION}
    for part in _CELL_PARTS:
        value = getattr(state.estimator, part)
        for f in fields(value):
            array = getattr(value, f.name)
            if isinstance(array, np.ndarray):
                document[f"{part}.{f.name}"] = _cells_of(array.astype(np.float64), pack, cells)
    for name in _RESISTANCE_FIELDS:
        document[f"resistance.{name}"] = _cells_of(getattr(state.estimator.resistance, name), pack, cells)
    for f in fields(state.usage):
        document[f"usage.{f.name}"] = np.asarray(getattr(state.usage, f.name))[pack].tolist()
    return document


def checkpoints_of(state: BmsState, parameters: PackParameters) -> list[PackCheckpoint]:
    return [
        PackCheckpoint(layout.pack_id, layout.cell_model.cell_id, layout.series_cells,
                       _document(state, i, layout.series_cells))
        for i, layout in enumerate(parameters.layouts)
        if bool(state.estimator.ekf.initialised[i, : layout.series_cells].all())
    ]


def _apply(target: Any, prefix: str, document: Mapping[str, Any], pack: int, cells: int) -> Any:
    changes = {}
    for f in fields(target):
        key = f"{prefix}.{f.name}"
        if key not in document:
            continue
        current = getattr(target, f.name)
        updated = current.copy()
        saved = np.asarray(document[key], dtype=current.dtype)
        if updated.ndim >= 2 and prefix != "usage":
            updated[..., pack, :cells] = saved
        else:
            updated[pack] = saved
        changes[f.name] = updated
    return replace(target, **changes)


def restore(state: BmsState, parameters: PackParameters,
            saved: Mapping[str, PackCheckpoint]) -> tuple[BmsState, list[str]]:
    """Apply matching checkpoints (same cell model, cell count and format); return the restored pack ids."""
    estimator, usage = state.estimator, state.usage
    ekf, capacity, resistance = estimator.ekf, estimator.capacity, estimator.resistance
    restored = []
    for i, layout in enumerate(parameters.layouts):
        checkpoint = saved.get(layout.pack_id)
        if checkpoint is None or checkpoint.cell_model != layout.cell_model.cell_id \
                or checkpoint.cells != layout.series_cells or checkpoint.state.get("version") != FORMAT_VERSION:
            continue
        cells = layout.series_cells
        ekf = _apply(ekf, "ekf", checkpoint.state, i, cells)
        capacity = _apply(capacity, "capacity", checkpoint.state, i, cells)
        resistance = _apply(resistance, "resistance", checkpoint.state, i, cells)
        usage = _apply(usage, "usage", checkpoint.state, i, cells)
        restored.append(layout.pack_id)
    learned = replace(estimator, ekf=ekf, capacity=capacity, resistance=resistance)
    return replace(state, estimator=with_derived(learned, parameters.estimator, parameters.estimator_settings),
                   usage=usage), restored
