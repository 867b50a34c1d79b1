"""What a pack says about itself when asked."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.states import Chemistry


@dataclass(frozen=True, slots=True)
class PackIdentity:
    serial_number: str
    firmware_version: str
    chemistry: Chemistry
    cell_count: int
    sensor_count: int
    nominal_capacity_ah: float
