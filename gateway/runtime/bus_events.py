"""A CAN bus's state changes (gateway/adapters/bus_supervisor.py) as events in the log and the event feeds."""

from __future__ import annotations

from gateway.domain.alarms import Severity
from gateway.domain.events import BmsEvent, EventKind
from gateway.runtime.bus_counters import BusErrorState, BusStateChange

SITE = "site"  # the events of the site, not of one pack


def bus_event(change: BusStateChange) -> BmsEvent:
    """`bus_down` (ALARM) or `bus_up`; while up, `bus_error_passive` (WARNING) or `bus_error_active`."""
    if not change.up:
        code, severity = "bus_down", Severity.ALARM
    elif change.error_state is BusErrorState.PASSIVE:
        code, severity = "bus_error_passive", Severity.WARNING
    elif change.reason == "error-active":
        code, severity = "bus_error_active", Severity.NONE
    else:
        code, severity = "bus_up", Severity.NONE
    return BmsEvent(change.wall_time, SITE, EventKind.BUS_STATE, code, severity, detail=f"bus {change.bus}: "
                    f"{change.reason}")
