"""The 29-bit J1939 identifier: priority, data pages, PDU format and specific, source address."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

RawFrame: TypeAlias = tuple[int, bytes]
"""(29-bit arbitration id, data) of a frame to put on the bus."""

GLOBAL_ADDRESS = 255
NULL_ADDRESS = 254
PDU2_MIN_FORMAT = 240
MAX_ARBITRATION_ID = (1 << 29) - 1


class Pgn(IntEnum):
    ACKNOWLEDGEMENT = 0xE800
    REQUEST = 0xEA00
    TP_DT = 0xEB00
    TP_CM = 0xEC00
    ADDRESS_CLAIMED = 0xEE00
    DM1 = 0xFECA


def _check_range(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} {value} does not fit in {bits} bits")


def is_pdu1(pgn: int) -> bool:
    """PDU1 (PF < 240): the identifier's PS byte carries a destination address, not part of the PGN."""
    return (pgn >> 8) & 0xFF < PDU2_MIN_FORMAT


@dataclass(frozen=True, slots=True)
class J1939Id:
    priority: int
    pdu_format: int
    pdu_specific: int
    source: int
    data_page: int = 0
    extended_data_page: int = 0

    def __post_init__(self) -> None:
        _check_range("priority", self.priority, 3)
        _check_range("pdu_format", self.pdu_format, 8)
        _check_range("pdu_specific", self.pdu_specific, 8)
        _check_range("source", self.source, 8)
        _check_range("data_page", self.data_page, 1)
        _check_range("extended_data_page", self.extended_data_page, 1)

    @classmethod
    def parse(cls, arbitration_id: int) -> J1939Id:
        _check_range("arbitration_id", arbitration_id, 29)
        return cls(
            priority=arbitration_id >> 26,
            extended_data_page=(arbitration_id >> 25) & 1,
            data_page=(arbitration_id >> 24) & 1,
            pdu_format=(arbitration_id >> 16) & 0xFF,
            pdu_specific=(arbitration_id >> 8) & 0xFF,
            source=arbitration_id & 0xFF,
        )

    @classmethod
    def for_pgn(cls, pgn: int, source: int, destination: int = GLOBAL_ADDRESS, priority: int = 6) -> J1939Id:
        """The identifier that sends `pgn`; a PDU2 PGN is always global, so `destination` must be 255 for it."""
        _check_range("pgn", pgn, 18)
        if is_pdu1(pgn):
            if pgn & 0xFF:
                raise ValueError(f"PDU1 PGN {pgn:#x} must have a zero low byte (it carries the destination)")
            specific = destination
        else:
            if destination != GLOBAL_ADDRESS:
                raise ValueError(f"PDU2 PGN {pgn:#x} cannot be sent to destination {destination}")
            specific = pgn & 0xFF
        return cls(
            priority=priority,
            extended_data_page=pgn >> 17,
            data_page=(pgn >> 16) & 1,
            pdu_format=(pgn >> 8) & 0xFF,
            pdu_specific=specific,
            source=source,
        )

    @property
    def is_pdu1(self) -> bool:
        return self.pdu_format < PDU2_MIN_FORMAT

    @property
    def pgn(self) -> int:
        specific = 0 if self.is_pdu1 else self.pdu_specific
        return (self.extended_data_page << 17) | (self.data_page << 16) | (self.pdu_format << 8) | specific

    @property
    def destination(self) -> int:
        return self.pdu_specific if self.is_pdu1 else GLOBAL_ADDRESS

    @property
    def arbitration_id(self) -> int:
        return (
            (self.priority << 26)
            | (self.extended_data_page << 25)
            | (self.data_page << 24)
            | (self.pdu_format << 16)
            | (self.pdu_specific << 8)
            | self.source
        )
