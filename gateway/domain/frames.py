"""A CAN frame as the core sees it (python-can's Message stays in the adapter)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CanFrame:
    bus: str
    arbitration_id: int
    data: bytes
    timestamp: float
    is_extended_id: bool = True
