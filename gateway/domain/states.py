"""Enumerations shared by every output (their integer values are published: never renumber)."""

from __future__ import annotations

from enum import IntEnum


class PackState(IntEnum):
    NOT_SEEN = 0
    NORMAL = 1
    WARNING = 2
    ALARM = 3
    COMM_LOST = 4


class ContactorState(IntEnum):
    OPEN = 0
    PRECHARGE = 1
    CLOSED = 2
    FAULT = 3
    UNKNOWN = 15


class Chemistry(IntEnum):
    UNKNOWN = 0
    NMC = 1
    LFP = 2
    LTO = 3
    NCA = 4
