"""The J1939 link layer in front of one bus's ingest: what the mapping's DBC cannot describe.

- Transport protocol (BAM and RTS/CTS, codec/j1939/transport.py): packets are reassembled with strict sequence and
  timeout checks; a complete message goes to the decoder like a single frame; a rejected session is counted per bus
  under its reason (`tp_sequence_gap`, `tp_timeout`...); CTS, end-of-message acknowledgements and aborts are sent.
- DM1 (single frame or multi-packet): every active trouble code that appears or clears is an event of the pack
  (`dtc_active` / `dtc_cleared`, severity from the lamps: red stop lamp ALARM, otherwise WARNING).
- Address claims: the NAME that claims a pack's configured address is that pack's; when the same NAME claims
  another address, the pack is followed there (ingest and commands) and a `readdressed` event is logged.
Everything else goes to the ingest unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from gateway.codec.j1939.address_claim import AddressChange, AddressClaimTracker, ClaimChange, J1939Name
from gateway.codec.j1939.dm1 import Dm1, Dtc, LampStatus, decode_dm1, diff_dtcs
from gateway.codec.j1939.identifier import GLOBAL_ADDRESS, J1939Id, Pgn, is_pdu1
from gateway.codec.j1939.transport import TransportReassembler, TransportResult
from gateway.domain.alarms import Severity
from gateway.domain.events import BmsEvent, EventKind
from gateway.domain.frames import CanFrame
from gateway.errors import FrameRejected
from gateway.runtime.ingest import BusIngest
from gateway.runtime.pack_link import PackLink, SendFrame

log = logging.getLogger(__name__)

REASSEMBLED_PRIORITY = 6
EventSink = Callable[[BmsEvent], None]


class J1939Link:
    """The bus's receiver in place of its ingest; `attach` gives it the bus's pack links and sender once they exist
    (they need the bus service, which needs this receiver)."""

    def __init__(self, ingest: BusIngest, pack_ids: Sequence[str], gateway_address: int, record: EventSink) -> None:
        self._ingest = ingest
        self._links: dict[int, PackLink] = {}
        self._pack_ids = pack_ids
        self._send: SendFrame = _unattached
        self._record = record
        self._wall_clock: Callable[[], float] = time.time
        self._transport = TransportReassembler(gateway_address)
        self._claims = AddressClaimTracker()
        self._name_of_pack: dict[int, J1939Name] = {}
        self._active: dict[int, tuple[Dtc, ...]] = {}
        self.counters = ingest.counters

    def attach(self, links: Sequence[PackLink], send: SendFrame, wall_clock: Callable[[], float]) -> None:
        """The packs on this bus, the way to send on it, and the clock of event times (a replay's is the log's)."""
        self._links = {link.node_address: link for link in links}
        self._send = send
        self._wall_clock = wall_clock

    def handle(self, frame: CanFrame, now: float) -> None:
        if not frame.is_extended_id:
            self._ingest.handle(frame, now)
            return
        try:
            self._link_layer(frame, now)
        except (FrameRejected, ValueError) as error:  # a frame the codec refuses is counted, never raised further
            reason = error.reason if isinstance(error, FrameRejected) else "j1939_malformed"
            self.counters.rejected[reason] += 1

    def _link_layer(self, frame: CanFrame, now: float) -> None:
        identifier = J1939Id.parse(frame.arbitration_id)
        pgn = identifier.pgn
        if pgn in (Pgn.TP_CM, Pgn.TP_DT):
            self._understood()
            self._transported(self._transport.on_frame(identifier, frame.data, now), frame, now)
        elif pgn == Pgn.ADDRESS_CLAIMED:
            self._understood()
            for change in self._claims.on_frame(identifier, frame.data):
                self._follow(change)
        elif pgn == Pgn.DM1:
            self._understood()
            self._dm1(identifier.source, frame.data)
        else:
            self._ingest.handle(frame, now)

    def _understood(self) -> None:
        self.counters.received += 1
        self.counters.decoded += 1

    def _transported(self, result: TransportResult, frame: CanFrame, now: float) -> None:
        for arbitration_id, data in result.frames:
            self._send(arbitration_id, data)
        for rejection in result.rejections:
            self.counters.rejected[str(rejection.reason)] += 1
        for message in result.messages:
            if message.pgn == Pgn.DM1:
                self._dm1(message.source, message.payload)
                continue
            destination = message.destination if is_pdu1(message.pgn) else GLOBAL_ADDRESS
            identifier = J1939Id.for_pgn(message.pgn, message.source, destination, REASSEMBLED_PRIORITY)
            self._ingest.handle(CanFrame(frame.bus, identifier.arbitration_id, message.payload, frame.timestamp),
                                now)

    def _dm1(self, source: int, data: bytes) -> None:
        link = self._links.get(source)
        if link is None:
            return
        try:
            dm1 = decode_dm1(data)
        except FrameRejected as rejected:
            self.counters.rejected[rejected.reason] += 1
            return
        previous = self._active.get(link.pack_index, ())
        diff = diff_dtcs(previous, dm1.dtcs)
        self._active[link.pack_index] = dm1.dtcs
        pack_id = self._pack_ids[link.pack_index]
        wall = self._wall_clock()
        for dtc in diff.appeared:
            self._record(BmsEvent(wall, pack_id, EventKind.DTC_ACTIVE, "dm1", _severity(dm1), value=dtc.spn,
                                  threshold=dtc.fmi, detail=_describe(dtc)))
        for dtc in diff.cleared:
            self._record(BmsEvent(wall, pack_id, EventKind.DTC_CLEARED, "dm1", Severity.NONE, value=dtc.spn,
                                  threshold=dtc.fmi, detail=_describe(dtc)))

    def _follow(self, change: AddressChange) -> None:
        if change.kind is ClaimChange.CLAIMED and change.new_address in self._links:
            self._name_of_pack.setdefault(self._links[change.new_address].pack_index, change.name)
            return
        if change.kind is not ClaimChange.MOVED or change.old_address is None or change.new_address is None:
            return
        link = self._links.get(change.old_address)
        if link is None or self._name_of_pack.get(link.pack_index) != change.name:
            return
        del self._links[change.old_address]
        link.node_address = change.new_address
        self._links[change.new_address] = link
        self._ingest.move_node(change.old_address, change.new_address)
        pack_id = self._pack_ids[link.pack_index]
        detail = f"NAME {change.name.value:#018x} moved from address {change.old_address} to {change.new_address}"
        log.warning("pack %s: %s; followed", pack_id, detail)
        self._record(BmsEvent(self._wall_clock(), pack_id, EventKind.READDRESSED, "address_claim", Severity.WARNING,
                              value=change.new_address, threshold=change.old_address, detail=detail))


def _unattached(arbitration_id: int, data: bytes) -> bool:
    return False


def _severity(dm1: Dm1) -> Severity:
    return Severity.ALARM if dm1.lamps.red_stop.status is LampStatus.ON else Severity.WARNING


def _describe(dtc: Dtc) -> str:
    return f"SPN {dtc.spn} FMI {dtc.fmi}, {dtc.occurrence_count} occurrence(s)"
