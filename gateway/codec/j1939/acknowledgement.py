"""Acknowledgement (PGN 59392, J1939-21): a node's ACK, NACK, Access Denied or Cannot Respond to a request.

Sent to the global address; byte 5 names the node being answered (the requester), bytes 6-8 the PGN it asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gateway.codec.j1939.identifier import GLOBAL_ADDRESS, J1939Id, Pgn, RawFrame
from gateway.errors import FrameRejected

ACKNOWLEDGEMENT_PRIORITY = 6
ACKNOWLEDGEMENT_BYTES = 8
NO_GROUP_FUNCTION = 0xFF
_RESERVED = 0xFF


class AckControl(IntEnum):
    ACK = 0
    NACK = 1
    ACCESS_DENIED = 2
    CANNOT_RESPOND = 3  # the PGN is supported, but not now: ask again later


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    control: AckControl
    pgn: int
    address_acknowledged: int
    group_function: int = NO_GROUP_FUNCTION


def acknowledgement_frame(control: AckControl, pgn: int, requester: int, source: int,
                          group_function: int = NO_GROUP_FUNCTION) -> RawFrame:
    if not 0 <= pgn < (1 << 18):
        raise ValueError(f"PGN {pgn} does not fit in 18 bits")
    frame_id = J1939Id.for_pgn(Pgn.ACKNOWLEDGEMENT, source, GLOBAL_ADDRESS, ACKNOWLEDGEMENT_PRIORITY)
    data = bytes([control, group_function, _RESERVED, _RESERVED, requester]) + pgn.to_bytes(3, "little")
    return frame_id.arbitration_id, data


def parse_acknowledgement(data: bytes) -> Acknowledgement:
    if len(data) != ACKNOWLEDGEMENT_BYTES:
        raise FrameRejected("acknowledgement_length", f"{len(data)} bytes")
    try:
        control = AckControl(data[0])
    except ValueError:
        raise FrameRejected("acknowledgement_control", f"control byte {data[0]}") from None
    return Acknowledgement(control, int.from_bytes(data[5:8], "little"), data[4], data[1])
