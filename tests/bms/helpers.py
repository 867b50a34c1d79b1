from __future__ import annotations

import numpy as np

from gateway.bms.cell_model import load_cell_model
from gateway.bms.inputs import BmsInputs
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.predictive import PredictiveWarnings
from gateway.bms.protection_rules import ProtectionRules, build_rules
from gateway.bms.quantities import Quantities, compute_quantities, screen
from gateway.bms.signal_trends import TrendSettings, TrendState, trends_step
from gateway.bms.step import BmsState
from gateway.domain.states import ContactorState
from gateway.settings import DEFAULT_MAPPINGS_DIR

TICK_S = 0.1


def parameters(packs: int = 2, cells: int = 32, sensors: int = 8) -> PackParameters:
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    return PackParameters.build([PackLayout(f"p{i}", cells, sensors, model) for i in range(packs)])


def rules(p: PackParameters, stale_timeout_s: float = 1.0) -> ProtectionRules:
    return build_rules(p, stale_timeout_s, TICK_S)


def inputs(p: PackParameters, *, cell_v: float = 3.75, temp_c: float = 25.0, current_a: float = 0.0,
           age_s: float = 0.05) -> BmsInputs:
    packs, cells = p.cell_mask.shape
    sensors = p.sensor_mask.shape[1]
    return BmsInputs(
        cell_voltage_v=np.full((packs, cells), cell_v),
        temperature_c=np.full((packs, sensors), temp_c),
        pack_voltage_v=np.full(packs, cell_v * cells),
        pack_current_a=np.full(packs, current_a),
        contactor_state=np.full(packs, int(ContactorState.CLOSED)),
        pack_fault_flags=np.zeros(packs, dtype=np.int64),
        data_age_s=np.full(packs, age_s),
        temperature_age_s=np.full(packs, min(age_s, 0.5)),
    )


def empty_state(p: PackParameters, r: ProtectionRules) -> BmsState:
    return BmsState.empty(p, r)


def quantities_of(x: BmsInputs, p: PackParameters) -> Quantities:
    """The quantities of one step with no history (no trends, no model residual, no open request)."""
    readings = screen(x, p)
    _, trends = trends_step(TrendState.empty(p.cell_mask.shape, p.sensor_mask.shape), readings.temperature_c,
                            readings.cell_voltage_v, x.pack_current_a, p.capacity_ah, TICK_S, TrendSettings())
    return compute_quantities(x, p, readings, trends, np.zeros(p.cell_mask.shape), np.zeros(p.pack_count, dtype=bool),
                              PredictiveWarnings.empty(p.cell_mask.shape, p.sensor_mask.shape[1]))
