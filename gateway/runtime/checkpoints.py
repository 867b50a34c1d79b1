"""Estimator state <-> store checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from gateway.adapters.state_store import PackCheckpoint
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.soc_coulomb import CoulombState


def restore(state: CoulombState, parameters: PackParameters,
            saved: Mapping[str, PackCheckpoint]) -> tuple[CoulombState, list[str]]:
    """Apply matching checkpoints (same cell model and cell count); return the restored pack ids."""
    cell_soc = state.cell_soc.copy()
    initialised = state.initialised.copy()
    counters = {name: getattr(state, name).copy()
                for name in ("ah_charged", "ah_discharged", "wh_charged", "wh_discharged")}
    restored = []
    for i, layout in enumerate(parameters.layouts):
        checkpoint = saved.get(layout.pack_id)
        if checkpoint is None or checkpoint.cell_model != layout.cell_model.cell_id \
                or len(checkpoint.cell_soc) != layout.series_cells:
            continue
        cell_soc[i, : layout.series_cells] = checkpoint.cell_soc
        initialised[i] = True
        for name, values in counters.items():
            values[i] = getattr(checkpoint, name)
        restored.append(layout.pack_id)
    return replace(state, cell_soc=cell_soc, initialised=initialised, **counters), restored


def checkpoints_of(state: CoulombState, parameters: PackParameters) -> list[PackCheckpoint]:
    return [
        PackCheckpoint(
            pack_id=layout.pack_id,
            cell_model=layout.cell_model.cell_id,
            cell_soc=tuple(np.asarray(state.cell_soc[i, : layout.series_cells]).tolist()),
            ah_charged=float(state.ah_charged[i]),
            ah_discharged=float(state.ah_discharged[i]),
            wh_charged=float(state.wh_charged[i]),
            wh_discharged=float(state.wh_discharged[i]),
        )
        for i, layout in enumerate(parameters.layouts)
        if state.initialised[i]
    ]
