"""warming, hot_cell and weak_cell change the physics as documented."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from gateway.bms.cell_model import load_cell_model
from gateway.settings import SimulatedFault
from gateway.sim.faults import FaultSchedule, apply_physical_faults, is_active
from gateway.sim.pack_model import PackModel


def run(mappings_dir: Path, faults: list[SimulatedFault], seconds: int,
        current_a: float = -100.0) -> tuple[PackModel, list[float]]:
    model = PackModel(load_cell_model(mappings_dir, "nmc-200ah"), 32, 8, initial_soc=0.8, ambient_c=25.0,
                      rng=np.random.default_rng(3))
    schedule = FaultSchedule(faults)
    hottest = []
    for second in range(seconds):
        apply_physical_faults(model, schedule, float(second))
        model.step(1.0, current_a)
        hottest.append(float(np.max(model.sensor_temperature_c)))
    return model, hottest


def test_fault_windows() -> None:
    fault = SimulatedFault(kind="silent", start_s=10.0, duration_s=5.0)
    assert [is_active(fault, t) for t in (9.9, 10.0, 14.9, 15.0)] == [False, True, True, False]
    forever = SimulatedFault(kind="silent", start_s=1.0)
    assert is_active(forever, 1e9)


def test_warming_crosses_the_warning_within_four_minutes_and_the_alarm_soon_after(mappings_dir: Path) -> None:
    _, hottest = run(mappings_dir, [SimulatedFault(kind="warming")], 600)
    reaches_45 = next(s for s, t in enumerate(hottest) if t >= 45.0)
    reaches_60 = next(s for s, t in enumerate(hottest) if t >= 60.0)
    assert 120 <= reaches_45 <= 240
    assert 60 <= reaches_60 - reaches_45 <= 240
    assert all(b >= a for a, b in pairwise(hottest))  # climbs steadily


def test_without_faults_the_pack_stays_near_ambient(mappings_dir: Path) -> None:
    _, hottest = run(mappings_dir, [], 600)
    assert hottest[-1] < 30.0


def test_a_hot_cell_settles_magnitude_times_ten_degrees_above_the_others(mappings_dir: Path) -> None:
    model, _ = run(mappings_dir, [SimulatedFault(kind="hot_cell", cell=5, magnitude=1.5)], 600)
    others = np.delete(model.temperature_c, 4)
    assert model.temperature_c[4] - float(np.mean(others)) == pytest.approx(15.0, abs=0.5)
    assert model.sensor_temperature_c[1] == model.temperature_c[4]  # sensor 2 sits on cell 5


def test_a_weak_cell_loses_capacity_and_drains_faster(mappings_dir: Path) -> None:
    model, _ = run(mappings_dir, [SimulatedFault(kind="weak_cell", cell=3, magnitude=1.0)], 1800)
    assert model.capacity_ah[3 - 1] == pytest.approx(0.8 * model.base_capacity_ah[3 - 1])
    drained = 0.8 - model.soc
    assert drained[2] > 1.2 * float(np.median(drained))
    assert int(np.argmin(model.cell_voltage_v)) == 2


def test_a_fault_that_ended_leaves_no_hooks_behind(mappings_dir: Path) -> None:
    fault = SimulatedFault(kind="warming", start_s=0.0, duration_s=10.0)
    model, _ = run(mappings_dir, [fault], 20)
    assert model.cooling_factor == 1.0
    assert not np.any(model.extra_heat_w)
