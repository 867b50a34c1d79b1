"""The simulator on real python-can virtual buses: commands, identity, pacing, ground truth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import can
import pytest

from gateway.codec.can_encoder import EncodedFrame, FrameEncoder
from gateway.codec.protocol import PackProtocol
from gateway.domain.measurement import BoundField, CommandField, CommandKind, IdentityField, ScalarField
from gateway.errors import ConfigError
from gateway.settings import SimulationSettings
from gateway.sim.simulator import Simulation, run_simulation
from tests.sim.helpers import BusPair, Gateway, make_pack, make_settings, values_of

Values = dict[tuple[BoundField, int], float]
Truth = dict[str, Any]


def send(bus: can.BusABC, frame: EncodedFrame) -> None:
    bus.send(can.Message(arbitration_id=frame.arbitration_id, data=frame.data, is_extended_id=True))


def two_packs(**overrides: object) -> SimulationSettings:
    return make_settings(make_pack(5, serial_number=4242),
                         make_pack(6, cell_model="lfp-230ah", series_cells=24, temperature_sensors=4,
                                   serial_number=77),
                         **overrides)


async def test_an_identity_request_is_answered_with_three_pages(
        bus_pair: Callable[[], BusPair], protocol: PackProtocol, mappings_dir: Path) -> None:
    sim_bus, gateway_bus = bus_pair()
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulation(two_packs(), {"sim": sim_bus}, mappings_dir, stop))
    gateway = Gateway(gateway_bus, protocol)
    send(gateway_bus, FrameEncoder(protocol).encode_command(CommandKind.IDENTITY_REQUEST, 6, {}))
    identity: list[Values] = []
    for _ in range(200):
        await asyncio.sleep(0.01)
        identity += [values_of(f) for f in gateway.drain() if f.message == "PackIdentity"]
        if len(identity) == 3:
            break
    stop.set()
    await asyncio.wait_for(task, 2.0)
    assert gateway.rejected == {}
    assert all(f.node_address in {5, 6} for f in gateway.decoded)
    assert [f.node_address for f in gateway.decoded if f.message == "PackIdentity"] == [6, 6, 6]
    merged = {key: value for page in identity for key, value in page.items()}
    assert {field: merged[(field, -1)] for field in IdentityField} == {
        IdentityField.SERIAL_NUMBER: 77, IdentityField.CHEMISTRY: 2, IdentityField.FIRMWARE_MAJOR: 1,
        IdentityField.FIRMWARE_MINOR: 4, IdentityField.FIRMWARE_PATCH: 2, IdentityField.CELL_COUNT: 24,
        IdentityField.SENSOR_COUNT: 4, IdentityField.NOMINAL_CAPACITY_AH: 230.0,
    }


def test_contactor_and_balancing_commands(
        bus_pair: Callable[[], BusPair], protocol: PackProtocol, mappings_dir: Path) -> None:
    sim_bus, gateway_bus = bus_pair()
    simulation = Simulation(two_packs(), {"sim": sim_bus}, mappings_dir)
    gateway = Gateway(gateway_bus, protocol)
    encoder = FrameEncoder(protocol)

    def command(kind: CommandKind, node: int, values: dict[BoundField, float]) -> tuple[Values, Truth]:
        send(gateway_bus, encoder.encode_command(kind, node, values))
        simulation.poll_commands()
        simulation.tick()
        status = [values_of(f) for f in gateway.drain()
                  if f.message == "PackStatus" and f.node_address == node]
        return status[-1], simulation.truth()["packs"][node - 5]

    status, truth = command(CommandKind.CONTACTOR_OPEN, 5, {CommandField.OPEN_REQUEST: 1})
    assert truth["contactor_closed"] is False
    assert truth["current_a"] == 0.0
    assert status[(ScalarField.CONTACTOR_STATE, -1)] == 0
    assert status[(ScalarField.PACK_CURRENT_A, -1)] == 0.0
    assert simulation.truth()["packs"][1]["contactor_closed"] is True  # the other pack is not addressed
    status, truth = command(CommandKind.CONTACTOR_OPEN, 5, {CommandField.OPEN_REQUEST: 0})
    assert truth["contactor_closed"] is True
    assert status[(ScalarField.PACK_CURRENT_A, -1)] == -100.0
    status, truth = command(CommandKind.BALANCING, 6, {CommandField.BALANCING_ENABLE: 1,
                                                       CommandField.BALANCING_MASK: 0b101 | 1 << 23})
    assert truth["balancing_cells"] == [1, 3, 24]
    assert status[(ScalarField.BALANCING_ACTIVE, -1)] == 1
    status, truth = command(CommandKind.BALANCING, 6, {CommandField.BALANCING_ENABLE: 0,
                                                       CommandField.BALANCING_MASK: 0b101})
    assert truth["balancing_cells"] == []
    assert status[(ScalarField.BALANCING_ACTIVE, -1)] == 0
    assert simulation.packs[0].commands == {"contactor_open": 2}
    assert simulation.packs[1].commands == {"balancing": 2}


def test_invalid_commands_are_counted_and_ignored(
        bus_pair: Callable[[], BusPair], protocol: PackProtocol, mappings_dir: Path) -> None:
    sim_bus, gateway_bus = bus_pair()
    simulation = Simulation(two_packs(), {"sim": sim_bus}, mappings_dir)
    encoder = FrameEncoder(protocol)
    frame = encoder.encode_command(CommandKind.CONTACTOR_OPEN, 5, {CommandField.OPEN_REQUEST: 1})
    send(gateway_bus, EncodedFrame(frame.arbitration_id, frame.data[:-1] + bytes([frame.data[-1] ^ 1])))
    send(gateway_bus, EncodedFrame(0x123456, b"\x00"))
    simulation.poll_commands()
    assert simulation.command_rejects == {"sim": {"bad_crc": 1, "unknown_id": 1}}
    assert simulation.packs[0].commands == {}
    assert simulation.packs[0].model.contactor_closed


def test_send_failures_are_counted_not_raised(bus_pair: Callable[[], BusPair], mappings_dir: Path) -> None:
    sim_bus, _ = bus_pair()
    simulation = Simulation(make_settings(), {"sim": sim_bus}, mappings_dir)
    sim_bus.shutdown()
    simulation.tick()
    assert simulation.packs[0].send_errors == 15
    assert simulation.packs[0].frames_sent == 0


async def test_time_scale_paces_simulated_time_and_truth_is_written_each_second(
        bus_pair: Callable[[], BusPair], mappings_dir: Path, tmp_path: Path) -> None:
    sim_bus, _ = bus_pair()
    truth_file = tmp_path / "out" / "truth.jsonl"
    settings = two_packs(time_scale=10.0, truth_file=truth_file)
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulation(settings, {"sim": sim_bus}, mappings_dir, stop))
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.wait_for(task, 2.0)
    lines = [json.loads(line) for line in truth_file.read_text(encoding="utf-8").splitlines()]
    assert len(lines) >= 2  # one line per wall-clock second (not more than the run allows)
    assert len(lines) <= 3
    assert lines[1]["time"] - lines[0]["time"] == pytest.approx(1.0, abs=0.25)
    assert lines[1]["sim_time_s"] - lines[0]["sim_time_s"] == pytest.approx(10.0, abs=2.5)
    pack = lines[1]["packs"][1]
    assert pack["node_address"] == 6
    assert len(pack["cell_voltage_v"]) == len(pack["cell_soc"]) == 24
    assert len(pack["temperature_c"]) == 4
    assert pack["sensor_cells"] == [1, 9, 16, 24]
    assert pack["pack_voltage_v"] == pytest.approx(sum(pack["cell_voltage_v"]), abs=1e-3)
    assert pack["current_a"] == pytest.approx(-115.0)
    assert pack["contactor_closed"] is True
    assert pack["silent"] is False


def test_packs_must_name_an_open_bus_and_distinct_nodes(bus_pair: Callable[[], BusPair],
                                                        mappings_dir: Path) -> None:
    sim_bus, _ = bus_pair()
    settings = make_settings(make_pack(5), make_pack(5), make_pack(7, bus="other"))
    with pytest.raises(ConfigError) as raised:
        Simulation(settings, {"sim": sim_bus}, mappings_dir)
    assert [p.key for p in raised.value.problems] == ["simulation.packs[1].node_address",
                                                      "simulation.packs[2].bus"]


async def test_cancelling_the_task_stops_it(bus_pair: Callable[[], BusPair], mappings_dir: Path) -> None:
    sim_bus, _ = bus_pair()
    task = asyncio.create_task(run_simulation(make_settings(), {"sim": sim_bus}, mappings_dir))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
