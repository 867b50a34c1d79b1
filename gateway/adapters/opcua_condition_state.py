"""One alarm condition of one pack as OPC UA Part 9 sees it, moved by the gateway's events.

The engine decides when a rule is active, latched, reset or acknowledged, and logs an event for each change;
the condition follows those events one by one, so every OPC UA event matches an entry of the event log. Two
states are OPC UA's own: an acknowledgement of a condition that has already cleared (the engine only
acknowledges present rules), and the confirmation; both are logged as events too, and come back here the same
way. Retain holds while the condition is active, latched, unacknowledged or unconfirmed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from gateway.domain.events import BmsEvent, EventKind
from gateway.domain.snapshot import ActiveAlarm
from gateway.runtime.condition_catalogue import ConditionSpec

EVENT_IDS_KEPT = 16  # an Acknowledge or Confirm may name any of the condition's last events


@dataclass
class ConditionState:
    spec: ConditionSpec
    pack_id: str
    active: bool = False
    latched: bool = False
    acked: bool = True
    confirmed: bool = True
    value: float = math.nan
    threshold: float = math.nan
    cell: int | None = None
    time: float = 0.0  # of the last transition (wall clock)
    message: str = ""
    operator: str = ""
    comment: str = ""  # the comment of the last acknowledge / confirm
    event_ids: deque[bytes] = field(default_factory=lambda: deque(maxlen=EVENT_IDS_KEPT))

    @property
    def retain(self) -> bool:
        return self.active or self.latched or not self.acked or not self.confirmed

    @property
    def present(self) -> bool:
        """What the engine can acknowledge: active or latched."""
        return self.active or self.latched

    def follow(self, event: BmsEvent) -> None:
        """Move with one event of this condition's rule."""
        self.time = event.time
        kind = event.kind
        if kind is EventKind.RAISED:
            self.active, self.acked, self.confirmed = True, False, False
            self.comment = ""
            self.value, self.threshold, self.cell = event.value, event.threshold, event.cell
            self.message = f"{self._what()}: {self._reading()}"
        elif kind is EventKind.CLEARED:
            self.active = False
            self.value = event.value
            latched = "; the trip stays latched until an authorised reset" if self.latched else ""
            self.message = f"{self._what()} cleared{latched}"
        elif kind is EventKind.LATCHED:
            self.latched = True
            self.message = f"{self._what()}: trip latched, limits stay zero until an authorised reset"
        elif kind is EventKind.RESET:
            self.latched = False
            self.message = f"{self._what()}: latched trip reset by {event.operator or 'an operator'}"
        elif kind is EventKind.ACKNOWLEDGED:
            self.acked = True
            self.operator = event.operator
            self.message = f"{self._what()} acknowledged by {event.operator or 'an operator'}"
        elif kind is EventKind.CONFIRMED:
            self.confirmed = True
            self.operator = event.operator
            self.message = f"{self._what()} confirmed by {event.operator or 'an operator'}"

    def resume(self, alarm: ActiveAlarm | None, now: float) -> bool:
        """Take the engine's view from a snapshot (at start, or after events were lost); whether it changed."""
        active = alarm is not None and alarm.active
        latched = alarm is not None and alarm.latched
        if (active, latched) == (self.active, self.latched) and (alarm is None or alarm.acknowledged == self.acked):
            return False
        self.time = now
        self.active, self.latched = active, latched
        if alarm is not None:
            self.acked = alarm.acknowledged
            self.value, self.threshold, self.cell = alarm.value, alarm.threshold, alarm.cell
            self.message = f"{self._what()}: {self._reading()} (present when the OPC UA server took over)"
        else:
            self.message = f"{self._what()}: no longer present"
        return True

    def _what(self) -> str:
        return f"{self.pack_id} {self.spec.code.label} {self.spec.severity.name.lower()}"

    def _reading(self) -> str:
        where = f" at cell {self.cell}" if self.cell is not None else ""
        return (f"{self.spec.description}; {self.spec.quantity} {self.value:g}{where} {self.spec.direction} "
                f"{self.threshold:g}")
