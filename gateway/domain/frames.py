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


@dataclass(frozen=True, slots=True)
class LoggedFrame:
    """A frame of a recorded log, on one of the site's buses."""

    time_s: float  # since the log's first frame
    frame: CanFrame
