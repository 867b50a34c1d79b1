"""A simulated pack as a J1939 node, against the gateway's own J1939 codec (reassembler, claim tracker, DM1):
address claim, requests (RTS/CTS, NACK), DM1 from dtc faults, re-addressing, silence."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from gateway.codec.can_encoder import EncodedFrame, FrameEncoder
from gateway.codec.j1939.acknowledgement import AckControl, parse_acknowledgement
from gateway.codec.j1939.address_claim import AddressClaimTracker, ClaimChange, J1939Name
from gateway.codec.j1939.dm1 import LampStatus, decode_dm1
from gateway.codec.j1939.identifier import GLOBAL_ADDRESS, J1939Id, Pgn, RawFrame
from gateway.codec.j1939.request import build_request
from gateway.codec.j1939.transport import TransportMessage, TransportReassembler
from gateway.codec.protocol import load_protocol
from gateway.settings import DEFAULT_MAPPINGS_DIR, SimulatedFault
from gateway.sim.faults import FaultSchedule
from gateway.sim.j1939_node import J1939PackNode, pack_name
from gateway.sim.pack_frames import PackFrames, SimulatedIdentity

GATEWAY = 249
PACK = 33
IDENTITY_PGN = 0xFF12
CELLS_PGN = 0xFF10
SERIAL = 24_001_003


class Bus:
    """What the node puts on the bus, and the gateway's side of the link layer reading it."""

    def __init__(self) -> None:
        self.frames: list[RawFrame] = []
        self.reassembler = TransportReassembler(GATEWAY)
        self.messages: list[TransportMessage] = []
        self.rejections: list[str] = []

    def transmit(self, arbitration_id: int, data: bytes) -> None:
        self.frames.append((arbitration_id, data))

    def take(self) -> list[RawFrame]:
        taken, self.frames = self.frames, []
        return taken

    def reassemble(self, frames: Iterable[RawFrame], now: float) -> list[RawFrame]:
        """Feed the gateway's reassembler; what it answers (CTS, EoMA) is returned."""
        replies: list[RawFrame] = []
        for arbitration_id, data in frames:
            result = self.reassembler.on_frame(J1939Id.parse(arbitration_id), data, now)
            self.messages += result.messages
            self.rejections += [r.reason for r in result.rejections]
            replies += result.frames
        return replies


def of_pgn(frames: Iterable[RawFrame], pgn: int) -> list[RawFrame]:
    return [frame for frame in frames if J1939Id.parse(frame[0]).pgn == pgn]


def frames_of_pack(protocol_name: str = "j1939-hvess-v1") -> PackFrames:
    return PackFrames(FrameEncoder(load_protocol(DEFAULT_MAPPINGS_DIR, protocol_name)), PACK)


def identity_frames() -> list[EncodedFrame]:
    return frames_of_pack().identity(SimulatedIdentity(SERIAL, 1, 32, 8, 200.0))


def status_frames() -> list[EncodedFrame]:
    return frames_of_pack().status(pack_voltage_v=120.0, pack_current_a=-20.0, contactor_state=2,
                                   balancing_active=False, fault_flags=0, cell_voltage_v=[3.7] * 32)


def node(bus: Bus, *faults: SimulatedFault) -> J1939PackNode:
    return J1939PackNode(pack_name(SERIAL), PACK, FaultSchedule(faults), bus.transmit,
                         on_request_only=identity_frames())


def request(pgn: int, destination: int) -> tuple[J1939Id, bytes]:
    arbitration_id, data = build_request(pgn, GATEWAY, destination)
    return J1939Id.parse(arbitration_id), data


def test_the_name_carries_the_whole_serial_number() -> None:
    name = pack_name(SERIAL)
    assert name.value & 0xFFFF_FFFF == SERIAL
    assert name.arbitrary_address_capable
    assert J1939Name.from_bytes(name.to_bytes()) == name
    assert pack_name(SERIAL + (1 << 21)) != name  # serials that differ above the identity number's 21 bits


def test_the_first_message_follows_an_address_claim_and_goes_out_from_the_pack_address() -> None:
    bus = Bus()
    pack = node(bus)
    pack.send(status_frames())
    frames = bus.take()
    first_id, first_data = frames[0]
    tracker = AddressClaimTracker()
    changes = tracker.on_frame(J1939Id.parse(first_id), first_data)
    assert [(c.kind, c.name, c.new_address) for c in changes] == [(ClaimChange.CLAIMED, pack_name(SERIAL), PACK)]
    assert [J1939Id.parse(i).source for i, _ in frames] == [PACK] * len(frames)
    assert all(len(data) <= 8 for _, data in frames)  # the 64-byte cell voltages wait for a BAM
    assert not of_pgn(frames, CELLS_PGN)
    pack.send(status_frames())
    assert not of_pgn(bus.take(), Pgn.ADDRESS_CLAIMED)  # claimed once


@pytest.mark.parametrize("destination", [PACK, GLOBAL_ADDRESS])
def test_a_request_for_address_claimed_is_answered_to_all(destination: int) -> None:
    bus = Bus()
    pack = node(bus)
    pack.pump(0.0, 0.0, silent=False)
    bus.take()
    pack.on_frame(*request(Pgn.ADDRESS_CLAIMED, destination), 0.1)
    [(arbitration_id, data)] = bus.take()
    identifier = J1939Id.parse(arbitration_id)
    assert (identifier.pgn, identifier.source, identifier.destination) == (Pgn.ADDRESS_CLAIMED, PACK, GLOBAL_ADDRESS)
    assert J1939Name.from_bytes(data) == pack_name(SERIAL)
    pack.on_frame(*request(Pgn.ADDRESS_CLAIMED, 34), 0.2)  # to another node
    assert bus.take() == []


def test_the_identity_is_sent_to_its_requester_by_rts_cts() -> None:
    bus = Bus()
    pack = node(bus)
    pack.pump(0.0, 0.0, silent=False)
    bus.take()
    pack.on_frame(*request(IDENTITY_PGN, PACK), 0.1)
    now = 0.1
    pending = bus.take()
    while pending:  # the gateway's reassembler and the pack's sender answer each other
        now += 0.005
        for arbitration_id, data in bus.reassemble(pending, now):
            pack.on_frame(J1939Id.parse(arbitration_id), data, now)
        pending = bus.take()
    assert bus.rejections == []
    [message] = bus.messages
    assert (message.pgn, message.source, message.destination) == (IDENTITY_PGN, PACK, GATEWAY)
    assert message.payload == identity_frames()[0].data
    assert pack.responder.sessions_completed == 1
    assert not pack.responder.in_session


def test_an_unknown_pgn_is_nacked_to_its_requester_only_when_asked_directly() -> None:
    bus = Bus()
    pack = node(bus)
    pack.pump(0.0, 0.0, silent=False)
    bus.take()
    pack.on_frame(*request(0xFEE5, GLOBAL_ADDRESS), 0.1)
    assert bus.take() == []
    pack.on_frame(*request(0xFEE5, PACK), 0.1)
    [(arbitration_id, data)] = bus.take()
    identifier = J1939Id.parse(arbitration_id)
    assert (identifier.pgn, identifier.source, identifier.destination) == (Pgn.ACKNOWLEDGEMENT, PACK, GLOBAL_ADDRESS)
    answer = parse_acknowledgement(data)
    assert (answer.control, answer.pgn, answer.address_acknowledged) == (AckControl.NACK, 0xFEE5, GATEWAY)


def test_a_second_request_during_a_session_is_cannot_respond_and_a_sent_group_is_answered_with_its_frame() -> None:
    bus = Bus()
    pack = node(bus)
    pack.send(status_frames())
    bus.take()
    pack.on_frame(*request(IDENTITY_PGN, PACK), 0.1)
    bus.take()  # the RTS, left unanswered
    pack.on_frame(*request(IDENTITY_PGN, PACK), 0.2)
    [(_, data)] = bus.take()
    assert parse_acknowledgement(data).control is AckControl.CANNOT_RESPOND
    pack.on_frame(*request(0xF090, PACK), 0.3)  # HVESSD1, one frame: sent to all as the pack sends it
    [(arbitration_id, data)] = bus.take()
    assert (J1939Id.parse(arbitration_id).pgn, data) == (0xF090, status_frames()[0].data)
    pack.pump(2.0, 2.0, silent=False)  # no CTS within T3: the pack aborts its session
    aborts = [data for _, data in of_pgn(bus.take(), Pgn.TP_CM) if data[0] == 0xFF]
    assert len(aborts) == 1
    assert pack.responder.sessions_failed == 1


def test_dm1_every_second_carries_the_active_dtc_faults_and_their_lamps() -> None:
    bus = Bus()
    faults = (SimulatedFault(kind="dtc", spn=5920, fmi=3, start_s=1.5, duration_s=2.0),
              SimulatedFault(kind="dtc", spn=5921, fmi=4, start_s=1.5, duration_s=1.0, lamp="red_stop"))
    pack = node(bus, *faults)
    sent: list[tuple[float, RawFrame]] = []
    now = 0.0
    while now < 4.9:
        pack.pump(now, now, silent=False)
        sent += [(now, frame) for frame in bus.take()]
        now = round(now + 0.01, 6)
    for t, frame in sent:
        bus.reassemble([frame], t)
    assert bus.rejections == []
    single = [(t, decode_dm1(data)) for t, (arbitration_id, data) in sent
              if J1939Id.parse(arbitration_id).pgn == Pgn.DM1]
    multi = [decode_dm1(m.payload) for m in bus.messages if m.pgn == Pgn.DM1]
    assert [round(t, 2) for t, _ in single] == [0.0, 1.0, 3.0, 4.0]  # 2.0: two codes, by BAM
    assert [dm1.dtcs for _, dm1 in single[:2]] == [(), ()]
    assert [(d.spn, d.fmi) for d in single[2][1].dtcs] == [(5920, 3)]  # the second ended at 2.5
    assert single[2][1].lamps.amber_warning.status is LampStatus.ON
    assert single[2][1].lamps.red_stop.status is LampStatus.OFF
    assert single[3][1].dtcs == ()
    assert single[3][1].lamps.amber_warning.status is LampStatus.OFF
    [both] = multi
    assert sorted((d.spn, d.fmi) for d in both.dtcs) == [(5920, 3), (5921, 4)]
    assert both.lamps.red_stop.status is LampStatus.ON


def test_a_readdress_fault_claims_the_new_address_between_broadcasts_and_the_pack_answers_there() -> None:
    bus = Bus()
    pack = node(bus, SimulatedFault(kind="readdress", address=34, start_s=0.1))
    pack.send(status_frames())  # the cell voltages wait for a BAM
    pack.pump(0.0, 0.0, silent=False)  # the BAM starts from 33
    pack.pump(0.05, 0.15, silent=False)  # the fault is active, the BAM under way: the move waits
    assert pack.address == PACK
    now = 0.1
    while pack.pacer.in_session:
        pack.pump(now, now, silent=False)
        now += 0.05
    pack.pump(now, now, silent=False)
    frames = bus.take()
    claims = of_pgn(frames, Pgn.ADDRESS_CLAIMED)
    assert [J1939Id.parse(i).source for i, _ in claims] == [PACK, 34]
    index = frames.index(claims[-1])
    assert {J1939Id.parse(i).source for i, _ in frames[:index]} == {PACK}
    bus.reassemble(frames, now)
    assert [m.source for m in bus.messages] == [PACK]  # the whole cell message, from the old address
    pack.send(status_frames())
    assert {J1939Id.parse(i).source for i, _ in bus.take()} == {34}
    pack.on_frame(*request(Pgn.ADDRESS_CLAIMED, PACK), now)  # the old address is no longer the pack's
    assert bus.take() == []


def test_a_silent_pack_sends_nothing_answers_nothing_and_drops_its_broadcast() -> None:
    bus = Bus()
    pack = node(bus)
    pack.send(status_frames())
    pack.pump(0.0, 0.0, silent=False)
    bus.take()
    pack.pump(0.1, 0.1, silent=True)
    pack.on_frame(*request(IDENTITY_PGN, PACK), 0.1)
    pack.pump(0.2, 0.2, silent=True)
    assert bus.take() == []
    assert pack.pacer.sessions_abandoned == 1
