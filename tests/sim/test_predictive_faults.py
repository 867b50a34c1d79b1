"""contact_resistance, leak and unstable_current change the physics as documented in gateway/sim/faults.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gateway.bms.cell_model import load_cell_model
from gateway.errors import ConfigError
from gateway.settings import SimulatedFault
from gateway.sim.faults import FaultSchedule, apply_physical_faults, requested_current_a
from gateway.sim.pack_model import PackModel
from gateway.sim.pack_simulator import PackSimulator
from tests.sim.helpers import BusPair, make_pack, make_settings


def model(mappings_dir: Path) -> PackModel:
    return PackModel(load_cell_model(mappings_dir, "nmc-200ah"), 16, 4, initial_soc=0.6, ambient_c=25.0,
                     rng=np.random.default_rng(5))


def run(pack: PackModel, faults: list[SimulatedFault], seconds: int, current_a: float) -> None:
    schedule = FaultSchedule(faults)
    for second in range(seconds):
        apply_physical_faults(pack, schedule, float(second))
        pack.step(1.0, current_a)


def test_contact_resistance_ramps_linearly_to_magnitude_times_r0_over_the_duration(mappings_dir: Path) -> None:
    pack = model(mappings_dir)
    fault = SimulatedFault(kind="contact_resistance", cell=4, magnitude=0.5, start_s=100.0, duration_s=1000.0)
    schedule = FaultSchedule([fault])
    r0 = pack.r0_ohm[3]
    added = []
    for time_s in (50.0, 100.0, 350.0, 600.0, 1099.0, 1100.0):
        apply_physical_faults(pack, schedule, time_s)
        added.append(pack.extra_resistance_ohm[3] / r0)
        assert np.count_nonzero(pack.extra_resistance_ohm) <= 1  # only cell 4
    np.testing.assert_allclose(added, [0.0, 0.0, 0.125, 0.25, 0.4995, 0.0], atol=1e-9)


def test_contact_resistance_drops_voltage_and_heats_the_cell(mappings_dir: Path) -> None:
    faulty, healthy = model(mappings_dir), model(mappings_dir)
    run(faulty, [SimulatedFault(kind="contact_resistance", cell=2, magnitude=1.0)], 600, -200.0)
    run(healthy, [], 600, -200.0)
    drop = healthy.cell_voltage_v - faulty.cell_voltage_v
    assert drop[1] == pytest.approx(200.0 * faulty.r0_ohm[1], rel=0.01)  # a full R0 more at 1C
    assert np.abs(np.delete(drop, 1)).max() < 1e-9
    assert faulty.temperature_c[1] > healthy.temperature_c[1] + 1.0


def test_a_leak_of_c_over_1000_drains_only_its_cell(mappings_dir: Path) -> None:
    faulty, healthy = model(mappings_dir), model(mappings_dir)
    run(faulty, [SimulatedFault(kind="leak", cell=7, magnitude=2.0)], 3600, 0.0)
    run(healthy, [], 3600, 0.0)
    lost = healthy.soc - faulty.soc
    expected = 2.0 * 0.2 * 1.0 / faulty.capacity_ah[6]  # 0.4 A for an hour
    assert lost[6] == pytest.approx(expected, rel=1e-6)
    assert np.abs(np.delete(lost, 6)).max() < 1e-12
    assert faulty.current_a == 0.0  # the pack current does not carry the leak
    assert faulty.temperature_c[6] > healthy.temperature_c[6]  # about 1.5 W inside the cell


def test_unstable_current_adds_a_square_wave_of_a_quarter_c_per_unit_magnitude() -> None:
    schedule = FaultSchedule([SimulatedFault(kind="unstable_current", magnitude=2.0, start_s=10.0,
                                             duration_s=5.0)])
    requests = [requested_current_a(schedule, t, -50.0, 200.0) for t in (9.5, 10.0, 11.0, 12.5, 13.2, 15.0)]
    assert requests == [-50.0, 50.0, -150.0, 50.0, -150.0, -50.0]


def test_the_simulated_pack_applies_the_swing(bus_pair: Callable[[], BusPair], mappings_dir: Path) -> None:
    sim_bus, _ = bus_pair()
    settings = make_settings(make_pack(5, SimulatedFault(kind="unstable_current")), load_profile="idle")
    pack = PackSimulator.from_settings(settings, 0, sim_bus, mappings_dir)
    currents = []
    for _ in range(4):
        pack.advance(1.0)
        currents.append(pack.model.current_a)
    assert currents == [50.0, -50.0, 50.0, -50.0]


def test_a_cell_fault_on_a_cell_the_pack_does_not_have_is_rejected(bus_pair: Callable[[], BusPair],
                                                                     mappings_dir: Path) -> None:
    sim_bus, _ = bus_pair()
    settings = make_settings(make_pack(5, SimulatedFault(kind="leak", cell=33)))
    with pytest.raises(ConfigError, match="cell 33 does not exist"):
        PackSimulator.from_settings(settings, 0, sim_bus, mappings_dir)
