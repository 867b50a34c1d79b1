"""Request (PGN 59904): ask one node, or all, to send a PGN."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.codec.j1939.identifier import GLOBAL_ADDRESS, J1939Id, Pgn, RawFrame
from gateway.errors import FrameRejected

REQUEST_PRIORITY = 6
REQUEST_BYTES = 3


@dataclass(frozen=True, slots=True)
class PgnRequest:
    pgn: int
    requester: int
    destination: int


def build_request(
    pgn: int, source: int, destination: int = GLOBAL_ADDRESS, priority: int = REQUEST_PRIORITY
) -> RawFrame:
    if not 0 <= pgn < (1 << 18):
        raise ValueError(f"PGN {pgn} does not fit in 18 bits")
    frame_id = J1939Id.for_pgn(Pgn.REQUEST, source, destination, priority)
    return frame_id.arbitration_id, pgn.to_bytes(REQUEST_BYTES, "little")


def parse_request(frame_id: J1939Id, data: bytes) -> PgnRequest:
    if frame_id.pgn != Pgn.REQUEST:
        raise ValueError(f"PGN {frame_id.pgn:#x} is not a Request")
    if len(data) < REQUEST_BYTES:
        raise FrameRejected("request_too_short", f"{len(data)} bytes")
    pgn = int.from_bytes(data[:REQUEST_BYTES], "little")
    return PgnRequest(pgn=pgn, requester=frame_id.source, destination=frame_id.destination)
