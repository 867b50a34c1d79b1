"""What the admission gate (admission.py) compares with: its thresholds, and the pack registry as plain data.

The registry file format and its loader live in `gateway/adapters/pack_registry.py`; docs/admission.md explains
both. Serial numbers are compared by `serial_key`: a serial made only of digits is a number ("0000001234" and
"1234" are the same pack, as the reference protocol sends the serial as an integer); any other serial is compared
exactly as written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from gateway.domain.states import Chemistry


@dataclass(frozen=True)
class AdmissionSettings:
    """The health gate's thresholds and the confirm time (docs/admission.md explains each)."""

    confirm_s: float = 5.0  # the gate must pass without a break this long before the pack is admitted
    min_soh: float = 0.70  # SoH by capacity (weakest cell / nominal) below this: SOH_LOW
    min_soh_resistance: float | None = None  # SoH by resistance below this: SOH_LOW (None: not checked)
    max_cell_spread_v: float = 0.10  # cell voltage spread (highest - lowest cell) above this: CELL_SPREAD
    max_soc_spread: float | None = None  # cell SoC spread above this: CELL_SPREAD (None: not checked)
    capacity_tolerance: float = 0.05  # reported nominal capacity may differ this much (relative) from the expected

    def __post_init__(self) -> None:
        if not (math.isfinite(self.confirm_s) and self.confirm_s >= 0.0):
            raise ValueError(f"confirm_s must be a finite time of 0 s or more, got {self.confirm_s}")
        for name in ("min_soh", "min_soh_resistance"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a ratio within 0..1, got {value}")
        if not (math.isfinite(self.max_cell_spread_v) and self.max_cell_spread_v > 0.0):
            raise ValueError(f"max_cell_spread_v must be a finite voltage above 0 V, got {self.max_cell_spread_v}")
        if self.max_soc_spread is not None and not 0.0 < self.max_soc_spread <= 1.0:
            raise ValueError(f"max_soc_spread must be a ratio within (0, 1], got {self.max_soc_spread}")
        if not 0.0 <= self.capacity_tolerance < 1.0:
            raise ValueError(f"capacity_tolerance must be a ratio within [0, 1), got {self.capacity_tolerance}")


DEFAULT_ADMISSION = AdmissionSettings()


class UnknownPackPolicy(StrEnum):
    """What the gate does with a pack that is neither known nor blocked."""

    REFUSE = "refuse"  # not admitted (UNKNOWN_PACK) until an operator admits it
    ADMIT_IF_HEALTHY = "admit_if_healthy"  # admitted when the health gate passes, like a known pack


def serial_key(serial: str) -> str:
    """How serials are compared: surrounding blanks ignored, an all-digit serial as a number."""
    text = serial.strip()
    if text.isascii() and text.isdigit():
        return text.lstrip("0") or "0"
    return text


@dataclass(frozen=True)
class KnownPack:
    """A pack the site knows; each given expectation is checked against what the pack reports."""

    serial: str
    chemistry: Chemistry | None = None
    cell_count: int | None = None
    nominal_capacity_ah: float | None = None
    note: str = ""


@dataclass(frozen=True)
class BlockedPack:
    """A pack that must never be admitted (not even by an operator)."""

    serial: str
    reason: str


@dataclass(frozen=True)
class PackRegistry:
    """Known and blocked packs by `serial_key`, and the policy for the others. `source` names the file."""

    known: Mapping[str, KnownPack] = field(default_factory=lambda: MappingProxyType({}))
    blocked: Mapping[str, BlockedPack] = field(default_factory=lambda: MappingProxyType({}))
    unknown: UnknownPackPolicy = UnknownPackPolicy.REFUSE
    source: str = "pack registry"

    @classmethod
    def of(cls, known: Iterable[KnownPack] = (), blocked: Iterable[BlockedPack] = (),
           unknown: UnknownPackPolicy = UnknownPackPolicy.REFUSE, source: str = "pack registry") -> PackRegistry:
        """Index the entries; ValueError when a serial is listed twice (the file loader reports it first)."""
        known, blocked = tuple(known), tuple(blocked)
        known_by = {serial_key(entry.serial): entry for entry in known}
        blocked_by = {serial_key(entry.serial): entry for entry in blocked}
        listed = [*known_by.keys(), *blocked_by.keys()]
        listed_count = len(known) + len(blocked)
        if len(set(listed)) != listed_count:
            raise ValueError("a serial is listed more than once (under known, blocked or both)")
        return cls(MappingProxyType(known_by), MappingProxyType(blocked_by), unknown, source)

    def lookup(self, serial: str) -> KnownPack | None:
        return self.known.get(serial_key(serial))

    def blocked_entry(self, serial: str) -> BlockedPack | None:
        return self.blocked.get(serial_key(serial))

    def is_blocked(self, serial: str) -> bool:
        return serial_key(serial) in self.blocked
