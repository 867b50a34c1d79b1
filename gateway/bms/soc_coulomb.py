"""Basic SoC: coulomb counting per cell, initialised from the OCV of a resistance-corrected voltage.

The model-based estimator (issue 3) registers beside this one; this stays as the `coulomb` variant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gateway.bms.inputs import BmsInputs, BoolArray, FloatArray
from gateway.bms.pack_parameters import PackParameters


@dataclass(frozen=True)
class CoulombState:
    cell_soc: FloatArray  # packs x cells, NaN until initialised
    initialised: BoolArray  # packs
    ah_charged: FloatArray
    ah_discharged: FloatArray
    wh_charged: FloatArray
    wh_discharged: FloatArray

    @classmethod
    def empty(cls, parameters: PackParameters) -> CoulombState:
        packs, cells = parameters.cell_mask.shape
        zeros = np.zeros(packs)
        return cls(np.full((packs, cells), np.nan), np.zeros(packs, dtype=bool),
                   zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy())


def initial_cell_soc(parameters: PackParameters, inputs: BmsInputs, pack: int) -> FloatArray:
    """SoC of each cell of one pack from its voltage, corrected by the R0 drop of the present current."""
    model = parameters.layouts[pack].cell_model
    current = inputs.pack_current_a[pack] if np.isfinite(inputs.pack_current_a[pack]) else 0.0
    open_circuit = inputs.cell_voltage_v[pack] - current * parameters.r0_ohm[pack]
    soc = model.soc_from_ocv(np.nan_to_num(open_circuit, nan=float(model.ocv_voltage_v[0])))
    return np.where(parameters.cell_mask[pack], soc, np.nan)


def coulomb_step(
    state: CoulombState, inputs: BmsInputs, parameters: PackParameters, fresh: BoolArray, dt_s: float
) -> CoulombState:
    """Advance every initialised, fresh pack by dt; initialise fresh packs seen for the first time."""
    cells_known = np.all(np.isfinite(inputs.cell_voltage_v) | ~parameters.cell_mask, axis=1)
    to_initialise = fresh & ~state.initialised & cells_known
    cell_soc = state.cell_soc.copy()
    for pack in np.flatnonzero(to_initialise):
        cell_soc[pack] = initial_cell_soc(parameters, inputs, int(pack))
    counting = fresh & state.initialised
    current = np.where(counting, np.nan_to_num(inputs.pack_current_a), 0.0)
    delta_ah = current * dt_s / 3600.0
    cell_soc = np.where(
        counting[:, None], np.clip(cell_soc + (delta_ah / parameters.capacity_ah)[:, None], 0.0, 1.0), cell_soc
    )
    delta_wh = delta_ah * np.nan_to_num(inputs.pack_voltage_v)
    return replace(
        state,
        cell_soc=cell_soc,
        initialised=state.initialised | to_initialise,
        ah_charged=state.ah_charged + np.maximum(delta_ah, 0.0),
        ah_discharged=state.ah_discharged + np.maximum(-delta_ah, 0.0),
        wh_charged=state.wh_charged + np.maximum(delta_wh, 0.0),
        wh_discharged=state.wh_discharged + np.maximum(-delta_wh, 0.0),
    )


def pack_soc(cell_soc: FloatArray, cell_mask: BoolArray) -> FloatArray:
    """Usable pack SoC from its cells: s_min / (1 - s_max + s_min) (0 when empty, 1 when full)."""
    masked_min = np.where(cell_mask, cell_soc, np.inf).min(axis=1)
    masked_max = np.where(cell_mask, cell_soc, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        soc = masked_min / (1.0 - masked_max + masked_min)
    return np.where(np.isfinite(soc), np.clip(soc, 0.0, 1.0), np.nan)
