"""The model-based current prediction against a brute-force, time-stepped simulation of the same cell model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gateway.bms.cell_conditions import CellConditions
from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.power_prediction import horizon_ratings_a, predict_power
from gateway.bms.voltage_checks import LONG_HORIZON_S, SHORT_HORIZON_S
from tests.bms.sop_helpers import pack_parameters, random_conditions, resting_conditions, simulated_voltages

HORIZONS_S = (SHORT_HORIZON_S, LONG_HORIZON_S)
DIRECTIONS = ((0, 1.0), (1, -1.0))  # (column, sign of the current): charge, discharge
TOLERANCE_V = 1e-6  # the found current may touch the limit, rounding aside
# where each direction's limit is often the voltage, not the rating (the LFP curve is flat until nearly full)
SOC_RANGES = {("nmc-200ah", 0): (0.6, 0.99), ("lfp-230ah", 0): (0.9, 1.0), ("nmc-200ah", 1): (0.02, 0.3),
              ("lfp-230ah", 1): (0.02, 0.3)}


def overshoot_v(p: PackParameters, conditions: CellConditions, current_a: FloatArray, horizon_s: float,
                direction: int) -> FloatArray:
    """Per pack, how far the simulated cells go past the direction's voltage limit (negative: inside)."""
    column, sign = DIRECTIONS[direction]
    limit_v = p.cell_voltage_limit_v[:, column]
    voltages = simulated_voltages(p, conditions, sign * current_a, horizon_s)
    return np.nanmax(sign * (voltages - limit_v[None, :, None]), axis=(0, 2))


def leaves_the_soc_range(p: PackParameters, conditions: CellConditions, current_a: FloatArray, horizon_s: float,
                         direction: int) -> BoolArray:
    """Per pack, whether a cell would pass SoC 0 or 1 by the horizon's end (where the model ends)."""
    _, sign = DIRECTIONS[direction]
    end_soc = conditions.soc + sign * current_a[:, None] * horizon_s / (3600.0 * conditions.capacity_ah)
    result: BoolArray = ((end_soc < 0.0) | (end_soc > 1.0)).any(axis=1)
    return result


@pytest.mark.parametrize(("cell_id", "seed"), [("nmc-200ah", 1), ("nmc-200ah", 2), ("nmc-200ah", 3), ("lfp-230ah", 4)])
@pytest.mark.parametrize("horizon", [0, 1])
@pytest.mark.parametrize("direction", [0, 1])
def test_predicted_current_keeps_every_cell_inside_and_2_percent_more_does_not(cell_id: str, seed: int, horizon: int,
                                                                               direction: int) -> None:
    p = pack_parameters(packs=120, cells=6, cell_id=cell_id)
    conditions = random_conditions(p, seed, SOC_RANGES[cell_id, direction])
    prediction = predict_power(conditions, p)
    current = prediction.current_a[horizon, :, direction]
    rating = horizon_ratings_a(p)[horizon, :, direction]
    assert (current >= 0.0).all()
    assert (current <= rating).all()
    carrying = current > 0.0
    assert carrying.sum() > 60
    inside = overshoot_v(p, conditions, current, HORIZONS_S[horizon], direction)
    assert inside[carrying].max() <= TOLERANCE_V
    limited_by_voltage = carrying & (current < rating)
    assert limited_by_voltage.sum() > 10
    beyond = overshoot_v(p, conditions, 1.02 * current, HORIZONS_S[horizon], direction)
    assert ((beyond > 0.0) | leaves_the_soc_range(p, conditions, 1.02 * current, HORIZONS_S[horizon],
                                                  direction))[limited_by_voltage].all()


def test_a_cell_already_past_its_limit_gives_its_pack_zero() -> None:
    p = pack_parameters(packs=3, cells=4)
    conditions = resting_conditions(p, soc=0.5)
    soc = conditions.soc.copy()
    soc[0, 2] = 1.0  # OCV at the charge limit: any charge current goes past it
    soc[1, 1] = 0.02
    branch = conditions.rc_current_a.copy()
    branch[:, 1, 1] = -400.0  # after a heavy discharge its voltage is below the discharge limit even at rest
    prediction = predict_power(dataclasses.replace(conditions, soc=soc, rc_current_a=branch), p)
    assert (prediction.current_a[:, 0, 0] == 0.0).all()
    assert (prediction.current_a[:, 1, 1] == 0.0).all()
    assert (prediction.current_a[:, 0, 1] > 0.0).all()  # the other direction is fine
    assert (prediction.current_a[:, 1, 0] > 0.0).all()
    assert (prediction.current_a[:, 2] > 0.0).all()


def test_at_rest_in_the_middle_the_ratings_bind() -> None:
    p = pack_parameters(packs=1, cells=4)
    prediction = predict_power(resting_conditions(p, soc=0.5), p)
    assert prediction.discharge_10s_a[0] == pytest.approx(p.pulse_discharge_current_a[0])
    assert prediction.discharge_30s_a[0] == pytest.approx(p.max_discharge_current_a[0])
    assert prediction.charge_10s_a[0] == pytest.approx(p.pulse_charge_current_a[0])
    assert prediction.charge_30s_a[0] == pytest.approx(p.max_charge_current_a[0])


@pytest.mark.parametrize("field", ["soc", "temperature_c", "capacity_ah", "delta_r0_ohm", "hysteresis"])
def test_an_unknown_input_of_one_cell_gives_its_pack_zero(field: str) -> None:
    p = pack_parameters(packs=2, cells=4)
    conditions = resting_conditions(p, soc=0.6)
    values = getattr(conditions, field).copy()
    values[0, 3] = np.nan
    prediction = predict_power(dataclasses.replace(conditions, **{field: values}), p)
    assert (prediction.current_a[:, 0] == 0.0).all()
    assert (prediction.current_a[:, 1] > 0.0).all()


def test_an_unknown_branch_current_gives_its_pack_zero() -> None:
    p = pack_parameters(packs=2, cells=4)
    conditions = resting_conditions(p, soc=0.6)
    branch = conditions.rc_current_a.copy()
    branch[1, 1, 0] = np.nan
    prediction = predict_power(dataclasses.replace(conditions, rc_current_a=branch), p)
    assert (prediction.current_a[:, 1] == 0.0).all()
    assert (prediction.current_a[:, 0] > 0.0).all()


def test_packs_of_different_lengths_ignore_the_cells_they_do_not_have() -> None:
    p = pack_parameters(cells_per_pack=[6, 2, 4])
    conditions = random_conditions(p, seed=7, soc_range=(0.9, 0.95))
    prediction = predict_power(conditions, p)
    assert np.isfinite(prediction.current_a).all()
    assert (prediction.charge_30s_a > 0.0).all()
    for pack in range(3):  # each pack alone gives the same answer
        alone = pack_parameters(cells_per_pack=[int(p.series_cells[pack])])
        cells = int(p.series_cells[pack])
        single = dataclasses.replace(
            conditions, soc=conditions.soc[pack : pack + 1, :cells],
            temperature_c=conditions.temperature_c[pack : pack + 1, :cells],
            rc_current_a=conditions.rc_current_a[:, pack : pack + 1, :cells],
            hysteresis=conditions.hysteresis[pack : pack + 1, :cells],
            capacity_ah=conditions.capacity_ah[pack : pack + 1, :cells],
            delta_r0_ohm=conditions.delta_r0_ohm[pack : pack + 1, :cells])
        assert predict_power(single, alone).current_a[:, 0] == pytest.approx(prediction.current_a[:, pack])


def test_the_longer_horizon_never_allows_more() -> None:
    p = pack_parameters(packs=200, cells=4)
    prediction = predict_power(random_conditions(p, seed=11), p)
    assert (prediction.current_a[1] <= prediction.current_a[0] + 1e-9).all()


def test_pack_voltage_model_sums_the_cells() -> None:
    p = pack_parameters(packs=1, cells=4)
    conditions = resting_conditions(p, soc=0.5)
    prediction = predict_power(conditions, p)
    current = np.array([[100.0, 100.0]])
    charge_v, discharge_v = prediction.pack_voltage.lowest_v(current)[0]
    simulated = simulated_voltages(p, conditions, np.array([100.0]), LONG_HORIZON_S)[:, 0].sum(axis=1)
    assert charge_v == pytest.approx(simulated[0], abs=1e-3)  # charging: lowest right at the start
    simulated = simulated_voltages(p, conditions, np.array([-100.0]), LONG_HORIZON_S)[:, 0].sum(axis=1)
    assert discharge_v == pytest.approx(simulated[-1], abs=5e-3)  # discharging: lowest at the end (OCV linearised)


def test_the_ocv_query_on_rows_reads_what_lookup_reads() -> None:
    p = pack_parameters(packs=50, cells=4)
    conditions = random_conditions(p, seed=5, soc_range=(-0.05, 1.05))
    tables, model_index = p.estimator.arrays.tables, p.estimator.arrays.model_index
    full = tables.lookup(model_index, conditions.soc, conditions.temperature_c)
    ocv_v, slope_v = tables.ocv_on_rows(tables.rows(model_index, conditions.temperature_c), conditions.soc)
    assert np.array_equal(ocv_v, full.ocv_v)
    assert np.array_equal(slope_v, full.ocv_slope_v)
