"""DM1, the active diagnostic trouble codes (J1939-73): lamp statuses and DTCs, SPN conversion method 4."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from gateway.codec.j1939.identifier import J1939Id, Pgn, RawFrame
from gateway.codec.j1939.transport import bam_frames
from gateway.errors import FrameRejected

DM1_PRIORITY = 6
LAMP_BYTES = 2
DTC_BYTES = 4
SINGLE_FRAME_BYTES = 8
_NO_DTC = bytes(DTC_BYTES)
_PADDING_DTC = b"\xff" * DTC_BYTES


class LampStatus(IntEnum):
    OFF = 0
    ON = 1
    RESERVED = 2
    NOT_AVAILABLE = 3


class LampFlash(IntEnum):
    SLOW_1_HZ = 0
    FAST_2_HZ = 1
    RESERVED = 2
    NOT_FLASHING = 3


@dataclass(frozen=True, slots=True)
class Lamp:
    status: LampStatus = LampStatus.OFF
    flash: LampFlash = LampFlash.NOT_FLASHING


@dataclass(frozen=True, slots=True)
class Lamps:
    malfunction: Lamp = field(default_factory=Lamp)
    red_stop: Lamp = field(default_factory=Lamp)
    amber_warning: Lamp = field(default_factory=Lamp)
    protect: Lamp = field(default_factory=Lamp)


@dataclass(frozen=True, slots=True)
class Dtc:
    """One trouble code; `conversion_method` is the CM bit (0: SPN conversion method version 4)."""

    spn: int
    fmi: int
    occurrence_count: int = 1
    conversion_method: int = 0

    def __post_init__(self) -> None:
        for name, value, bits in (
            ("spn", self.spn, 19),
            ("fmi", self.fmi, 5),
            ("occurrence_count", self.occurrence_count, 7),
            ("conversion_method", self.conversion_method, 1),
        ):
            if not 0 <= value < (1 << bits):
                raise ValueError(f"DTC {name} {value} does not fit in {bits} bits")

    @property
    def key(self) -> tuple[int, int]:
        """What identifies an active fault: SPN and FMI (the occurrence count changes while it stays active)."""
        return self.spn, self.fmi

    def to_bytes(self) -> bytes:
        return bytes(
            [
                self.spn & 0xFF,
                (self.spn >> 8) & 0xFF,
                ((self.spn >> 16) << 5) | self.fmi,
                (self.conversion_method << 7) | self.occurrence_count,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Dtc:
        return cls(
            spn=data[0] | (data[1] << 8) | ((data[2] >> 5) << 16),
            fmi=data[2] & 0x1F,
            occurrence_count=data[3] & 0x7F,
            conversion_method=data[3] >> 7,
        )


@dataclass(frozen=True, slots=True)
class Dm1:
    lamps: Lamps
    dtcs: tuple[Dtc, ...]


class DtcDiff(NamedTuple):
    appeared: tuple[Dtc, ...]
    cleared: tuple[Dtc, ...]


def _lamp_byte(values_high_first: Iterable[int]) -> int:
    byte = 0
    for value in values_high_first:
        byte = (byte << 2) | value
    return byte


def _lamp(status_byte: int, flash_byte: int, shift: int) -> Lamp:
    return Lamp(LampStatus((status_byte >> shift) & 3), LampFlash((flash_byte >> shift) & 3))


def decode_dm1(data: bytes) -> Dm1:
    """Lamps and active DTCs; all-zero entries ("no active DTC") and all-0xFF entries (padding) are no DTC."""
    if len(data) < LAMP_BYTES + DTC_BYTES:
        raise FrameRejected("dm1_too_short", f"{len(data)} bytes")
    lamps = Lamps(
        malfunction=_lamp(data[0], data[1], 6),
        red_stop=_lamp(data[0], data[1], 4),
        amber_warning=_lamp(data[0], data[1], 2),
        protect=_lamp(data[0], data[1], 0),
    )
    entries = (data[i : i + DTC_BYTES] for i in range(LAMP_BYTES, len(data) - DTC_BYTES + 1, DTC_BYTES))
    dtcs = tuple(Dtc.from_bytes(entry) for entry in entries if entry not in (_NO_DTC, _PADDING_DTC))
    return Dm1(lamps, dtcs)


def encode_dm1(lamps: Lamps, dtcs: Iterable[Dtc]) -> bytes:
    """8 bytes (0xFF padded) for up to one DTC, otherwise 2 + 4 per DTC bytes for the transport protocol."""
    order = (lamps.malfunction, lamps.red_stop, lamps.amber_warning, lamps.protect)
    status = _lamp_byte(lamp.status for lamp in order)
    flash = _lamp_byte(lamp.flash for lamp in order)
    body = b"".join(dtc.to_bytes() for dtc in dtcs) or _NO_DTC
    return (bytes([status, flash]) + body).ljust(SINGLE_FRAME_BYTES, b"\xff")


def dm1_frames(lamps: Lamps, dtcs: Iterable[Dtc], source: int, priority: int = DM1_PRIORITY) -> list[RawFrame]:
    """One DM1 frame, or the BAM frames of a DM1 with more than one DTC."""
    payload = encode_dm1(lamps, dtcs)
    if len(payload) > SINGLE_FRAME_BYTES:
        return bam_frames(Pgn.DM1, payload, source)
    return [(J1939Id.for_pgn(Pgn.DM1, source, priority=priority).arbitration_id, payload)]


def diff_dtcs(previous: Iterable[Dtc], current: Iterable[Dtc]) -> DtcDiff:
    """DTCs active now but not before (as now), and before but not now (as before), matched by SPN and FMI."""
    before = {dtc.key: dtc for dtc in previous}
    now = {dtc.key: dtc for dtc in current}
    appeared = tuple(dtc for key, dtc in now.items() if key not in before)
    cleared = tuple(dtc for key, dtc in before.items() if key not in now)
    return DtcDiff(appeared, cleared)
