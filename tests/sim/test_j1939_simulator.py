"""The simulator playing a J1939 pack on a python-can virtual bus, read by the gateway's J1939 codec: address claim
first, cell voltages by BAM at the standard spacing, identity by RTS/CTS, NACK, commands still obeyed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path

import can

from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.j1939.acknowledgement import AckControl, parse_acknowledgement
from gateway.codec.j1939.address_claim import J1939Name
from gateway.codec.j1939.identifier import J1939Id, Pgn
from gateway.codec.j1939.request import build_request
from gateway.codec.j1939.transport import BAM_MIN_SPACING_S, T1_S, TransportMessage, TransportReassembler
from gateway.codec.protocol import load_protocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import ArrayField, CommandField, CommandKind, IdentityField
from gateway.sim.j1939_node import pack_name
from gateway.sim.simulator import Simulation
from tests.sim.helpers import BusPair, make_pack, make_settings

GATEWAY = 249
PACK = 33
SERIAL = 4711


class GatewaySide:
    """The test's end of the bus: reassembles (answering CTS/EoMA), keeps every frame with its bus timestamp."""

    def __init__(self, bus: can.BusABC) -> None:
        self.bus = bus
        self.reassembler = TransportReassembler(GATEWAY)
        self.frames: list[can.Message] = []
        self.messages: list[TransportMessage] = []
        self.rejections: list[str] = []

    def send(self, arbitration_id: int, data: bytes) -> None:
        self.bus.send(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=True))

    def read(self, now: float) -> None:
        while (message := self.bus.recv(0)) is not None:
            self.frames.append(message)
            result = self.reassembler.on_frame(J1939Id.parse(message.arbitration_id), bytes(message.data), now)
            self.messages += result.messages
            self.rejections += [r.reason for r in result.rejections]
            for frame in result.frames:
                self.send(*frame)

    def of_pgn(self, pgn: int) -> list[can.Message]:
        return [m for m in self.frames if J1939Id.parse(m.arbitration_id).pgn == pgn]


async def play(simulation: Simulation, gateway: GatewaySide, seconds: float,
               action: Callable[[], None] | None = None) -> None:
    """The simulator's own loop for `seconds`, the gateway side reading every 5 ms; `action` once, at the start."""
    stop = asyncio.Event()
    task = asyncio.create_task(simulation.run(stop))
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    if action is not None:
        action()
    while loop.time() < end:
        await asyncio.sleep(0.005)
        gateway.read(simulation.clock())
    stop.set()
    await asyncio.wait_for(task, 2.0)
    gateway.read(simulation.clock())


async def test_a_simulated_j1939_pack_claims_broadcasts_its_cells_and_answers_requests(
        bus_pair: Callable[[], BusPair], mappings_dir: Path) -> None:
    sim_bus, gateway_bus = bus_pair()
    protocol = load_protocol(mappings_dir, "j1939-hvess-v1")
    settings = make_settings(make_pack(PACK, protocol="j1939-hvess-v1", serial_number=SERIAL), load_profile="idle")
    simulation = Simulation(settings, {"sim": sim_bus}, mappings_dir)
    gateway = GatewaySide(gateway_bus)

    await play(simulation, gateway, 2.3)
    first = gateway.frames[0]
    assert J1939Id.parse(first.arbitration_id).pgn == Pgn.ADDRESS_CLAIMED
    assert J1939Name.from_bytes(bytes(first.data)) == pack_name(SERIAL)
    assert {J1939Id.parse(m.arbitration_id).source for m in gateway.frames} == {PACK}
    assert max(len(m.data) for m in gateway.frames) == 8
    assert gateway.rejections == []
    cells = [m for m in gateway.messages if m.pgn == 0xFF10]
    assert len(cells) == 2  # one cell message a second (MULTI_PACKET_PERIOD_S), not one per 100 ms status
    decoder = FrameDecoder([protocol])
    arbitration_id = J1939Id.for_pgn(0xFF10, PACK, priority=6).arbitration_id
    decoded = decoder.decode(CanFrame("sim", arbitration_id, cells[-1].payload, 0.0))
    voltages = [v.value for v in decoded.values if v.field is ArrayField.CELL_VOLTAGE_V]
    assert len(voltages) == 32
    assert all(3.0 < v < 4.3 for v in voltages)
    bam_times = [m.timestamp for m in gateway.frames if J1939Id.parse(m.arbitration_id).pgn in (Pgn.TP_CM, Pgn.TP_DT)]
    gaps = [b - a for a, b in itertools.pairwise(bam_times)]
    assert min(gaps) >= BAM_MIN_SPACING_S - 1e-3  # python-can stamps with time.time(): allow its resolution
    assert max(gaps) < T1_S
    assert len(gateway.of_pgn(Pgn.DM1)) in (2, 3)  # once a second

    gateway.frames.clear()
    encoder = FrameEncoder(protocol)

    def ask() -> None:
        gateway.send(*build_request(0xFF12, GATEWAY, PACK))  # the identity
        gateway.send(*build_request(0xFEE5, GATEWAY, PACK))  # a group the pack does not have
        command = encoder.encode_command(CommandKind.CONTACTOR_OPEN, PACK, {CommandField.OPEN_REQUEST: 1})
        gateway.send(command.arbitration_id, command.data)

    await play(simulation, gateway, 0.3, ask)
    [identity] = [m for m in gateway.messages if m.pgn == 0xFF12]
    assert (identity.source, identity.destination) == (PACK, GATEWAY)  # by RTS/CTS, to the requester
    serial = decoder.decode(CanFrame("sim", J1939Id.for_pgn(0xFF12, PACK).arbitration_id, identity.payload, 0.0))
    assert [v.value for v in serial.values if v.field is IdentityField.SERIAL_NUMBER] == [SERIAL]
    [nack] = [parse_acknowledgement(bytes(m.data)) for m in gateway.of_pgn(Pgn.ACKNOWLEDGEMENT)]
    assert (nack.control, nack.pgn, nack.address_acknowledged) == (AckControl.NACK, 0xFEE5, GATEWAY)
    assert simulation.truth()["packs"][0]["contactor_closed"] is False  # a command still reaches the pack
    assert simulation.command_rejects == {"sim": {}}
    assert simulation.packs[0].j1939 is not None
    assert simulation.packs[0].j1939.responder.sessions_completed == 1


def test_a_bmsgw_ref_pack_is_no_j1939_node(bus_pair: Callable[[], BusPair], mappings_dir: Path) -> None:
    sim_bus, gateway_bus = bus_pair()
    simulation = Simulation(make_settings(make_pack(5)), {"sim": sim_bus}, mappings_dir)
    assert simulation.packs[0].j1939 is None
    simulation.pump()
    assert gateway_bus.recv(0.05) is None  # no address claim, no DM1
