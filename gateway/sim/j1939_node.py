"""A simulated pack as a J1939 node (protocols with `addressing: j1939`), what a heavy-duty pack does on the bus.

- Address claim (J1939-81): Address Claimed with the pack's NAME before its first message, again whenever its
  address changes (a `readdress` fault), and in answer to a Request for Address Claimed.
- Its messages go out with its current address as source; those longer than 8 bytes by BAM (`j1939_pacer`).
- DM1 every DM1_PERIOD_S: the lamps and trouble codes of the active `dtc` faults (more than one: by BAM).
- Requests to it or to all are answered (`j1939_requests`) from the latest values of each group it sends, its
  identity, its DM1 and its address claim.
Real time (`now`, the simulator's clock) paces the bus; simulated time (`time_s`) says which faults are active.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from gateway.codec.can_encoder import EncodedFrame, FrameEncoder
from gateway.codec.j1939.address_claim import J1939Name, address_claimed_frame
from gateway.codec.j1939.dm1 import DM1_PRIORITY, encode_dm1
from gateway.codec.j1939.identifier import GLOBAL_ADDRESS, J1939Id, Pgn, RawFrame
from gateway.codec.j1939.request import parse_request
from gateway.codec.j1939.transport import FRAME_BYTES
from gateway.settings import SimulatedPack
from gateway.sim.faults import FaultSchedule
from gateway.sim.j1939_faults import active_dm1, address_at
from gateway.sim.j1939_pacer import BamPacer
from gateway.sim.j1939_requests import RequestResponder
from gateway.sim.pack_frames import PackFrames, SimulatedIdentity

DM1_PERIOD_S = 1.0
SERIAL_BITS_IN_IDENTITY = 21

Transmit = Callable[[int, bytes], None]


def pack_name(serial_number: int) -> J1939Name:
    """The simulated pack's NAME: its 32-bit serial number in the identity number (low 21 bits) and manufacturer code
    (high 11 bits), so no two simulated packs share a NAME; the other fields are placeholders (0), a real pack's
    come from its maker."""
    return J1939Name(arbitrary_address_capable=True, industry_group=0, vehicle_system_instance=0, vehicle_system=0,
                     function=0, function_instance=0, ecu_instance=0,
                     manufacturer_code=serial_number >> SERIAL_BITS_IN_IDENTITY,
                     identity_number=serial_number & ((1 << SERIAL_BITS_IN_IDENTITY) - 1))


class J1939PackNode:
    """`send` takes the pack's messages, `on_frame` the link-layer frames to it, `pump` sends what is due now."""

    def __init__(self, name: J1939Name, address: int, faults: FaultSchedule, transmit: Transmit,
                 on_request_only: Iterable[EncodedFrame] = ()) -> None:
        self.name = name
        self.address = address
        self._configured_address = address
        self._faults = faults
        self._transmit = transmit
        self.pacer = BamPacer()
        self.responder = RequestResponder(self.pacer)
        self._latest: dict[int, RawFrame] = {}  # PGN -> its latest frame (a request's answer)
        for frame in on_request_only:
            self._latest[J1939Id.parse(frame.arbitration_id).pgn] = frame.arbitration_id, frame.data
        self._claimed = False
        self._silent = False
        self._next_dm1_at = float("-inf")

    def send(self, frames: Iterable[EncodedFrame]) -> None:
        """The pack's own messages, with its address as source: up to 8 bytes at once, longer ones by BAM."""
        self._claim_once()
        for frame in frames:
            arbitration_id = self._from_us(frame.arbitration_id)
            pgn = J1939Id.parse(arbitration_id).pgn
            self._latest[pgn] = arbitration_id, frame.data
            if len(frame.data) > FRAME_BYTES:
                self.pacer.offer(pgn, frame.data)
            else:
                self._transmit(arbitration_id, frame.data)

    def on_frame(self, frame_id: J1939Id, data: bytes, now: float) -> None:
        """A link-layer frame on the bus: Requests to the pack or to all, TP.CM replies to its RTS/CTS sessions.
        FrameRejected for a malformed Request."""
        if self._silent or frame_id.destination not in (self.address, GLOBAL_ADDRESS):
            return
        if frame_id.pgn == Pgn.REQUEST:
            request = parse_request(frame_id, data)
            if request.pgn == Pgn.ADDRESS_CLAIMED:
                self._claim()
                return
            latest = self._latest.get(request.pgn)
            frame = None if latest is None else (self._from_us(latest[0]), latest[1])
            self._send_all(self.responder.answer(request, frame, self.address, now))
        elif frame_id.pgn == Pgn.TP_CM and frame_id.destination == self.address:
            self._send_all(self.responder.on_transport(frame_id, data, now))

    def pump(self, now: float, time_s: float, *, silent: bool) -> None:
        """Send what is due at real time `now` with the faults of simulated time `time_s`; a silent pack sends
        nothing and drops its transport sessions."""
        self._silent = silent
        if silent:
            self.pacer.abandon()
            self.responder.abandon()
            return
        self._claim_once()
        self._follow_readdress(time_s)
        if now >= self._next_dm1_at:
            behind = now - self._next_dm1_at >= DM1_PERIOD_S
            self._next_dm1_at = (now if behind else self._next_dm1_at) + DM1_PERIOD_S
            self._send_dm1(time_s)
        self._send_all(self.responder.expire(now))
        self._send_all(self.pacer.due(now, self.address))

    def _send_dm1(self, time_s: float) -> None:
        lamps, dtcs = active_dm1(self._faults, time_s)
        arbitration_id = J1939Id.for_pgn(Pgn.DM1, self.address, priority=DM1_PRIORITY).arbitration_id
        self.send([EncodedFrame(arbitration_id, encode_dm1(lamps, dtcs))])

    def _follow_readdress(self, time_s: float) -> None:
        """Move when a `readdress` fault says so, between transport sessions: none straddles two addresses."""
        wanted = address_at(self._faults, self._configured_address, time_s)
        if wanted != self.address and not self.pacer.in_session and not self.responder.in_session:
            self.address = wanted
            self._claim()

    def _claim_once(self) -> None:
        if not self._claimed:
            self._claim()

    def _claim(self) -> None:
        self._claimed = True
        self._transmit(*address_claimed_frame(self.name, self.address))

    def _from_us(self, arbitration_id: int) -> int:
        return replace(J1939Id.parse(arbitration_id), source=self.address).arbitration_id

    def _send_all(self, frames: Iterable[RawFrame]) -> None:
        for arbitration_id, data in frames:
            self._transmit(arbitration_id, data)


def j1939_node_for(pack: SimulatedPack, encoder: FrameEncoder, identity: SimulatedIdentity, faults: FaultSchedule,
                   transmit: Transmit) -> J1939PackNode | None:
    """The pack's J1939 node when its protocol has J1939 addressing; None otherwise (the pack is not a J1939 node)."""
    if encoder.protocol.addressing != "j1939":
        return None
    return J1939PackNode(pack_name(pack.serial_number), pack.node_address, faults, transmit,
                         on_request_only=PackFrames(encoder, pack.node_address).identity(identity))
