"""Fit quality: the cell model's terminal voltage over a whole test, against the measured one."""

from __future__ import annotations

import math

import numpy as np

from gateway.bms.cell_model import CellModel, FitQuality
from gateway.bms.cell_tables import CellTables
from gateway.cellfit.segments import FloatArray, charge_throughput_ah
from gateway.logs.measurement_log import MeasurementLog


def model_voltage(model: CellModel, log: MeasurementLog, start_soc: float, capacity_ah: float) -> FloatArray:
    """Open-loop simulation: SoC by exact coulomb counting, RC branches and hysteresis integrated exactly."""
    tables = CellTables([model])
    soc = start_soc + charge_throughput_ah(log.time_s, log.current_a) / capacity_ah
    params = tables.lookup(np.zeros(log.rows, dtype=np.intp), soc, log.temperature_c[:, 0])
    dt = np.diff(log.time_s, prepend=log.time_s[0])
    decay = np.exp(-dt[None, :] / params.rc_tau_s)
    current = log.current_a
    approach = np.exp(-np.abs(current) * dt / (3600.0 * capacity_ah) * model.spec.ocv.hysteresis_rate)
    rc = np.zeros_like(decay)
    hysteresis = np.zeros(log.rows)
    state = [0.0] * decay.shape[0]
    h = 0.0
    for k in range(log.rows):
        for pair in range(decay.shape[0]):
            state[pair] = decay[pair, k] * state[pair] + (1.0 - decay[pair, k]) * current[k]
            rc[pair, k] = state[pair]
        h = approach[k] * h + (1.0 - approach[k]) * math.copysign(1.0, current[k]) * (current[k] != 0.0)
        hysteresis[k] = h
    result: FloatArray = (params.ocv_v + params.hysteresis_v * hysteresis + params.r0_ohm * current
                          + (params.rc_r_ohm * rc).sum(axis=0))
    return result


def fit_quality(model: CellModel, log: MeasurementLog, start_soc: float, capacity_ah: float) -> FitQuality:
    error = model_voltage(model, log, start_soc, capacity_ah) - log.cell_voltage_v[:, 0]
    return FitQuality(
        temperature_c=round(float(np.mean(log.temperature_c[:, 0])), 1),
        voltage_rmse_mv=round(float(np.sqrt(np.mean(error**2))) * 1e3, 2),
        voltage_max_abs_mv=round(float(np.max(np.abs(error))) * 1e3, 1),
    )
