"""Estimator and usage state <-> store checkpoints, one JSON document per pack.

Everything the estimator learns is saved: SoC, its covariance and the shadow variance, the RC and
hysteresis states, the current bias, the capacity sums and open pair, the resistance sums, and the
usage counters and histograms, and what the predictive warnings learn slowly (the pooled SoC-drift sums, the
resistance-step sums, each pack's habitual current-reversal rate). Transient fields (the last residual for the R0
steps, open rest segments, filters) restart. Latched trips and their acknowledgement are saved too: a restart never
resets a trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np

from gateway.adapters.state_store import PackCheckpoint
from gateway.bms.estimator import with_derived
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.protection import ProtectionState
from gateway.bms.protection_rules import ProtectionRule, ProtectionRules
from gateway.bms.step import BmsState

_CELL_PARTS = ("ekf", "capacity")
_RESISTANCE_FIELDS = ("sum_xx", "sum_xy")
_PREDICTIVE_CELL_FIELDS = (("drift", "pooled_sxx"), ("drift", "pooled_sxy"), ("resistance", "sum_ii"),
                           ("resistance", "sum_iv"))
FORMAT_VERSION = 2


def _cells_of(array: np.ndarray, pack: int, cells: int) -> Any:
    """The pack's slice of a (..., packs, cells) array as nested lists."""
    return array[..., pack, :cells].tolist()


def rule_key(rule: ProtectionRule) -> str:
    """How a saved latch finds its rule again, also in an edited table."""
    return f"{rule.code.label}:{rule.severity.name.lower()}:{rule.quantity.value}"


def _latches(state: BmsState, rules: ProtectionRules, pack: int) -> dict[str, list[str]]:
    protection = state.protection
    return {
        "protection.latched": [rule_key(r) for r, on in zip(rules, protection.latched[:, pack].tolist(), strict=True)
                               if on],
        "protection.acknowledged": [rule_key(r) for r, on in zip(rules, protection.acknowledged[:, pack].tolist(),
                                                                 strict=True) if on],
    }


def _restore_latches(protection: ProtectionState, rules: ProtectionRules, document: Mapping[str, Any],
                     pack: int) -> ProtectionState:
    latched, acknowledged = protection.latched.copy(), protection.acknowledged.copy()
    saved_latched = set(document.get("protection.latched", []))
    saved_acknowledged = set(document.get("protection.acknowledged", []))
    for i, rule in enumerate(rules):
        key = rule_key(rule)
        latched[i, pack] = rule.latching and key in saved_latched
        acknowledged[i, pack] = latched[i, pack] and key in saved_acknowledged
    return replace(protection, latched=latched, acknowledged=acknowledged)


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
    predictive = state.predictive
    for part, name in _PREDICTIVE_CELL_FIELDS:
        document[f"predictive.{part}.{name}"] = _cells_of(getattr(getattr(predictive, part), name), pack, cells)
    document["predictive.current.baseline_per_min"] = float(predictive.current.baseline_per_min[pack])
    return document


def checkpoints_of(state: BmsState, parameters: PackParameters, rules: ProtectionRules,
                   admission: Sequence[Mapping[str, Any]] | None = None) -> list[PackCheckpoint]:
    """Every pack whose estimator has started, which has a latched trip, which was admitted or which a client
    disconnected; `admission`: per pack, the admission's and the remote control's documents, saved alongside."""
    extra = admission or [{} for _ in parameters.layouts]
    return [
        PackCheckpoint(layout.pack_id, layout.cell_model.cell_id, layout.series_cells,
                       _document(state, i, layout.series_cells) | _latches(state, rules, i) | dict(extra[i]))
        for i, layout in enumerate(parameters.layouts)
        if bool(state.estimator.ekf.initialised[i, : layout.series_cells].all())
        or bool(state.protection.latched[:, i].any()) or bool(extra[i].get("admission.granted"))
        or bool(extra[i].get("control.disconnected")) or bool(extra[i].get("control.balancing_disabled"))
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


def restore(state: BmsState, parameters: PackParameters, saved: Mapping[str, PackCheckpoint],
            rules: ProtectionRules) -> tuple[BmsState, list[str]]:
    """Apply matching checkpoints (same cell model, cell count and format); return the restored pack ids."""
    estimator, usage, protection, predictive = state.estimator, state.usage, state.protection, state.predictive
    ekf, capacity, resistance = estimator.ekf, estimator.capacity, estimator.resistance
    drift, steps, current = predictive.drift, predictive.resistance, predictive.current
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
        drift = _apply(drift, "predictive.drift", checkpoint.state, i, cells)
        steps = _apply(steps, "predictive.resistance", checkpoint.state, i, cells)
        current = _apply(current, "predictive.current", checkpoint.state, i, cells)
        protection = _restore_latches(protection, rules, checkpoint.state, i)
        restored.append(layout.pack_id)
    learned = replace(estimator, ekf=ekf, capacity=capacity, resistance=resistance)
    return replace(state, estimator=with_derived(learned, parameters.estimator, parameters.estimator_settings),
                   usage=usage, protection=protection,
                   predictive=replace(predictive, drift=drift, resistance=steps, current=current)), restored
