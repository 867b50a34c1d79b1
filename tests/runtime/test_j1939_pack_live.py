"""A J1939 pack on a virtual bus, played by the test from the j1939-hvess-v1 mapping: the gateway reassembles its
64-byte cell voltages (BAM), asks for its identity (Request PGN 59904) and takes it by RTS/CTS, turns DM1 codes
into events, and follows the pack when it claims another address."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import can

from gateway.adapters.event_log import EventLog
from gateway.app import build_gateway, run_gateway
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.j1939.address_claim import J1939Name, address_claimed_frame
from gateway.codec.j1939.dm1 import Dtc, Lamp, Lamps, LampStatus, dm1_frames
from gateway.codec.j1939.identifier import J1939Id, Pgn
from gateway.codec.j1939.request import parse_request
from gateway.codec.j1939.transport import TransportSender, bam_frames
from gateway.codec.protocol import load_protocol
from gateway.domain.events import EventKind
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.sites import OUTPUTS_OFF, site_in

CONFIG = OUTPUTS_OFF + """
[engine]
identity_request_interval_s = 0.5
[[buses]]
name = "trucks"
interface = "virtual"
channel = "{channel}"
[[packs]]
id = "truck-7"
bus = "trucks"
node_address = 33
protocol = "j1939-hvess-v1"
"""
NAME = J1939Name(arbitrary_address_capable=True, industry_group=2, vehicle_system_instance=0, vehicle_system=0,
                 function=0x8F, function_instance=0, ecu_instance=0, manufacturer_code=0x3FF, identity_number=4711)


class J1939Pack:
    """What a J1939 pack sends and how it answers, built from the mapping's encoder and the J1939 codec."""

    def __init__(self, channel: str) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.encoder = FrameEncoder(load_protocol(DEFAULT_MAPPINGS_DIR, "j1939-hvess-v1"))
        self.address = 33
        self.identity_requests = 0
        self.sender: TransportSender | None = None

    def send(self, arbitration_id: int, data: bytes) -> None:
        self.bus.send(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=True))

    def message(self, name: str, values: dict[str, float]) -> None:
        frame = self.encoder.encode_message(name, self.address, values)
        if len(frame.data) <= 8:
            self.send(frame.arbitration_id, frame.data)
            return
        for arbitration_id, data in bam_frames(J1939Id.parse(frame.arbitration_id).pgn, frame.data, self.address):
            self.send(arbitration_id, data)

    def claim(self) -> None:
        self.send(*address_claimed_frame(NAME, self.address))

    def status(self) -> None:
        self.message("HVESSD1", {"HvessVoltageLevel": 120.0, "HvessCurrent": -20.0})
        self.message("HVESSS1", {"HvessBalancingActive": 0, "HvessBusConnectionStatus": 2, "HvessFaultFlags": 0})
        self.message("CellVoltages", {f"Cell{i:02d}Voltage": 3.75 for i in range(1, 33)})
        self.message("Temperatures", {f"Temperature{i:02d}": 25.0 for i in range(1, 9)})

    def answer(self, now: float) -> None:
        """Answer identity requests with the 16-byte identity by RTS/CTS to the gateway."""
        while (message := self.bus.recv(0)) is not None:
            identifier = J1939Id.parse(message.arbitration_id)
            if identifier.pgn == Pgn.REQUEST and identifier.destination == self.address:
                if parse_request(identifier, bytes(message.data)).pgn == 0xFF12:
                    self.identity_requests += 1
                    identity = self.encoder.encode_message("PackIdentity", self.address, {
                        "SerialNumber": 4711, "Chemistry": 1, "FirmwareMajor": 2, "FirmwareMinor": 0,
                        "FirmwarePatch": 1, "CellCount": 32, "SensorCount": 8, "NominalCapacity": 200.0})
                    self.sender = TransportSender(0xFF12, identity.data, self.address, identifier.source)
                    for frame in self.sender.start(now):
                        self.send(*frame)
            elif self.sender is not None and identifier.destination == self.address:
                for frame in self.sender.on_frame(identifier, bytes(message.data), now):
                    self.send(*frame)


async def test_a_j1939_pack_comes_online_raises_dtcs_and_is_followed_to_a_new_address(tmp_path: Path) -> None:
    channel = f"j1939-{time.monotonic_ns()}"
    settings = site_in(tmp_path, CONFIG.format(channel=channel))
    gateway = build_gateway(settings)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(gateway, stop))
    pack = J1939Pack(channel)
    try:
        pack.claim()

        async def run_pack(seconds: float, *, dm1: list[Dtc] | None = None) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pack.status()
                if dm1 is not None:
                    lamps = Lamps(red_stop=Lamp(LampStatus.ON)) if dm1 else Lamps()
                    for frame in dm1_frames(lamps, dm1, pack.address):
                        pack.send(*frame)
                pack.answer(time.monotonic())
                await asyncio.sleep(0.1)

        await run_pack(3.0)
        snapshot = gateway.hub.latest
        assert snapshot is not None
        truck = snapshot.packs[0]
        assert truck.online, "the pack never came online from its J1939 frames"
        assert truck.cell_voltage_v[31] == 3.75  # the 64-byte BAM message, reassembled
        assert truck.pack_voltage_v == 120.0
        assert truck.identity is not None, "the identity never arrived by RTS/CTS"
        assert truck.identity.serial_number == "0000004711"
        assert pack.identity_requests >= 1

        dtcs = [Dtc(spn=5920 + i, fmi=3, occurrence_count=1) for i in range(3)]  # 14 bytes: by BAM
        await run_pack(1.0, dm1=dtcs)
        await run_pack(1.0, dm1=[])
        pack.address = 34  # the pack claims another address; the gateway must follow it by its NAME
        pack.claim()
        await run_pack(2.0)
        snapshot = gateway.hub.latest
        assert snapshot is not None
        assert snapshot.packs[0].online, "the pack was lost when it changed address"
        assert snapshot.buses[0].frames_rejected.get("unknown_node", 0) == 0
    finally:
        pack.bus.shutdown()
        stop.set()
        await asyncio.wait_for(runner, 10)
    log = EventLog(tmp_path / "s.sqlite", create=False)
    logged = log.query()
    log.close()
    kinds = [(e.kind, e.severity.name, int(e.value)) for e in logged if e.kind in (
        EventKind.DTC_ACTIVE, EventKind.DTC_CLEARED, EventKind.READDRESSED)]
    assert sorted(k for k in kinds if k[0] is EventKind.DTC_ACTIVE) == [
        (EventKind.DTC_ACTIVE, "ALARM", 5920), (EventKind.DTC_ACTIVE, "ALARM", 5921),
        (EventKind.DTC_ACTIVE, "ALARM", 5922)]
    assert len([k for k in kinds if k[0] is EventKind.DTC_CLEARED]) == 3
    assert (EventKind.READDRESSED, "WARNING", 34) in kinds
