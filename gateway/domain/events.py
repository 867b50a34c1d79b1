"""Safety events: what the event log stores and `bms-gateway events` prints.

Every raise, clear, acknowledge, reset, latched trip, admission decision and operator command is one
event. Times are wall-clock seconds since the epoch (UTC); `cell` is 1-based, None for a pack-level event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from gateway.domain.alarms import Severity


class EventKind(StrEnum):
    RAISED = "raised"  # a rule's condition held for its delay
    CLEARED = "cleared"  # back on the safe side of the clear threshold (a latched trip stays latched)
    LATCHED = "latched"  # a trip latched: limits stay zero until an authorised reset
    ACKNOWLEDGED = "acknowledged"  # an operator acknowledged an alarm
    CONFIRMED = "confirmed"  # an operator confirmed an alarm (OPC UA Confirm, after the acknowledgement)
    RESET = "reset"  # an operator reset a latched trip
    ADMITTED = "admitted"  # a pack passed admission (or an operator admitted it)
    NOT_ADMITTED = "not_admitted"  # a pack failed admission; `detail` gives the reason
    COMMAND = "command"  # any other operator command (`detail` says which)
    DTC_ACTIVE = "dtc_active"  # a J1939 pack's DM1 lists a trouble code (value: SPN, threshold: FMI)
    DTC_CLEARED = "dtc_cleared"  # the code left its DM1
    READDRESSED = "readdressed"  # a J1939 pack claimed another address (value: new, threshold: old) and is followed
    BUS_STATE = "bus_state"  # a CAN bus went down or came back, or its controller changed error state (pack `site`)


@dataclass(frozen=True, slots=True)
class BmsEvent:
    time: float  # wall clock, seconds since the epoch
    pack_id: str
    kind: EventKind
    code: str  # the alarm code's label (`cell_overvoltage`), or `admission` / the command name
    severity: Severity = Severity.NONE
    cell: int | None = None  # 1-based series cell (or sensor, for temperature rules), None: the pack
    value: float = math.nan  # the quantity when the event happened
    threshold: float = math.nan  # the threshold it was compared with
    operator: str = ""  # who, for acknowledge / reset / admit / commands
    detail: str = ""
    rule: int | None = None  # the protection rule (index in the table) of a rule's event; not stored in the log
