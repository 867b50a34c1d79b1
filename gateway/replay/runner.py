"""Replay a measurement log through `bms_step`, exactly as the live engine runs it, one row per sample."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gateway.bms.cell_model import CellModel
from gateway.bms.estimator import start_capacity, start_cells
from gateway.bms.inputs import BmsInputs, FloatArray
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.protection_rules import build_rules
from gateway.bms.step import BmsOutputs, BmsState, bms_step
from gateway.domain.states import ContactorState
from gateway.logs.measurement_log import MeasurementLog

STALE_TIMEOUT_S = 1e9  # a logged row is fresh when it arrives; gaps are the estimator's business


@dataclass(frozen=True)
class ReplayResult:
    columns: tuple[str, ...]
    rows: FloatArray  # samples x columns


def _columns(cells: int) -> tuple[str, ...]:
    pack = ("time_s", "soc", "soc_sigma", "soh", "soh_resistance", "soc_min", "soc_max", "pack_capacity_ah",
            "current_bias_a")
    per_cell = [f"{name}_{k}" for name in ("soc_cell", "soc_sigma_cell", "capacity_ah", "r0_ohm")
                for k in range(1, cells + 1)]
    return (*pack, *per_cell)


def _row(time_s: float, outputs: BmsOutputs, parameters: PackParameters) -> list[float]:
    pack, cells = outputs.pack, outputs.cells
    resistance = parameters.estimator.reference_pulse_resistance_ohm[0] + cells.delta_r0_ohm[0]
    bias = cells.bias_a[0]
    return [time_s, pack.soc[0], pack.soc_sigma[0], pack.soh_capacity[0], pack.soh_resistance[0],
            pack.min_cell_soc[0], pack.max_cell_soc[0], pack.capacity_ah[0],
            float(np.nanmean(bias)) if np.isfinite(bias).any() else np.nan,
            *cells.soc[0], *cells.soc_sigma[0], *cells.capacity_ah[0], *resistance]


def replay(model: CellModel, log: MeasurementLog, initial_soc: float | None = None,
           capacity_ah: float | None = None) -> ReplayResult:
    cells, sensors = log.series_cells, log.temperature_c.shape[1]
    parameters = PackParameters.build([PackLayout("replay", cells, sensors, model)])
    rules = build_rules(parameters, STALE_TIMEOUT_S, 1.0, temperature_stale_timeout_s=STALE_TIMEOUT_S)
    state = BmsState.empty(parameters, rules)
    if initial_soc is not None:
        everything = np.ones((1, cells), dtype=bool)
        settings = parameters.estimator_settings
        estimator = start_cells(state.estimator, everything, np.full((1, cells), initial_soc),
                                np.full((1, cells), settings.ekf.restored_soc_sigma), parameters.estimator, settings)
        state = replace(state, estimator=estimator)
    if capacity_ah is not None:
        everything = np.ones((1, cells), dtype=bool)
        estimator = start_capacity(state.estimator, everything, np.full((1, cells), capacity_ah),
                                   parameters.estimator, parameters.estimator_settings)
        state = replace(state, estimator=estimator)
    fresh, closed = np.zeros(1), np.full(1, int(ContactorState.CLOSED))
    no_faults = np.zeros(1, dtype=np.int64)
    rows = []
    previous = log.time_s[0]
    for k in range(log.rows):
        voltages = log.cell_voltage_v[k : k + 1]
        inputs = BmsInputs(
            cell_voltage_v=voltages,
            temperature_c=log.temperature_c[k : k + 1],
            pack_voltage_v=np.array([np.nansum(voltages)]),
            pack_current_a=log.current_a[k : k + 1],
            contactor_state=closed,
            pack_fault_flags=no_faults,
            data_age_s=fresh,
            temperature_age_s=fresh,
        )
        time_s = float(log.time_s[k])
        state, outputs = bms_step(state, inputs, parameters, rules, time_s - previous)
        previous = time_s
        rows.append(_row(time_s, outputs, parameters))
    return ReplayResult(_columns(cells), np.asarray(rows, dtype=np.float64))


def write_states(result: ReplayResult, path: Path) -> None:
    np.savetxt(path, result.rows, delimiter=",", header=",".join(result.columns), comments="", fmt="%.7g")
