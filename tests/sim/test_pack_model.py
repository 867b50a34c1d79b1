"""Physics sanity of the equivalent-circuit pack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gateway.bms.cell_model import CellModel, load_cell_model
from gateway.sim.pack_model import PackModel, sensor_positions


@pytest.fixture(params=["nmc-200ah", "lfp-230ah"])
def cell(request: pytest.FixtureRequest, mappings_dir: Path) -> CellModel:
    return load_cell_model(mappings_dir, request.param)


def make_model(cell: CellModel, seed: int = 1, soc: float = 0.6, cells: int = 32) -> PackModel:
    return PackModel(cell, cells, 8, initial_soc=soc, ambient_c=25.0, rng=np.random.default_rng(seed))


def test_discharge_lowers_soc_by_charge_over_capacity(cell: CellModel) -> None:
    model = make_model(cell)
    before = model.soc.copy()
    for _ in range(600):
        assert model.step(1.0, -100.0) == -100.0
    expected = 100.0 * 600.0 / 3600.0 / model.capacity_ah
    np.testing.assert_allclose(before - model.soc, expected, rtol=1e-9)


def test_charging_raises_and_discharging_lowers_the_terminal_voltage(cell: CellModel) -> None:
    charging, discharging = make_model(cell), make_model(cell)
    ocv = charging.ocv_v.copy()
    charging.step(0.1, 100.0)
    discharging.step(0.1, -100.0)
    assert np.all(charging.cell_voltage_v > ocv)
    assert np.all(discharging.cell_voltage_v < ocv)
    assert charging.pack_voltage_v == pytest.approx(float(np.sum(charging.cell_voltage_v)))


def test_voltage_stays_within_the_cell_limits_at_both_ends(cell: CellModel) -> None:
    model = make_model(cell, soc=0.5)
    limits = cell.limits
    highest, lowest = [], []
    for _ in range(2400):
        model.step(1.0, 2.0 * cell.nominal_capacity_ah)
        highest.append(float(np.max(model.cell_voltage_v)))
    assert model.current_a < 0.15 * cell.nominal_capacity_ah  # the first full cell tapers the charge (CV)
    assert float(np.max(model.soc)) == pytest.approx(1.0, abs=0.02)
    for _ in range(2400):
        model.step(1.0, -3.0 * cell.nominal_capacity_ah)
        lowest.append(float(np.min(model.cell_voltage_v)))
    assert model.current_a > -0.02 * cell.nominal_capacity_ah
    assert float(np.min(model.soc)) == pytest.approx(0.0, abs=0.01)
    assert max(highest) <= limits.max_charge_voltage_v
    assert min(lowest) >= limits.min_discharge_voltage_v
    assert np.all((model.soc >= 0.0) & (model.soc <= 1.0))


def test_joule_heating_warms_the_cells_and_cooling_returns_them_to_ambient(cell: CellModel) -> None:
    model = make_model(cell)
    for _ in range(1800):
        model.step(1.0, -cell.nominal_capacity_ah * 0.5)
    warm = model.temperature_c.copy()
    assert np.all(warm > 25.5)
    for _ in range(6 * 60):
        model.step(60.0, 0.0)
    np.testing.assert_allclose(model.temperature_c, 25.0, atol=0.2)


def test_an_open_contactor_carries_no_current(cell: CellModel) -> None:
    model = make_model(cell)
    model.contactor_closed = False
    soc = model.soc.copy()
    assert model.step(1.0, -100.0) == 0.0
    np.testing.assert_array_equal(model.soc, soc)
    np.testing.assert_allclose(model.cell_voltage_v, model.ocv_v)


def test_balancing_bleeds_only_the_masked_cells(cell: CellModel) -> None:
    model = make_model(cell)
    model.balancing_mask[[2, 7]] = True
    soc = model.soc.copy()
    for _ in range(3600):
        model.step(1.0, 0.0)
    drop = soc - model.soc
    np.testing.assert_allclose(drop[[2, 7]], 0.1 / model.capacity_ah[[2, 7]], rtol=1e-9)
    assert np.all(drop[np.arange(32) != 2][np.arange(31) != 6] == 0.0)
    assert model.balancing_active


def test_manufacturing_spread_is_seeded_and_bounded(cell: CellModel) -> None:
    first, again, other = make_model(cell, seed=7), make_model(cell, seed=7), make_model(cell, seed=8)
    np.testing.assert_array_equal(first.base_capacity_ah, again.base_capacity_ah)
    np.testing.assert_array_equal(first.r0_ohm, again.r0_ohm)
    assert not np.array_equal(first.base_capacity_ah, other.base_capacity_ah)
    capacity = first.base_capacity_ah / cell.nominal_capacity_ah
    r0 = first.r0_ohm / cell.r0_ohm
    assert np.all(np.abs(capacity - 1.0) <= 0.02 + 1e-12)
    assert np.std(capacity) > 0.0
    assert np.all(np.abs(r0 - 1.0) <= 0.05 + 1e-12)
    assert np.std(r0) > 0.0


def test_sensors_are_spread_evenly_over_the_cells() -> None:
    assert sensor_positions(32, 8).tolist() == [0, 4, 9, 13, 18, 22, 27, 31]
    assert sensor_positions(24, 1).tolist() == [0]
    assert sensor_positions(4, 4).tolist() == [0, 1, 2, 3]
