"""Balancing commands over CAN: sent on change, repeated while bleeding, one stop, 32 bits; and obeyed by the
simulated pack on a python-can virtual bus."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import can
import numpy as np
import pytest

from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import CommandField
from gateway.runtime.balancing_commands import REPEAT_S, BalancingCommander
from gateway.runtime.pack_link import PackLink
from gateway.settings import DEFAULT_MAPPINGS_DIR
from gateway.sim.simulator import Simulation
from tests.sim.helpers import make_pack, make_settings

NODES = (5, 9)


@pytest.fixture
def protocol() -> PackProtocol:
    return load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1")


class Wire:
    """The sending side: real links and encoder, frames kept and decoded as a pack would."""

    def __init__(self, protocol: PackProtocol, cells: int = 32) -> None:
        encoder = FrameEncoder(protocol)
        self.frames: list[tuple[int, bytes]] = []
        self.up = True
        self.decoder = FrameDecoder([protocol], direction="to_pack")
        links = [PackLink(i, node, encoder, self._send) for i, node in enumerate(NODES)]
        self.commander = BalancingCommander(links, len(NODES))
        self.cells = cells

    def _send(self, arbitration_id: int, data: bytes) -> bool:
        if self.up:
            self.frames.append((arbitration_id, data))
        return self.up

    def update(self, now: float, **bleeding: list[int]) -> list[tuple[int, bool, int]]:
        """Send the masks (cells, 0-based, per pack name p0/p1); the (node, enable, mask) sent."""
        mask = np.zeros((len(NODES), self.cells), dtype=bool)
        for name, cells in bleeding.items():
            mask[int(name[1:]), cells] = True
        self.frames.clear()
        self.commander.update(mask, now)
        sent = []
        for arbitration_id, data in self.frames:
            decoded = self.decoder.decode(CanFrame("b", arbitration_id, data, 0.0))
            assert decoded.message == "BalancingCommand"
            values = {value.field: value.value for value in decoded.values}
            sent.append((decoded.node_address, bool(values[CommandField.BALANCING_ENABLE]),
                         int(values[CommandField.BALANCING_MASK])))
        return sent


def test_the_first_update_stops_every_pack_then_only_changes_are_sent(protocol: PackProtocol) -> None:
    wire = Wire(protocol)
    assert wire.update(0.0) == [(5, False, 0), (9, False, 0)]  # a pack left bleeding by a restart stops
    assert wire.update(0.1) == []
    assert wire.update(0.2, p1=[0, 2, 23]) == [(9, True, 0b101 | 1 << 23)]
    assert wire.update(0.3, p1=[0, 2, 23]) == []
    assert wire.update(0.4, p1=[0, 23]) == [(9, True, 1 | 1 << 23)]


def test_bleeding_is_repeated_and_its_end_sent_once(protocol: PackProtocol) -> None:
    wire = Wire(protocol)
    wire.update(0.0)
    assert wire.update(1.0, p0=[3]) == [(5, True, 1 << 3)]
    assert wire.update(1.0 + REPEAT_S - 0.1, p0=[3]) == []
    assert wire.update(1.0 + REPEAT_S, p0=[3]) == [(5, True, 1 << 3)]  # a rebooted pack hears it again
    assert wire.update(7.0) == [(5, False, 0)]
    assert wire.update(7.0 + REPEAT_S) == []
    assert wire.update(7.0 + 10 * REPEAT_S) == []


def test_cells_beyond_the_32_bits_are_never_commanded(protocol: PackProtocol) -> None:
    wire = Wire(protocol, cells=40)
    wire.update(0.0)
    assert wire.update(1.0, p0=[0, 31, 35, 39]) == [(5, True, 1 | 1 << 31)]
    assert wire.update(2.0, p0=list(range(40))) == [(5, True, 0xFFFFFFFF)]
    assert wire.update(3.0, p0=[35]) == [(5, False, 0)]  # only an uncommandable cell left: stop


def test_a_failed_send_is_tried_again_after_the_repeat_time_not_at_every_tick(protocol: PackProtocol) -> None:
    wire = Wire(protocol)
    wire.update(0.0)
    wire.update(1.0, p0=[1])
    wire.up = False
    wire.update(2.0)  # the stop is lost
    assert [wire.update(2.0 + 0.1 * k) for k in range(1, 10)] == [[]] * 9
    wire.up = True
    assert wire.update(2.0 + REPEAT_S) == [(5, False, 0)]
    assert wire.update(2.0 + 2 * REPEAT_S) == []


@pytest.fixture
def bus_pair() -> Iterator[tuple[can.BusABC, can.BusABC]]:
    channel = f"balancing-test-{uuid.uuid4().hex}"
    buses = [can.Bus(interface="virtual", channel=channel, receive_own_messages=False) for _ in range(2)]
    yield buses[0], buses[1]
    for bus in buses:
        bus.shutdown()


def test_the_simulated_pack_bleeds_the_commanded_cells(protocol: PackProtocol,
                                                      bus_pair: tuple[can.BusABC, can.BusABC]) -> None:
    sim_bus, gateway_bus = bus_pair
    simulation = Simulation(make_settings(make_pack(5), make_pack(9, series_cells=24)), {"sim": sim_bus},
                            DEFAULT_MAPPINGS_DIR)

    def send(arbitration_id: int, data: bytes) -> bool:
        gateway_bus.send(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=True))
        return True

    encoder = FrameEncoder(protocol)
    commander = BalancingCommander([PackLink(i, node, encoder, send) for i, node in enumerate(NODES)], 2)
    mask = np.zeros((2, 32), dtype=bool)
    mask[0, [0, 31]] = True
    mask[1, [4, 23]] = True
    commander.update(mask, 0.0)
    simulation.poll_commands()
    packs = simulation.truth()["packs"]
    assert packs[0]["balancing_cells"] == [1, 32]
    assert packs[1]["balancing_cells"] == [5, 24]
    mask[0] = False
    commander.update(mask, 0.1)
    simulation.poll_commands()
    packs = simulation.truth()["packs"]
    assert packs[0]["balancing_cells"] == []
    assert packs[1]["balancing_cells"] == [5, 24]
