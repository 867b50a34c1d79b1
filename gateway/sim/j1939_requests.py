"""How a simulated J1939 pack answers a Request (PGN 59904), as J1939-21 has it.

- A PGN the pack has, in one frame: that frame (a PDU2 group goes to all, whoever asked).
- A PGN the pack has, longer than 8 bytes: by RTS/CTS to the requester (the pack is the originator and follows the
  requester's CTS and EoMA), or by BAM through the pack's pacer when the request went to all. While a session with
  the same requester is still open, the pack answers Cannot Respond (ask again later).
- A PGN the pack does not have: a NACK, but only to a request addressed to the pack (never to a global one).
"""

from __future__ import annotations

from gateway.codec.j1939.acknowledgement import AckControl, acknowledgement_frame
from gateway.codec.j1939.identifier import GLOBAL_ADDRESS, J1939Id, RawFrame
from gateway.codec.j1939.request import PgnRequest
from gateway.codec.j1939.transport import FRAME_BYTES, TransportSender
from gateway.sim.j1939_pacer import BamPacer


class RequestResponder:
    """Holds the pack's RTS/CTS sessions, one per requester; `source` is the pack's address at the time."""

    def __init__(self, pacer: BamPacer) -> None:
        self._pacer = pacer
        self._sessions: dict[int, TransportSender] = {}
        self.sessions_completed = 0
        self.sessions_failed = 0
        self.refused = 0

    @property
    def in_session(self) -> bool:
        return bool(self._sessions)

    def answer(self, request: PgnRequest, frame: RawFrame | None, source: int, now: float) -> list[RawFrame]:
        """The frames that answer `request` now; `frame` is the requested group with the pack's values, if it has
        one (identifier from `source`)."""
        to_all = request.destination == GLOBAL_ADDRESS
        if frame is None:
            if to_all:
                return []
            self.refused += 1
            return [acknowledgement_frame(AckControl.NACK, request.pgn, request.requester, source)]
        arbitration_id, payload = frame
        if len(payload) <= FRAME_BYTES:
            return [frame]
        if to_all:
            self._pacer.offer(J1939Id.parse(arbitration_id).pgn, payload)
            return []
        if request.requester in self._sessions:
            return [acknowledgement_frame(AckControl.CANNOT_RESPOND, request.pgn, request.requester, source)]
        sender = TransportSender(request.pgn, payload, source, request.requester)
        self._sessions[request.requester] = sender
        return sender.start(now)

    def on_transport(self, frame_id: J1939Id, data: bytes, now: float) -> list[RawFrame]:
        """A TP.CM to the pack (CTS, EoMA, Abort) for the session with its sender."""
        sender = self._sessions.get(frame_id.source)
        if sender is None:
            return []
        frames = sender.on_frame(frame_id, data, now)
        self._close_finished()
        return frames

    def expire(self, now: float) -> list[RawFrame]:
        """Aborts of sessions whose requester stopped answering (T3, T4)."""
        frames = [frame for sender in self._sessions.values() for frame in sender.expire(now)]
        self._close_finished()
        return frames

    def abandon(self) -> None:
        self.sessions_failed += len(self._sessions)
        self._sessions.clear()

    def _close_finished(self) -> None:
        for requester, sender in list(self._sessions.items()):
            if sender.done or sender.failed:
                del self._sessions[requester]
                self.sessions_completed += sender.done
                self.sessions_failed += sender.failed
