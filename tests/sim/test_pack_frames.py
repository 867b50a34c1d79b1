"""What a simulated pack sends decodes with the gateway's FrameDecoder and matches its physics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.codec.protocol import PackProtocol
from gateway.domain.measurement import ArrayField, BoundField, ScalarField
from gateway.errors import ConfigError
from gateway.settings import SimulatedFault
from gateway.sim.pack_simulator import PackSimulator
from tests.sim.helpers import BusPair, Gateway, make_pack, make_settings, values_of


def test_status_and_every_cell_page_each_tick_temperatures_each_second(
        bus_pair: Callable[[], BusPair], protocol: PackProtocol, mappings_dir: Path) -> None:
    sim_bus, gateway_bus = bus_pair()
    pack = PackSimulator.from_settings(make_settings(), 0, sim_bus, mappings_dir)
    gateway = Gateway(gateway_bus, protocol)
    per_tick = []
    for _ in range(20):
        pack.tick(0.1)
        per_tick.append([frame.message for frame in gateway.drain()])
    assert gateway.rejected == {}
    assert per_tick[0] == ["PackStatus"] + ["CellVoltages"] * 11 + ["Temperatures"] * 3
    assert per_tick[1] == ["PackStatus"] + ["CellVoltages"] * 11
    # temperatures at 0 s (the first tick), 1 s and 2 s of simulated time
    assert [i for i, ticks in enumerate(per_tick) if "Temperatures" in ticks] == [0, 9, 19]
    assert sum(ticks.count("Temperatures") for ticks in per_tick) == 3 * 3
    assert pack.frames_sent == gateway.received
    assert pack.send_errors == 0


def test_cell_voltages_round_trip_within_one_millivolt(
        bus_pair: Callable[[], BusPair], protocol: PackProtocol, mappings_dir: Path) -> None:
    sim_bus, gateway_bus = bus_pair()
    pack = PackSimulator.from_settings(make_settings(), 0, sim_bus, mappings_dir)
    gateway = Gateway(gateway_bus, protocol)
    pack.tick(0.1)
    received: dict[tuple[BoundField, int], float] = {}
    for frame in gateway.drain():
        received.update(values_of(frame))
    truth = pack.truth()
    cells = [received[(ArrayField.CELL_VOLTAGE_V, i)] for i in range(32)]
    assert cells == pytest.approx(truth["cell_voltage_v"], abs=0.0005 + 1e-9)
    assert received[(ArrayField.CELL_VOLTAGE_V, 32)] == 0.0  # unused slot of the last page
    pack_voltage = received[(ScalarField.PACK_VOLTAGE_V, -1)]
    assert pack_voltage == pytest.approx(sum(truth["cell_voltage_v"]), abs=0.006)
    assert received[(ScalarField.PACK_CURRENT_A, -1)] == pytest.approx(-100.0)
    assert truth["current_a"] == -100.0
    assert received[(ScalarField.CONTACTOR_STATE, -1)] == 2
    assert received[(ScalarField.BALANCING_ACTIVE, -1)] == 0
    temperatures = [received[(ArrayField.TEMPERATURE_C, i)] for i in range(8)]
    assert temperatures == pytest.approx(truth["temperature_c"], abs=0.05 + 1e-9)


def test_a_pack_that_does_not_fit_its_protocol_or_fault_is_a_config_error(
        bus_pair: Callable[[], BusPair], mappings_dir: Path) -> None:
    sim_bus, _ = bus_pair()
    settings = make_settings(make_pack(5, SimulatedFault(kind="hot_cell", cell=25), series_cells=24))
    with pytest.raises(ConfigError, match=r"simulation\.packs\[0\]\.faults\[0\]\.cell"):
        PackSimulator.from_settings(settings, 0, sim_bus, mappings_dir)
