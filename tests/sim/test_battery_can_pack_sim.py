"""A simulated pack on the common battery CAN protocol: 11-bit frames with its extremes, its own limits, enable
flags, estimates and alarm bits, from the physics of its cells."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import can
import pytest

from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import BoundField, ScalarField
from gateway.sim.pack_bms import RATING_SHARE, AlarmBit
from gateway.sim.pack_simulator import PackSimulator
from tests.sim.helpers import BusPair, drain, make_pack, make_settings

F = ScalarField
PROTOCOL = "battery-can-pack-v1"


@pytest.fixture
def battery_can(mappings_dir: Path) -> PackProtocol:
    return load_protocol(mappings_dir, PROTOCOL)


def one_tick(bus_pair: Callable[[], BusPair], mappings_dir: Path, protocol: PackProtocol,
             **pack: Any) -> tuple[PackSimulator, dict[BoundField, float], list[can.Message]]:
    """The pack after one tick, what the gateway decodes from what it sent, and the messages themselves."""
    sim_bus, gateway_bus = bus_pair()
    settings = make_settings(make_pack(0, protocol=PROTOCOL, **pack), load_profile="idle")
    simulator = PackSimulator.from_settings(settings, 0, sim_bus, mappings_dir)
    simulator.tick(0.1)
    messages = drain(gateway_bus)
    decoder = FrameDecoder([protocol])
    values: dict[BoundField, float] = {}
    for m in messages:
        decoded = decoder.decode(CanFrame("sim", m.arbitration_id, bytes(m.data), m.timestamp, m.is_extended_id))
        values |= {value.field: value.value for value in decoded.values}
    return simulator, values, messages


def test_it_sends_its_frames_with_11_bit_identifiers(bus_pair: Callable[[], BusPair], mappings_dir: Path,
                                                     battery_can: PackProtocol) -> None:
    simulator, values, messages = one_tick(bus_pair, mappings_dir, battery_can)
    assert sorted(m.arbitration_id for m in messages) == [0x351, 0x355, 0x356, 0x359, 0x35C, 0x373]
    assert not any(m.is_extended_id for m in messages)
    model = simulator.model
    assert values[F.MIN_CELL_VOLTAGE_V] == pytest.approx(model.cell_voltage_v.min(), abs=0.0006)
    assert values[F.MAX_CELL_VOLTAGE_V] == pytest.approx(model.cell_voltage_v.max(), abs=0.0006)
    assert values[F.MAX_TEMPERATURE_C] == pytest.approx(model.sensor_temperature_c.max(), abs=0.6)
    assert values[F.PACK_VOLTAGE_V] == pytest.approx(model.pack_voltage_v, abs=0.006)
    assert values[F.PACK_REPORTED_SOC] == pytest.approx(model.soc.mean(), abs=0.006)
    limits = model.cell.limits
    assert values[F.PACK_DISCHARGE_CURRENT_LIMIT_A] == pytest.approx(
        RATING_SHARE * limits.max_continuous_discharge_c_rate * model.cell.nominal_capacity_ah)
    assert values[F.PACK_CHARGE_VOLTAGE_LIMIT_V] < model.series_cells * limits.max_charge_voltage_v
    assert (values[F.PACK_CHARGE_ENABLED], values[F.PACK_DISCHARGE_ENABLED]) == (1.0, 1.0)
    assert (values[F.PACK_PROTECTION_FLAGS], values[F.PACK_WARNING_FLAGS]) == (0.0, 0.0)


def test_near_full_the_charge_limit_tapers_and_at_full_charging_is_disabled(
        bus_pair: Callable[[], BusPair], mappings_dir: Path, battery_can: PackProtocol) -> None:
    _, middle, _ = one_tick(bus_pair, mappings_dir, battery_can, initial_soc=0.6)
    _, near_full, _ = one_tick(bus_pair, mappings_dir, battery_can, initial_soc=0.95)
    _, full, _ = one_tick(bus_pair, mappings_dir, battery_can, initial_soc=1.0)
    assert 0.0 < near_full[F.PACK_CHARGE_CURRENT_LIMIT_A] < 0.6 * middle[F.PACK_CHARGE_CURRENT_LIMIT_A]
    assert (full[F.PACK_CHARGE_ENABLED], full[F.PACK_CHARGE_CURRENT_LIMIT_A]) == (0.0, 0.0)
    assert full[F.PACK_DISCHARGE_ENABLED] == 1.0
    assert int(full[F.PACK_WARNING_FLAGS]) & AlarmBit.CELL_OVERVOLTAGE  # close to the cells' maximum voltage


def test_a_cell_beyond_the_cell_models_limits_sets_a_protection_bit(
        bus_pair: Callable[[], BusPair], mappings_dir: Path, battery_can: PackProtocol) -> None:
    _, hot, _ = one_tick(bus_pair, mappings_dir, battery_can, ambient_c=65.0)  # nmc-200ah: discharge up to 60 degC
    assert int(hot[F.PACK_PROTECTION_FLAGS]) == AlarmBit.OVERTEMPERATURE
    assert (hot[F.PACK_CHARGE_ENABLED], hot[F.PACK_DISCHARGE_ENABLED]) == (0.0, 0.0)
    assert hot[F.PACK_CHARGE_CURRENT_LIMIT_A] == hot[F.PACK_DISCHARGE_CURRENT_LIMIT_A] == 0.0
